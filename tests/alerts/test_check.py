"""``expiry-watchdog check``: one Nagios status line and the matching exit code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, update

from watchdog import schema, service
from watchdog.alerts.ack import acknowledge
from watchdog.alerts.outbox import AlertKind, Severity, raise_alert
from watchdog.cli.common import Ctx
from watchdog.cli.oncall import check
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import make_engine, transaction
from watchdog.models import Authorization, Pass


class ClockedCtx(Ctx):
    """The CLI context with frozen time."""

    def __init__(self, config_path: str, clock: FrozenClock) -> None:
        super().__init__(config_path, False)
        self.clock = clock


def _run(url: str, tmp_path: Path, clock: FrozenClock, *args: str) -> Result:
    config_file = tmp_path / "check.toml"
    config_file.write_text(f'[database]\nurl = "{url}"\n')
    return CliRunner().invoke(check, list(args), obj=ClockedCtx(str(config_file), clock))


def _pass(engine: Engine, finished: dt.datetime, ok: bool = True) -> None:
    with transaction(engine) as session:
        session.add(Pass(worker="w1", started_at=finished - dt.timedelta(seconds=3),
                         finished_at=finished, processed=0, failed=0, ok=ok, dry_run=False))


def _register(engine: Engine, config: Config, clock: FrozenClock, order_id: str,
              expires_in: dt.timedelta) -> int:
    registered = service.register(engine, config, {
        "provider": "clearpay", "order_id": order_id, "amount": 5000, "currency": "GBP",
        "authorized_at": (clock.now() - dt.timedelta(days=1)).isoformat(),
        "expires_at": (clock.now() + expires_in).isoformat(),
    }, actor="test", clock=clock)
    return registered.authorization.id


def test_ok_with_perfdata(engine: Engine, config: Config, clock: FrozenClock,
                          tmp_path: Path) -> None:
    _register(engine, config, clock, "A1", dt.timedelta(days=5))
    _register(engine, config, clock, "A2", dt.timedelta(hours=30))
    _pass(engine, clock.now() - dt.timedelta(seconds=42))
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 0, result.output
    assert result.output == (
        "WATCHDOG OK - 2 open, 0 critical | open=2 at_risk=1 critical=0 warning=0 "
        "needs_attention=0 past_deadline=0 critical_window=0 alert_window=0 confirming=0 "
        "expired_unacked=0 last_pass_age=42s;900;3600 workers=0 stalled_workers=0 "
        "rows_held_by_stalled=0\n"
    )


@pytest.mark.parametrize(("age", "code", "word"), [
    (dt.timedelta(minutes=14), 0, "OK"),
    (dt.timedelta(minutes=16), 1, "WARNING"),
    (dt.timedelta(hours=1, seconds=1), 2, "CRITICAL"),
])
def test_stale_thresholds(engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path,
                          age: dt.timedelta, code: int, word: str) -> None:
    _pass(engine, clock.now() - age)
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == code, result.output
    assert result.output.startswith(f"WATCHDOG {word} - ")
    assert len(result.output.splitlines()) == 1


def test_custom_thresholds(engine: Engine, config: Config, clock: FrozenClock,
                           tmp_path: Path) -> None:
    _pass(engine, clock.now() - dt.timedelta(minutes=3))
    result = _run(config.database_url, tmp_path, clock, "--warning-stale", "1m",
                  "--critical-stale", "2m")
    assert result.exit_code == 2
    assert "last successful pass 3m ago" in result.output
    assert "last_pass_age=180s;60;120" in result.output


def test_no_pass_ever_is_critical(engine: Engine, config: Config, clock: FrozenClock,
                                  tmp_path: Path) -> None:
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 2
    assert "no successful scan pass recorded" in result.output
    assert "last_pass_age=U;900;3600" in result.output


def test_warning_alert_then_critical_alert_then_ack(
    engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path,
) -> None:
    _pass(engine, clock.now())
    with transaction(engine) as session:
        raise_alert(session, AlertKind.DEADLINE_APPROACHING, Severity.WARNING, "soon", {},
                    clock.now(), "test", authorization_id=1)
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 1
    assert "WATCHDOG WARNING - 1 warning alerts firing" in result.output
    with transaction(engine) as session:
        raise_alert(session, AlertKind.DEADLINE_CRITICAL, Severity.CRITICAL, "now", {},
                    clock.now(), "test", authorization_id=1)
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 2
    assert "1 critical alerts firing" in result.output
    acknowledge(engine, 1, "on it", "cli:tester", clock)
    assert _run(config.database_url, tmp_path, clock).exit_code == 0


def test_needs_attention_is_critical(engine: Engine, config: Config, clock: FrozenClock,
                                     tmp_path: Path) -> None:
    _pass(engine, clock.now())
    auth_id = _register(engine, config, clock, "A1", dt.timedelta(days=5))
    with transaction(engine) as session:
        session.execute(update(Authorization).where(Authorization.id == auth_id)
                        .values(state="needs_attention"))
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 2
    assert "1 need attention" in result.output and "needs_attention=1" in result.output


def test_expired_unacknowledged_is_critical_until_acknowledged(
    engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path,
) -> None:
    """An expired authorization pages even when no alert was ever raised about it."""
    _pass(engine, clock.now())
    auth_id = _register(engine, config, clock, "A1", dt.timedelta(days=5))
    with transaction(engine) as session:
        session.execute(update(Authorization).where(Authorization.id == auth_id)
                        .values(state="expired", next_action_at=None))
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 2, result.output
    assert f"1 (#{auth_id}) expired, unacknowledged" in result.output
    assert "expired_unacked=1" in result.output
    with transaction(engine) as session:
        raise_alert(session, AlertKind.AUTHORIZATION_EXPIRED, Severity.CRITICAL, "lost", {},
                    clock.now(), "test", authorization_id=auth_id)
    assert _run(config.database_url, tmp_path, clock).exit_code == 2
    acknowledge(engine, auth_id, "customer called back", "cli:tester", clock)
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 0, result.output


def test_unreachable_database_is_unknown(tmp_path: Path, clock: FrozenClock) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'watchdog.db'}"
    result = _run(url, tmp_path, clock)
    assert result.exit_code == 3
    assert result.output.startswith("WATCHDOG UNKNOWN - database unreachable")


def test_schema_not_at_head_is_unknown(tmp_path: Path, clock: FrozenClock) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    schema.upgrade(engine, "0001")
    engine.dispose()
    result = _run(url, tmp_path, clock)
    assert result.exit_code == 3
    assert "schema is not at this version's head" in result.output


def test_bad_config_is_unknown(tmp_path: Path, clock: FrozenClock) -> None:
    config_file = tmp_path / "bad.toml"
    config_file.write_text("[database\n")
    result = CliRunner().invoke(check, [], obj=ClockedCtx(str(config_file), clock))
    assert result.exit_code == 3
    assert result.output.startswith("WATCHDOG UNKNOWN - cannot open the database")
