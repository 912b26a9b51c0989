"""``check`` judges the authorizations with its own clock, before and after a pass: a scanner
that has not run (or has not raised an alert yet) cannot make it say OK."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select, text, update

from tests.alerts.test_check import ClockedCtx, _pass
from watchdog import service
from watchdog.alerts.ack import acknowledge
from watchdog.cli.oncall import check
from watchdog.clock import FrozenClock
from watchdog.config import Config, parse_config
from watchdog.db import transaction
from watchdog.domain import ProviderName
from watchdog.models import Authorization
from watchdog.providers.fake import FakeProvider
from watchdog.risk import clauses
from watchdog.scan import Scanner


def _run(config: Config, tmp_path: Path, clock: FrozenClock, policy: str = "") -> Result:
    config_file = tmp_path / "check.toml"
    config_file.write_text(f'[database]\nurl = "{config.database_url}"\n{policy}')
    return CliRunner().invoke(check, [], obj=ClockedCtx(str(config_file), clock))


class World:
    """One clearpay fake provider, a scanner, and authorizations registered against both."""

    def __init__(self, engine: Engine, config: Config, clock: FrozenClock) -> None:
        self.engine, self.config, self.clock = engine, config, clock
        self.fake = FakeProvider(ProviderName.CLEARPAY)

        async def no_sleep(_: float) -> None:
            return None

        self.scanner = Scanner(engine, config, {ProviderName.CLEARPAY: self.fake}, clock, "w1",
                               sleep=no_sleep)

    def register(self, order_id: str, expires_in: dt.timedelta, on_deadline: str,
                 *, at_provider: bool = True) -> int:
        expires_at = self.clock.now() + expires_in
        if at_provider:
            self.fake.add(order_id, 5000, expires_at=expires_at)
        return service.register(self.engine, self.config, {
            "provider": "clearpay", "order_id": order_id, "amount": 5000, "currency": "GBP",
            "authorized_at": (self.clock.now() - dt.timedelta(days=3)).isoformat(),
            "expires_at": expires_at.isoformat(), "on_deadline": on_deadline,
        }, actor="test", clock=self.clock).authorization.id

    def scan(self) -> None:
        asyncio.run(self.scanner.run_pass())

    def state(self, auth_id: int) -> str:
        with transaction(self.engine) as session:
            row = session.get(Authorization, auth_id)
            assert row is not None
            return row.state


def test_registered_past_its_deadline(engine: Engine, config: Config, clock: FrozenClock,
                                      tmp_path: Path) -> None:
    world = World(engine, config, clock)
    world.scan()  # a healthy heartbeat, before the authorization exists
    auth_id = world.register("LATE", -dt.timedelta(hours=1), "capture")
    before = _run(config, tmp_path, clock)
    assert before.exit_code == 2, before.output
    assert f"1 (#{auth_id}) open past the deadline" in before.output
    assert "critical alerts firing" not in before.output, "judged from the data, not alerts"

    world.scan()
    assert world.state(auth_id) == "expired"
    after = _run(config, tmp_path, clock)
    assert after.exit_code == 2, after.output
    assert f"1 (#{auth_id}) expired, unacknowledged" in after.output
    acknowledge(engine, auth_id, "lost; customer re-checks out", "cli:tester", clock)
    assert _run(config, tmp_path, clock).exit_code == 0


def test_capture_policy_three_hours_out_with_nothing_captured(
    engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path,
) -> None:
    world = World(engine, config, clock)
    world.scan()
    auth_id = world.register("SOON", dt.timedelta(hours=3), "capture")
    before = _run(config, tmp_path, clock)
    assert before.exit_code == 2, before.output
    assert f"1 (#{auth_id}) inside critical_lead with no capture or cancel in flight" in (
        before.output)

    world.scan()
    assert world.state(auth_id) == "captured"
    after = _run(config, tmp_path, clock)
    assert after.exit_code == 0, after.output


def test_critical_lead_boundary_uses_the_configured_lead(
    engine: Engine, clock: FrozenClock, tmp_path: Path, db_url: str,
) -> None:
    config = parse_config({"database": {"url": db_url},
                           "policy": {"critical_lead": "2h", "alert_lead": "48h"}}, environ={})
    world = World(engine, config, clock)
    world.scan()
    world.register("EDGE", dt.timedelta(hours=2, seconds=1), "alert")
    policy = '[policy]\ncritical_lead = "2h"\n'
    assert _run(config, tmp_path, clock, policy).exit_code == 1  # only alert-only: warning
    clock.advance(dt.timedelta(seconds=1))  # exactly critical_lead before the deadline
    result = _run(config, tmp_path, clock, policy)
    assert result.exit_code == 2, result.output
    assert "inside critical_lead" in result.output
    assert "critical alerts firing" not in result.output, "no pass ran since: the data says it"


def test_alert_only_inside_alert_lead_warns(engine: Engine, config: Config, clock: FrozenClock,
                                            tmp_path: Path) -> None:
    world = World(engine, config, clock)
    world.scan()
    auth_id = world.register("ALERTME", dt.timedelta(hours=30), "alert")
    world.register("LATER", dt.timedelta(hours=49), "alert")
    before = _run(config, tmp_path, clock)
    assert before.exit_code == 1, before.output
    assert before.output.startswith(
        f"WATCHDOG WARNING - 1 (#{auth_id}) alert-only inside alert_lead")
    world.scan()  # the scanner raises deadline_approaching: still a warning, both say so
    after = _run(config, tmp_path, clock)
    assert after.exit_code == 1, after.output
    assert "alert-only inside alert_lead" in after.output
    assert "1 warning alerts firing" in after.output


def test_a_capture_in_flight_inside_critical_lead_is_not_critical(
    engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path,
) -> None:
    world = World(engine, config, clock)
    world.scan()
    auth_id = world.register("FLYING", dt.timedelta(hours=3), "capture")
    with transaction(engine) as session:
        session.execute(update(Authorization).where(Authorization.id == auth_id)
                        .values(state="capturing"))
    result = _run(config, tmp_path, clock)
    assert result.exit_code == 0, result.output
    clock.advance(dt.timedelta(hours=3))  # still "capturing" at the deadline: page
    _pass(engine, clock.now())
    result = _run(config, tmp_path, clock)
    assert result.exit_code == 2, result.output
    assert f"1 (#{auth_id}) open past the deadline" in result.output


def _set_state(engine: Engine, auth_id: int, state: str) -> None:
    """Put a row into ``state``, even one this schema's CHECK does not list yet (the
    provider-answer work adds confirming states; check must judge them already)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA ignore_check_constraints = ON"))
        else:
            name = conn.execute(text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'authorizations'::regclass "
                "AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%state%authorized%'"
            )).scalar_one_or_none()
            if name is not None:  # dropped by an earlier call
                conn.execute(text(f'ALTER TABLE authorizations DROP CONSTRAINT "{name}"'))
        conn.execute(update(Authorization).where(Authorization.id == auth_id)
                     .values(state=state))


