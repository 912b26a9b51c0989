"""The scan loop on real SQLite and PostgreSQL, with the in-memory fake provider."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import Engine, select, text

from watchdog import audit, service
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.domain import InstructionKind, ProviderName, State
from watchdog.errors import AuditIntegrityError, ConflictError, InstructionError, ValidationError
from watchdog.models import Action, Alert, Authorization
from watchdog.providers.base import Outcome
from watchdog.providers.fake import FakeProvider
from watchdog.scan import Scanner

DAY = dt.timedelta(days=1)


def _register(engine: Engine, config: Config, clock: FrozenClock, provider: str, order_id: str,
              amount: int, age: dt.timedelta, **extra: object) -> int:
    result = service.register(engine, config, {
        "provider": provider, "order_id": order_id, "amount": amount,
        "currency": "GBP" if provider == "clearpay" else "JPY" if provider == "smartpay" else "EUR",
        "authorized_at": (clock.now() - age).isoformat(), **extra,
    }, actor="test", clock=clock)
    return result.authorization.id


def _row(engine: Engine, auth_id: int) -> Authorization:
    with transaction(engine) as s:
        row = s.get(Authorization, auth_id)
        assert row is not None
        return row


def _scanner(engine: Engine, config: Config, clock: FrozenClock, fakes: dict[ProviderName, FakeProvider],
             worker: str = "w1") -> Scanner:
    async def no_sleep(_: float) -> None:
        return None

    return Scanner(engine, config, fakes, clock, worker, sleep=no_sleep)


def test_due_capture_happens_once_with_audit_trail(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1001", 5000)
    auth_id = _register(engine, config, clock, "clearpay", "1001", 5000, age=12 * DAY + dt.timedelta(hours=1))
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})

    report = asyncio.run(scanner.run_pass())
    assert report.steps.get("capture") == 1
    assert fake.ledger == [("capture", "1001", 5000)]
    row = _row(engine, auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 5000
    assert row.next_action_at is None
    events = [r.event for r in audit.query(engine, authorization_id=auth_id)]
    assert events.index("scan:capture:intent") < events.index("scan:capture:outcome")
    # A second pass finds nothing to do and moves no money.
    asyncio.run(scanner.run_pass())
    assert len(fake.ledger) == 1
    assert audit.verify(engine).rows == len(audit.query(engine))


def test_nothing_due_is_not_touched(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1002", 5000)
    auth_id = _register(engine, config, clock, "clearpay", "1002", 5000, age=DAY)
    report = asyncio.run(_scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}).run_pass())
    assert report.claimed == 0
    row = _row(engine, auth_id)
    assert row.state == State.AUTHORIZED
    assert row.next_action_at == row.deadline - dt.timedelta(hours=48)


def test_lost_response_is_recovered_without_a_second_capture(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1003", 7000)
    fake.apply_then_lose = 1
    auth_id = _register(engine, config, clock, "clearpay", "1003", 7000, age=12 * DAY + dt.timedelta(hours=2))
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    asyncio.run(scanner.run_pass())
    row = _row(engine, auth_id)
    assert row.state == State.CAPTURING  # outcome unknown: a state, not an error
    clock.advance(dt.timedelta(minutes=10))  # past the recovery delay and the lease
    asyncio.run(scanner.run_pass())
    row = _row(engine, auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 7000
    assert fake.ledger == [("capture", "1003", 7000)]
    with transaction(engine) as s:
        actions = list(s.scalars(select(Action).where(Action.authorization_id == auth_id)))
    assert [a.status for a in actions] == ["already_done"]


def test_retryable_failure_keeps_the_same_key_and_waits(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1004", 7000)
    auth_id = _register(engine, config, clock, "clearpay", "1004", 7000, age=12 * DAY + dt.timedelta(hours=2))
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    original_capture = fake.capture
    calls: list[str] = []

    async def flaky(ref, amount, key, *, final):  # type: ignore[no-untyped-def]
        calls.append(key)
        if len(calls) <= 4:
            return fake._result(Outcome.RETRYABLE, "capture", "503")
        return await original_capture(ref, amount, key, final=final)

    fake.capture = flaky  # type: ignore[method-assign]
    asyncio.run(scanner.run_pass())
    row = _row(engine, auth_id)
    assert row.state == State.AUTHORIZED and row.not_before is not None
    clock.set(row.not_before)
    asyncio.run(scanner.run_pass())
    assert _row(engine, auth_id).state == State.CAPTURED
    assert len(set(calls)) == 1, "every retry reuses the idempotency key"
    assert len(fake.ledger) == 1


def test_rejected_capture_needs_attention_and_alerts(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1005", 9000)
    auth_id = _register(engine, config, clock, "clearpay", "1005", 9000, age=12 * DAY + dt.timedelta(hours=2))

    async def refuse(ref, amount, key, *, final):  # type: ignore[no-untyped-def]
        return fake._result(Outcome.REJECTED, "capture", "412 payment_voided")

    fake.capture = refuse  # type: ignore[method-assign]
    asyncio.run(_scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}).run_pass())
    row = _row(engine, auth_id)
    assert row.state == State.NEEDS_ATTENTION
    with transaction(engine) as s:
        kinds = {a.kind for a in s.scalars(select(Alert).where(Alert.authorization_id == auth_id))}
    assert "action_failed" in kinds
    assert fake.ledger == []


def test_past_guard_expires_and_pages(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.JPMMPS)
    fake.add("jp-1", 3000)
    auth_id = _register(engine, config, clock, "jpmmps", "jp-1", 3000, age=5 * DAY - dt.timedelta(minutes=5))
    asyncio.run(_scanner(engine, config, clock, {ProviderName.JPMMPS: fake}).run_pass())
    assert _row(engine, auth_id).state == State.EXPIRED
    assert fake.ledger == []
    with transaction(engine) as s:
        alert = s.execute(select(Alert).where(Alert.kind == "authorization_expired")).scalar_one()
    assert alert.severity == "critical"


def test_alert_policy_warns_then_escalates_then_expires(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.FLITT)
    fake.add("fl-1", 4000)
    auth_id = _register(engine, config, clock, "flitt", "fl-1", 4000, age=DAY, on_deadline="alert")
    scanner = _scanner(engine, config, clock, {ProviderName.FLITT: fake})
    deadline = _row(engine, auth_id).deadline
    clock.set(deadline - dt.timedelta(hours=48))
    asyncio.run(scanner.run_pass())
    clock.set(deadline - dt.timedelta(hours=6))
    asyncio.run(scanner.run_pass())
    with transaction(engine) as s:
        alerts = {a.kind: a.status for a in s.scalars(select(Alert))}
    assert alerts == {"deadline_approaching": "resolved", "deadline_critical": "firing"}
    clock.set(deadline)
    asyncio.run(scanner.run_pass())
    assert _row(engine, auth_id).state == State.EXPIRED
    assert fake.ledger == []


def test_instruction_partial_capture_then_deadline_capture(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1006", 10000)
    auth_id = _register(engine, config, clock, "clearpay", "1006", 10000, age=DAY)
    service.instruct(engine, config, auth_id, InstructionKind.CAPTURE_NOW, "test", amount=4000, clock=clock)
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    asyncio.run(scanner.run_pass())
    row = _row(engine, auth_id)
    assert row.state == State.PARTIALLY_CAPTURED and row.captured_amount == 4000
    clock.set(row.deadline - dt.timedelta(hours=23))
    asyncio.run(scanner.run_pass())
    row = _row(engine, auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 10000
    assert fake.ledger == [("capture", "1006", 4000), ("capture", "1006", 6000)]


def test_single_capture_provider_refuses_partial_instruction(engine: Engine, config: Config, clock: FrozenClock) -> None:
    auth_id = _register(engine, config, clock, "flitt", "fl-2", 10000, age=DAY)
    with pytest.raises(InstructionError, match="one capture only"):
        service.instruct(engine, config, auth_id, InstructionKind.CAPTURE_NOW, "test", amount=4000, clock=clock)
    with pytest.raises(InstructionError, match="exceeds the open amount"):
        service.instruct(engine, config, auth_id, InstructionKind.CAPTURE_NOW, "test", amount=10001, clock=clock)


def test_two_workers_never_act_twice(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    for i in range(60):
        fake.add(str(2000 + i), 1000)
        _register(engine, config, clock, "clearpay", str(2000 + i), 1000, age=12 * DAY + dt.timedelta(hours=1))
    a = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}, worker="a")
    b = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}, worker="b")

    async def both() -> None:
        await asyncio.gather(a.run_pass(), b.run_pass())

    asyncio.run(both())
    captured = [order for _, order, _ in fake.ledger]
    assert len(captured) == 60 and len(set(captured)) == 60


def test_late_write_after_lost_lease_is_refused_and_audited(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1007", 5000)
    auth_id = _register(engine, config, clock, "clearpay", "1007", 5000, age=12 * DAY + dt.timedelta(hours=1))
    slow = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}, worker="slow")
    original_capture = fake.capture

    async def capture_after_losing_lease(ref, amount, key, *, final):  # type: ignore[no-untyped-def]
        # While "slow" waits on the provider, its lease is taken over by another worker.
        with transaction(engine) as s:
            s.execute(text("UPDATE authorizations SET claimed_by='thief', generation=generation+1 WHERE id=:i"),
                      {"i": auth_id})
        return await original_capture(ref, amount, key, final=final)

    fake.capture = capture_after_losing_lease  # type: ignore[method-assign]
    asyncio.run(slow.run_pass())
    row = _row(engine, auth_id)
    assert row.state == State.CAPTURING  # slow's outcome did not overwrite the new owner's row
    assert "scan:write:refused" in [r.event for r in audit.query(engine, authorization_id=auth_id)]


def test_register_is_idempotent_and_conflicts_are_named(engine: Engine, config: Config, clock: FrozenClock) -> None:
    data = {"provider": "smartpay", "order_id": "order_x", "amount": 5000, "currency": "JPY",
            "authorized_at": "2026-11-20T09:00:00+09:00"}
    first = service.register(engine, config, data, "test", clock)
    again = service.register(engine, config, dict(data), "test", clock)
    assert first.created and not again.created
    with pytest.raises(ConflictError, match="amount"):
        service.register(engine, config, {**data, "amount": 6000}, "test", clock)
    with pytest.raises(ValidationError, match="authorized_at"):
        service.register(engine, config, {**data, "order_id": "o2", "authorized_at": "2026-11-20T09:00:00"}, "test", clock)


def test_audit_is_append_only_and_tampering_is_detected(engine: Engine, config: Config, clock: FrozenClock) -> None:
    _register(engine, config, clock, "smartpay", "order_a", 100, age=DAY)
    _register(engine, config, clock, "smartpay", "order_b", 100, age=DAY)
    assert audit.verify(engine).rows == 3  # the re-key row that starts every keyed chain
    with pytest.raises(Exception, match="append-only"), transaction(engine) as s:
        s.execute(text("UPDATE audit_log SET amount = 1"))
    with pytest.raises(Exception, match="append-only"), transaction(engine) as s:
        s.execute(text("DELETE FROM audit_log"))
    # An attacker with DDL rights can drop the guard; the hash chain still tells.
    with transaction(engine) as s:
        if engine.dialect.name == "postgresql":
            s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            s.execute(text("DROP TRIGGER audit_log_no_update"))
        s.execute(text("UPDATE audit_log SET amount = 99 WHERE id = (SELECT min(id) FROM audit_log)"))
    with pytest.raises(AuditIntegrityError, match="edited"):
        audit.verify(engine)


def test_provider_open_amount_caps_the_capture(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1008", 3000)  # the provider holds less than we were told
    auth_id = _register(engine, config, clock, "clearpay", "1008", 9000, age=12 * DAY + dt.timedelta(hours=2))
    asyncio.run(_scanner(engine, config, clock, {ProviderName.CLEARPAY: fake}).run_pass())
    assert fake.ledger[0] == ("capture", "1008", 3000)
    assert _row(engine, auth_id).captured_amount == 3000


def test_capture_at_deadline_takes_n_and_releases_the_rest(engine: Engine, config: Config, clock: FrozenClock) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("1009", 10000)
    auth_id = _register(engine, config, clock, "clearpay", "1009", 10000, age=DAY)
    service.instruct(engine, config, auth_id, InstructionKind.CAPTURE_AT_DEADLINE, "test", amount=6000, clock=clock)
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})
    clock.set(_row(engine, auth_id).deadline - dt.timedelta(hours=23))
    asyncio.run(scanner.run_pass())
    asyncio.run(scanner.run_pass())
    assert fake.ledger == [("capture", "1009", 6000), ("cancel", "1009", 4000)]
    row = _row(engine, auth_id)
    assert row.state == State.CAPTURED
    assert row.captured_amount == 6000
