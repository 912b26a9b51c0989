"""Operator control on SQLite and PostgreSQL: pause, budgets, approvals, dry run, explain,
earliest-deadline-first and missed deadlines after downtime."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from sqlalchemy import Engine, select

from tests.integration.test_scan import DAY, _register, _row, _scanner
from watchdog import audit, controls
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.domain import ProviderName, State
from watchdog.explain import explain
from watchdog.models import Alert
from watchdog.providers.fake import FakeProvider

DUE = 12 * DAY + dt.timedelta(hours=1)  # clearpay: inside capture_lead


def _with_policy(config: Config, provider: ProviderName | None = None, **changes: object) -> Config:
    if provider is None:
        policy = dataclasses.replace(config.policy, **changes)  # type: ignore[arg-type]
        providers = {n: dataclasses.replace(p, policy=dataclasses.replace(p.policy, **changes))  # type: ignore[arg-type]
                     for n, p in config.providers.items()}
        return dataclasses.replace(config, policy=policy, providers=providers)
    p = config.providers[provider]
    providers = dict(config.providers)
    providers[provider] = dataclasses.replace(p, policy=dataclasses.replace(p.policy, **changes))  # type: ignore[arg-type]
    return dataclasses.replace(config, providers=providers)


def test_paused_provider_moves_no_money_but_keeps_alerting(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("5001", 5000)
    auth_id = _register(engine, config, clock, "clearpay", "5001", 5000, age=DUE)
    controls.pause(engine, "clearpay", "provider incident INC-42", "cli:alice", clock.now())
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    asyncio.run(scanner.run_pass())
    assert fake.ledger == []
    assert _row(engine, auth_id).state == State.AUTHORIZED
    with transaction(engine) as s:
        alert = s.execute(select(Alert).where(Alert.authorization_id == auth_id)).scalar_one()
    assert "paused" in alert.summary
    assert "INC-42" in alert.summary
    events = [r.event for r in audit.query(engine, authorization_id=auth_id)]
    assert "scan:capture:held" in events
    # Closer to the deadline the alert escalates while still paused.
    clock.set(_row(engine, auth_id).deadline - dt.timedelta(hours=5))
    asyncio.run(scanner.run_pass())
    assert fake.ledger == []
    with transaction(engine) as s:
        kinds = {a.kind for a in s.scalars(select(Alert).where(Alert.status == "firing"))}
    assert "deadline_critical" in kinds
    assert controls.resume(engine, "clearpay", "cli:alice", clock.now())
    clock.advance(dt.timedelta(minutes=10))
    asyncio.run(scanner.run_pass())
    assert fake.ledger == [("capture", "5001", 5000)]


def test_global_pause_covers_every_provider(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.JPMMPS)
    fake.add("jp-9", 100)
    _register(engine, config, clock, "jpmmps", "jp-9", 100, age=4 * DAY + dt.timedelta(hours=2))
    controls.pause(engine, controls.GLOBAL, "month-end freeze", "cli:bob", clock.now())
    asyncio.run(_scanner(engine, config, clock, {ProviderName.JPMMPS: fake}).run_pass())
    assert fake.ledger == []


def test_action_budget_earliest_deadline_first_nothing_twice(engine: Engine, config: Config, clock: FrozenClock) -> None:
    config = _with_policy(config, max_actions_per_pass=3)
    fake = FakeProvider(ProviderName.CLEARPAY)
    ids = []
    for i in range(30):
        fake.add(str(6000 + i), 1000)
        # Older authorizations have earlier deadlines; register them out of order.
        age = DUE + dt.timedelta(minutes=(i * 7) % 30)
        ids.append(_register(engine, config, clock, "clearpay", str(6000 + i), 1000, age=age))
    deadlines = {str(6000 + i): _row(engine, auth_id).deadline for i, auth_id in enumerate(ids)}
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    done: list[str] = []
    for _ in range(10):
        before = len(fake.ledger)
        asyncio.run(scanner.run_pass())
        batch = [order for _, order, _ in fake.ledger[before:]]
        assert len(batch) <= 3
        done += batch
    assert sorted(done) == sorted(deadlines)
    assert len(done) == len(set(done)), "nothing is done twice"
    assert [deadlines[o] for o in done] == sorted(deadlines[o] for o in done), "earliest deadline first"


def test_capture_above_limit_waits_for_approval_then_happens_once(engine: Engine, config: Config, clock: FrozenClock) -> None:
    config = _with_policy(config, ProviderName.CLEARPAY, max_capture_amount=10_000)
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("7001", 25_000)
    auth_id = _register(engine, config, clock, "clearpay", "7001", 25_000, age=DUE)
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    asyncio.run(scanner.run_pass())
    assert fake.ledger == []
    assert any("approve" in line for line in explain(engine, config, auth_id, clock))
    controls.approve(engine, auth_id, "cli:carol", clock.now(), note="ticket 7")
    asyncio.run(scanner.run_pass())
    asyncio.run(scanner.run_pass())
    assert fake.ledger == [("capture", "7001", 25_000)]
    assert _row(engine, auth_id).state == State.CAPTURED


def test_dry_run_moves_nothing_and_audits_would(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("8001", 4000)
    fake.add("8002", 4000)
    a = _register(engine, config, clock, "clearpay", "8001", 4000, age=DUE)
    b = _register(engine, config, clock, "clearpay", "8002", 4000, age=DUE, on_deadline="cancel")
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    scanner.dry_run = True
    asyncio.run(scanner.run_pass())
    assert fake.ledger == []
    events = [r.event for r in audit.query(engine)]
    assert "scan:capture:would" in events
    assert "scan:cancel:would" in events
    assert _row(engine, a).state == State.AUTHORIZED
    assert _row(engine, b).state == State.AUTHORIZED


def test_downtime_reports_missed_deadlines_once(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.FLITT)
    fake.add("fl-7", 1000)
    auth_id = _register(engine, config, clock, "flitt", "fl-7", 1000, age=DAY)
    scanner = _scanner(engine, config, clock, {ProviderName.FLITT: fake})
    asyncio.run(scanner.run_pass())  # a pass while the watchdog was up
    clock.advance(5 * DAY)  # the watchdog was down past the deadline
    asyncio.run(scanner.run_pass())
    asyncio.run(scanner.run_pass())
    assert _row(engine, auth_id).state == State.EXPIRED
    with transaction(engine) as s:
        alerts = list(s.scalars(select(Alert).where(Alert.kind == "authorization_expired")))
    assert len(alerts) == 1
    assert "watchdog was down from" in alerts[0].details


def test_explain_names_deadline_source_and_rule_for_each_provider(engine: Engine, config: Config, clock: FrozenClock) -> None:
    expectations = {
        "smartpay": "cancelRemainder", "jpmmps": "one capture only",
        "flitt": "one capture only", "clearpay": "openToCaptureAmount",
    }
    for provider, rule in expectations.items():
        order = "9001" if provider == "clearpay" else f"x-{provider}"
        auth_id = _register(engine, config, clock, provider, order, 1000, age=DAY)
        text = "\n".join(explain(engine, config, auth_id, clock))
        assert "authorized_at plus the configured provider window" in text
        assert rule in text
    explicit = _register(engine, config, clock, "clearpay", "9002", 1000, age=DAY,
                         expires_at=(clock.now() + DAY).isoformat())
    assert "explicit expires_at" in "\n".join(explain(engine, config, explicit, clock))


def test_operator_resolves_needs_attention_with_what_happened(engine: Engine, config: Config, clock: FrozenClock) -> None:
    import pytest

    from watchdog import service
    from watchdog.errors import TransitionError, ValidationError
    from watchdog.providers.base import Outcome

    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("9101", 5000)
    auth_id = _register(engine, config, clock, "clearpay", "9101", 5000, age=DUE)

    async def refuse(ref, amount, key, *, final):  # type: ignore[no-untyped-def]
        return fake._result(Outcome.REJECTED, "capture", "412 payment_voided")

    fake.capture = refuse  # type: ignore[method-assign]
    asyncio.run(_scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}).run_pass())
    assert _row(engine, auth_id).state == State.NEEDS_ATTENTION
    with pytest.raises(ValidationError, match="--captured-amount"):
        service.resolve_attention(engine, config, auth_id, State.CAPTURED, "cli:dana", "seen in dashboard", clock=clock)
    row = service.resolve_attention(engine, config, auth_id, State.CAPTURED, "cli:dana",
                                    "captured by hand in the dashboard", captured_amount=5000, clock=clock)
    assert row.state == State.CAPTURED
    with transaction(engine) as s:
        assert {a.status for a in s.scalars(select(Alert).where(Alert.authorization_id == auth_id))} == {"resolved"}
    last = audit.query(engine, authorization_id=auth_id)[-2]
    assert last.event == "operator:authorization:resolve"
    assert last.actor == "cli:dana"
    with pytest.raises(TransitionError):
        service.resolve_attention(engine, config, auth_id, State.CANCELED, "cli:dana", "again", clock=clock)


def test_cancel_while_a_capture_is_in_flight_is_refused_and_audited(engine: Engine, config: Config, clock: FrozenClock) -> None:
    import pytest

    from watchdog import service
    from watchdog.domain import InstructionKind
    from watchdog.errors import InstructionError

    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("9201", 5000)
    fake.apply_then_lose = 1  # the capture leaves; its answer is lost: in flight
    auth_id = _register(engine, config, clock, "clearpay", "9201", 5000, age=DUE)
    asyncio.run(_scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}).run_pass())
    assert _row(engine, auth_id).state == State.CAPTURING
    with pytest.raises(InstructionError, match="capturing"):
        service.instruct(engine, config, auth_id, InstructionKind.CANCEL_NOW, "api:shop", clock=clock)
    refusal = audit.query(engine, authorization_id=auth_id)[-1]
    assert refusal.event == "instruct:cancel_now:refuse"
    assert "capturing" in refusal.detail
    clock.advance(dt.timedelta(minutes=10))
    asyncio.run(_scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}).run_pass())
    assert fake.ledger == [("capture", "9201", 5000)]  # exactly one of the two reached the provider
