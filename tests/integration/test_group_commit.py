"""Group commit on real SQLite and PostgreSQL: rows written together still stand or fall
alone, and what a claim learns about its rows keeps group writes from asking again."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import Engine, func, select, update

from watchdog import audit, service, store
from watchdog.alerts.outbox import AlertKind, Severity, raise_alert
from watchdog.clock import FrozenClock
from watchdog.config import Config, parse_config
from watchdog.db import transaction
from watchdog.domain import ActionKind, ProviderName, State
from watchdog.errors import TransitionError
from watchdog.models import Action, Alert, Authorization, Installation
from watchdog.providers.fake import FakeProvider
from watchdog.scan import Scanner
from watchdog.scan.committer import GroupCommitter
from watchdog.scan.writes import Intent, RowWrite

DAY = dt.timedelta(days=1)
LEASE = dt.timedelta(minutes=5)


def _register(engine: Engine, config: Config, clock: FrozenClock, order_id: str) -> int:
    result = service.register(engine, config, {
        "provider": "clearpay", "order_id": order_id, "amount": 5000, "currency": "GBP",
        "authorized_at": (clock.now() - 12 * DAY - dt.timedelta(hours=1)).isoformat(),
    }, actor="test", clock=clock)
    return result.authorization.id


def _stamp(row: Authorization, now: dt.datetime, note: str) -> RowWrite:
    write = RowWrite(row=row, worker="w1", now=now)
    write.update([State(row.state)], {"last_error": note, "updated_at": now})
    write.events.append(audit.about(row, "test:row:stamp", "w1", detail={"note": note}))
    return write


def _commit_together(committer: GroupCommitter, writes: list[RowWrite]) -> list[Any]:
    """Commit ``writes`` at once (one group); each one's exception, or None."""
    async def commit_all() -> list[Any]:
        try:
            return await asyncio.gather(*(committer.commit(w) for w in writes),
                                        return_exceptions=True)
        finally:
            await committer.aclose()

    return asyncio.run(commit_all())


def _claim(engine: Engine, committer: GroupCommitter, clock: FrozenClock) -> list[Authorization]:
    return asyncio.run(committer.claim("w1", clock.now(), LEASE, 10))


def test_a_refused_row_does_not_take_the_rows_written_with_it(
        engine: Engine, config: Config, clock: FrozenClock) -> None:
    ids = [_register(engine, config, clock, f"g{i}") for i in range(3)]
    committer = GroupCommitter(engine, clock)
    rows = {r.id: r for r in _claim(engine, committer, clock)}
    assert set(rows) == set(ids)
    # Another worker takes the middle row over (its lease ran out): our write must lose.
    with transaction(engine) as s:
        s.execute(update(Authorization).where(Authorization.id == ids[1])
                  .values(claimed_by="w2", generation=Authorization.generation + 1))
    writes = [_stamp(rows[i], clock.now(), f"note {i}") for i in ids]

    results = _commit_together(committer, writes)
    assert results[0] is None and results[2] is None
    refused = results[1]
    assert isinstance(refused, TransitionError)
    assert "lease lost: now held by w2" in refused.reason
    assert rows[ids[1]].last_error is None  # the refused row got its old values back
    with transaction(engine) as s:
        notes = dict(s.execute(select(Authorization.id, Authorization.last_error)).all())
        stamped = s.scalars(select(Authorization.id).join(
            audit.AuditRow, audit.AuditRow.authorization_id == Authorization.id)
            .where(audit.AuditRow.event == "test:row:stamp")).all()
    assert notes == {ids[0]: f"note {ids[0]}", ids[1]: None, ids[2]: f"note {ids[2]}"}
    assert sorted(stamped) == [ids[0], ids[2]]
    audit.verify(engine)