@pytest.mark.parametrize("state", ["confirming", "confirming_capture"])
def test_pending_confirmation_warns_whatever_the_confirming_state_is_called(
    engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path, state: str,
) -> None:
    world = World(engine, config, clock)
    world.scan()
    soon = world.register("PENDING1", dt.timedelta(hours=1), "capture")
    late = world.register("PENDING2", dt.timedelta(days=5), "capture")
    for auth_id in (soon, late):
        _set_state(engine, auth_id, state)
    result = _run(config, tmp_path, clock)
    assert result.exit_code == 1, result.output
    assert f"2 (#{soon}, #{late}) pending provider confirmation" in result.output
    assert "confirming=2" in result.output


def test_boundaries_at_the_deadline_and_the_leads(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    """-1 s, exactly, +1 s around the deadline, critical_lead (6h) and alert_lead (48h)."""
    world = World(engine, config, clock)
    second, six, two_days = (dt.timedelta(seconds=1), dt.timedelta(hours=6),
                             dt.timedelta(hours=48))
    cases = {
        "D_after": (second, "capture", "critical_window"),
        "D": (dt.timedelta(0), "capture", "past_deadline"),
        "D_before": (-second, "capture", "past_deadline"),
        "C_after": (six + second, "capture", None),
        "C": (six, "capture", "critical_window"),
        "C_before": (six - second, "alert", "critical_window"),
        "C_after_alert": (six + second, "alert", "alert_window"),
        "A": (two_days, "alert", "alert_window"),
        "A_after": (two_days + second, "alert", None),
        "A_capture": (two_days, "capture", None),
    }
    ids = {name: world.register(name, delta, policy) for name, (delta, policy, _) in
           cases.items()}
    with transaction(engine) as session:
        matched = {name: set(session.scalars(select(Authorization.id).where(where)))
                   for name, where in clauses(clock.now(), config).items()}
    for name, (_, _, expected) in cases.items():
        found = [problem for problem, rows in matched.items() if ids[name] in rows]
        assert found == ([expected] if expected else []), name
