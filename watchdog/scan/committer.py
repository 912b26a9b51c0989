"""Group commit: the writes of every row that is ready go into one transaction.

Rows of a pass reach their writes at nearly the same moment (their provider answers
arrive together). Writing each in its own transaction cost several statements and a
commit per row, all on the event loop; written together it is a few statements per
group (one UPDATE per kind of change with many parameter sets, one INSERT of the audit
rows, ...). Each row's writes still stand or fall together: a group whose guards do not
all hold is rolled back and written again one row per transaction, where a refused row
gets ``TransitionError`` and the others go through.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

from sqlalchemy import Engine, Table, Update, bindparam, literal_column, update
from sqlalchemy.orm import Session

from watchdog import audit, store
from watchdog.accounts import DEFAULT_ACCOUNT
from watchdog.alerts.outbox import resolve_alerts_many
from watchdog.audit import AuditEvent
from watchdog.clock import Clock
from watchdog.db import TransactionRunner
from watchdog.domain import ActionStatus
from watchdog.models import Action, Authorization
from watchdog.scan.known import KnownRows
from watchdog.scan.writes import Intent, RowWrite

log = logging.getLogger("watchdog.scan")

AUTHORIZATIONS = cast(Table, Authorization.__table__)
ACTIONS = cast(Table, Action.__table__)


class GuardShortfall(Exception):
    """Some row's guard did not hold in a group write: write the group row by row."""