def test_intents_written_together_get_their_own_keys_and_a_retry_reuses_its_key(
        engine: Engine, config: Config, clock: FrozenClock) -> None:
    ids = [_register(engine, config, clock, f"k{i}") for i in range(2)]
    # The second authorization already has a retryable capture of 5000 (attempt 1).
    with transaction(engine) as s:
        s.add(Action(authorization_id=ids[1], kind="capture", seq=1, attempt=1,
                     idempotency_key=f"ew-{ids[1]}-capture1-a1", amount=5000, final=True,
                     status="retryable", sends=1, recoveries=0, actor="w0",
                     created_at=clock.now()))
    committer = GroupCommitter(engine, clock)
    rows = {r.id: r for r in _claim(engine, committer, clock)}
    writes = []
    for row_id in ids:
        write = RowWrite(row=rows[row_id], worker="w1", now=clock.now())
        write.update([State.AUTHORIZED], {"state": State.CAPTURING.value})
        write.intent = Intent(ActionKind.CAPTURE, 1, 5000, True, "w1", clock.now(),
                              lambda a: audit.about(rows[a.authorization_id], "test:capture:intent",
                                                    "w1", idempotency_key=a.idempotency_key))
        writes.append(write)

    assert _commit_together(committer, writes) == [None, None]
    keys = [w.intent.action.idempotency_key for w in writes if w.intent and w.intent.action]
    with transaction(engine) as s:
        installation = s.scalars(select(Installation.id)).one()
    # A new key carries this database's installation id; the retry keeps its stored key.
    assert keys == [f"ew-{installation}-{ids[0]}-capture1-a1", f"ew-{ids[1]}-capture1-a1"]
    with transaction(engine) as s:
        statuses = dict(s.execute(select(Action.idempotency_key, Action.status)).all())
        logged = s.scalars(select(audit.AuditRow.idempotency_key)
                           .where(audit.AuditRow.event == "test:capture:intent")).all()
    assert statuses == {keys[0]: "pending", keys[1]: "pending"}
    assert sorted(logged) == sorted(keys)


def test_a_settled_row_resolves_the_alert_its_claim_saw(
        engine: Engine, config: Config, clock: FrozenClock) -> None:
    quiet, loud = (_register(engine, config, clock, f"a{i}") for i in range(2))
    with transaction(engine) as s:
        raise_alert(s, AlertKind.DEADLINE_APPROACHING, Severity.WARNING, "open", {}, clock.now(),
                    "test", authorization_id=loud, provider="clearpay")
    committer = GroupCommitter(engine, clock)
    rows = {r.id: r for r in _claim(engine, committer, clock)}
    assert not committer.known.may_have_alerts(quiet)
    assert committer.known.may_have_alerts(loud)
    writes = []
    for row_id in (quiet, loud):
        write = RowWrite(row=rows[row_id], worker="w1", now=clock.now())
        write.update([State.AUTHORIZED], {"state": State.CANCELED.value, "next_action_at": None,
                                          "claimed_by": None, "claimed_until": None})
        write.resolve("canceled by the test")
        writes.append(write)

    assert _commit_together(committer, writes) == [None, None]
    with transaction(engine) as s:
        firing = s.scalar(select(func.count()).select_from(Alert).where(Alert.status == "firing"))
        resolved = s.scalars(select(audit.AuditRow.authorization_id)
                             .where(audit.AuditRow.event.like("alert:%:resolve"))).all()
        states = set(s.scalars(select(Authorization.state)))
    assert firing == 0 and resolved == [loud] and states == {"canceled"}
    assert store.claim_due(engine, "w1", clock.now() + DAY, LEASE, 10) == []
    audit.verify(engine)


def test_a_stopped_pass_gives_back_the_rows_it_claimed_but_did_not_start(
        engine: Engine, db_url: str, clock: FrozenClock) -> None:
    config = parse_config({"database": {"url": db_url},
                           "scheduler": {"concurrency": 2, "batch_size": 6}}, environ={})
    ids = [_register(engine, config, clock, f"s{i}") for i in range(10)]
    fake = FakeProvider(ProviderName.CLEARPAY)
    for i in range(10):
        fake.add(f"s{i}", 5000)

    async def no_sleep(_: float) -> None:
        return None

    scanner = Scanner(engine, config, {ProviderName.CLEARPAY: fake}, clock, "w1", sleep=no_sleep)
    original = fake.capture

    async def capture_then_stop(*args: Any, **kwargs: Any) -> Any:
        scanner.stop()  # SIGTERM while the first captures are out
        return await original(*args, **kwargs)

    fake.capture = capture_then_stop  # type: ignore[method-assign]
    report = asyncio.run(scanner.run_pass())
    with transaction(engine) as s:
        rows = s.execute(select(Authorization.id, Authorization.state, Authorization.claimed_by)
                         .where(Authorization.id.in_(ids))).all()
    captured = [r.id for r in rows if r.state == State.CAPTURED]
    assert 1 <= len(captured) <= 2  # the rows in flight finish
    assert len(fake.ledger) == len(captured)
    assert report.claimed == len(captured)
    assert [r.id for r in rows if r.claimed_by is not None] == []  # nothing left leased
    audit.verify(engine)