class GroupCommitter:
    """Collects the writes of rows that are ready and commits them as one transaction.

    The writer is a task: it runs one loop turn after the first write arrives, so every
    row woken in that turn joins the group, and while it writes, provider answers queue
    up for the next group. Under load the groups grow by themselves; a lone row is
    written at once. ``TransactionRunner`` says where the transaction runs.
    """

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.clock = clock
        self.transactions = TransactionRunner(engine)
        self.known = KnownRows()
        self._pending: list[tuple[RowWrite, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Wait for the writes in progress, then close the database connections."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])
        await self.transactions.aclose()

    async def claim(
        self, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int
    ) -> list[Authorization]:
        """Lease due rows (``store.claim_due``) and learn their actions and open alerts."""

        def claim_and_learn(session: Session) -> list[Authorization]:
            rows = store.claim_due_in(session, worker, now, lease, limit)
            self.known.load(session, [r.id for r in rows])
            return rows

        return await self.transactions.run(claim_and_learn)

    async def claim_unsynced(
        self, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int
    ) -> list[Authorization]:
        """Lease rows for the early read (``store.claim_unsynced_in``)."""

        def claim(session: Session) -> list[Authorization]:
            return store.claim_unsynced_in(session, worker, now, lease, limit)

        return await self.transactions.run(claim)

    async def release_abandoned(self, worker: str) -> int:
        """Give up every lease ``worker`` still holds (``store.release_abandoned``)."""
        return await self.transactions.run(partial(store.release_abandoned, worker=worker))

    async def commit(self, write: RowWrite) -> None:
        """Write ``write`` together with whatever other rows are ready; raise what refused
        it (``TransitionError`` for a lost lease or a changed state)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((write, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            writes = [w for w, _ in group]
            try:
                failures = await write_rows(
                    self.transactions, writes, self.clock.now(), self.known
                )
                self.known.committed(w for w, f in zip(writes, failures, strict=True) if f is None)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting row
                failures = [exc] * len(group)
            for (write, done), failure in zip(group, failures, strict=True):
                if failure is not None:
                    write.undo()
                if done.done():
                    continue
                if failure is None:
                    done.set_result(None)
                else:
                    done.set_exception(failure)


async def write_rows(
    transactions: TransactionRunner,
    writes: Sequence[RowWrite],
    now: dt.datetime,
    known: KnownRows,
) -> list[BaseException | None]:
    """Write ``writes``; for each, None or what refused it. ``now`` stamps the audit rows."""
    if len(writes) > 1:
        try:
            await transactions.run(
                partial(apply, writes=writes, now=now, known=known, strict=False)
            )
            return [None] * len(writes)
        except Exception as exc:  # noqa: BLE001 - retried row by row below
            log.debug(
                "group write failed, writing row by row",
                extra={"action": "scan:write:regroup", "reason": repr(exc), "rows": len(writes)},
            )
    failures: list[BaseException | None] = []
    for write in writes:
        try:
            await transactions.run(
                partial(apply, writes=[write], now=now, known=known, strict=True)
            )
            failures.append(None)
        except Exception as exc:  # noqa: BLE001 - this row's failure, not the others'
            failures.append(exc)
    return failures


def apply(
    session: Session,
    writes: Sequence[RowWrite],
    now: dt.datetime,
    known: KnownRows,
    *,
    strict: bool,
) -> None:
    """Apply every write in the caller's transaction: guarded updates first, so nothing
    else of a refused row is written. ``strict`` (one row) raises its TransitionError;
    otherwise any refusal raises GuardShortfall and the caller rolls the group back."""
    _guarded_updates(session, writes, strict=strict)
    _releases(session, [w for w in writes if w.release])
    intent_events = _intents(session, [w for w in writes if w.intent is not None], known)
    _action_updates(session, writes)
    events: list[AuditEvent] = []
    for write in writes:
        events.extend(write.events)
        if write in intent_events:
            events.append(intent_events[write])
    audit.append(session, events, now)
    for write in writes:
        for raise_alert in write.alerts:
            raise_alert(session)
    resolve_alerts_many(
        session,
        [
            (w.row.id, kinds, reason)
            for w in writes
            if known.may_have_alerts(w.row.id)
            for kinds, reason in w.resolutions
        ],
        now,
        writes[0].worker,
    )


_UPDATES: dict[tuple[tuple[str, ...], tuple[str, ...]], Update] = {}


def _guarded_update_statement(guard: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    key = (guard, columns)
    assert all(state.isidentifier() for state in guard), guard
    stmt = _UPDATES.get(key)
    if stmt is None:
        stmt = (
            update(AUTHORIZATIONS)
            .where(
                AUTHORIZATIONS.c.id == bindparam("w_id"),
                # Written into the SQL: an executemany cannot expand a list parameter.
                AUTHORIZATIONS.c.state.in_([literal_column(f"'{state}'") for state in guard]),
                AUTHORIZATIONS.c.claimed_by == bindparam("w_worker"),
                AUTHORIZATIONS.c.generation == bindparam("w_generation"),
            )
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        _UPDATES[key] = stmt
    return stmt


def _guarded_updates(session: Session, writes: Sequence[RowWrite], *, strict: bool) -> None:
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[RowWrite]] = defaultdict(list)
    for write in writes:
        if write.guard is not None and write.values:
            groups[(write.guard, tuple(sorted(write.values)))].append(write)
    connection = session.connection()
    for (guard, columns), members in groups.items():
        params = [
            {
                "w_id": w.row.id,
                "w_worker": w.worker,
                "w_generation": w.row.generation,
                **{f"v_{c}": w.values[c] for c in columns},
            }
            for w in members
        ]
        matched = connection.execute(_guarded_update_statement(guard, columns), params).rowcount
        if matched == len(members):
            continue
        if strict:
            write = members[0]
            raise store.refusal(session, write.row, guard, write.worker, write.target_state)
        raise GuardShortfall(f"{len(members) - matched} of {len(members)} guarded writes refused")


def _releases(session: Session, writes: Sequence[RowWrite]) -> None:
    if not writes:
        return
    session.connection().execute(
        update(AUTHORIZATIONS)
        .where(
            AUTHORIZATIONS.c.id == bindparam("w_id"),
            AUTHORIZATIONS.c.claimed_by == bindparam("w_worker"),
            AUTHORIZATIONS.c.generation == bindparam("w_generation"),
        )
        .values(claimed_by=None, claimed_until=None),
        [
            {"w_id": w.row.id, "w_worker": w.worker, "w_generation": w.row.generation}
            for w in writes
        ],
    )


def _intents(
    session: Session, writes: Sequence[RowWrite], known: KnownRows
) -> dict[RowWrite, AuditEvent]:
    """Choose each intent's action row (reusing a retryable one with the same amount, so
    the same idempotency key goes out again), write it, and build its audit event."""
    if not writes:
        return {}
    # Rows claimed in this pass are known; any other is read here, the same way.
    known.load(session, [w.row.id for w in writes if known.actions_of(w.row.id) is None])
    inserts: list[dict[str, Any]] = []
    events: dict[RowWrite, AuditEvent] = {}
    installation: str | None = None
    for write in writes:
        intent = write.intent
        assert intent is not None
        same = [
            a
            for a in known.actions_of(write.row.id) or []
            if a.kind == intent.kind.value and a.seq == intent.seq
        ]
        retryable = max(
            (a for a in same if a.status is ActionStatus.RETRYABLE),
            key=lambda a: a.attempt,
            default=None,
        )
        if retryable is not None and retryable.amount == intent.amount:
            session.connection().execute(
                update(ACTIONS)
                .where(ACTIONS.c.idempotency_key == retryable.idempotency_key)
                .values(status=ActionStatus.PENDING)
            )
            action = Action(
                authorization_id=write.row.id,
                kind=intent.kind.value,
                seq=intent.seq,
                attempt=retryable.attempt,
                idempotency_key=retryable.idempotency_key,
                amount=retryable.amount,
                final=retryable.final,
                status=ActionStatus.PENDING,
                sends=retryable.sends,
                recoveries=retryable.recoveries,
                actor=intent.actor,
                created_at=intent.created_at,
            )
        else:
            attempt = max((a.attempt for a in same), default=0) + 1
            if installation is None:
                installation = known.installation(session)
            values = new_action(write.row.id, intent, attempt, installation,
                                account=write.row.account)
            inserts.append(values)
            action = Action(**values)
        intent.action = action
        events[write] = intent.event(action)
    if inserts:
        session.connection().execute(ACTIONS.insert(), inserts)
    return events


def idempotency_key(
    installation: str, authorization_id: int, kind: str, seq: int, attempt: int,
    account: str = DEFAULT_ACCOUNT,
) -> str:
    """Deterministic from our own data, so the same intent always carries the same key, and
    prefixed with this database's installation id, so no other database ever sends it.
    A named merchant account's keys carry the account too, so keys of two accounts can
    never collide, even at a provider that scopes keys wider than one merchant (the
    ``default`` account's keys are as they always were)."""
    if account != DEFAULT_ACCOUNT:
        return f"ew-{installation}-{account}-{authorization_id}-{kind}{seq}-a{attempt}"
    return f"ew-{installation}-{authorization_id}-{kind}{seq}-a{attempt}"


def new_action(
    authorization_id: int, intent: Intent, attempt: int, installation: str,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """Column values of a new pending action for ``intent``."""
    kind = intent.kind.value
    return {
        "authorization_id": authorization_id,
        "kind": kind,
        "seq": intent.seq,
        "attempt": attempt,
        "idempotency_key": idempotency_key(
            installation, authorization_id, kind, intent.seq, attempt, account
        ),
        "amount": intent.amount,
        "final": intent.final,
        "status": ActionStatus.PENDING,
        "sends": 0,
        "recoveries": 0,
        "actor": intent.actor,
        "created_at": intent.created_at,
    }


_ACTION_UPDATES: dict[tuple[str, ...], Update] = {}


def _action_updates(session: Session, writes: Sequence[RowWrite]) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for write in writes:
        for key, values in write.action_updates:
            columns = tuple(sorted(values))
            groups[columns].append({"w_key": key, **{f"v_{c}": values[c] for c in columns}})
    connection = session.connection()
    for columns, params in groups.items():
        stmt = _ACTION_UPDATES.get(columns)
        if stmt is None:
            stmt = (
                update(ACTIONS)
                .where(ACTIONS.c.idempotency_key == bindparam("w_key"))
                .values({c: bindparam(f"v_{c}") for c in columns})
            )
            _ACTION_UPDATES[columns] = stmt
        connection.execute(stmt, params)
