"""The append-only audit trail: every row chains the hash of the one before it.

Writers append inside the same transaction as the state change they describe.
``verify`` walks the chain and names the first row that does not fit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, Table, select, text
from sqlalchemy.orm import Session

from watchdog.errors import AuditIntegrityError
from watchdog.models import AuditRow, Authorization

GENESIS = "0" * 64
AUDIT_LOG = cast(Table, AuditRow.__table__)
_PG_AUDIT_LOCK = 0x5741_5443  # advisory lock id serialising chain appends ("WATC")


def process_actor(role: str = "worker") -> str:
    """Who we are when no person is: ``role@host:pid``."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One fact for the audit trail. ``event`` reads ``source:subject:action``."""

    event: str
    actor: str
    authorization_id: int | None = None
    provider: str | None = None
    order_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    idempotency_key: str | None = None
    state_from: str | None = None
    state_to: str | None = None
    outcome: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def about(row: Authorization, event: str, actor: str, **fields: Any) -> AuditEvent:
    """An event about one authorization: its id, provider, order id and currency filled in."""
    return AuditEvent(
        event=event,
        actor=actor,
        authorization_id=row.id,
        provider=row.provider,
        order_id=row.order_id,
        currency=row.currency,
        **fields,
    )


# One encoder for every row: ``json.dumps`` with options builds a new one per call, which
# was a fifth of an append's time. Same class, same options: the same bytes, so chains
# written before still verify.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _canonical(row: dict[str, Any]) -> str:
    return _CANONICAL.encode(row)


def _row_payload(recorded_at: dt.datetime, ev: AuditEvent, detail_json: str) -> dict[str, Any]:
    return {
        "recorded_at": recorded_at.astimezone(dt.UTC).isoformat(),
        "actor": ev.actor,
        "event": ev.event,
        "authorization_id": ev.authorization_id,
        "provider": ev.provider,
        "order_id": ev.order_id,
        "amount": ev.amount,
        "currency": ev.currency,
        "idempotency_key": ev.idempotency_key,
        "state_from": ev.state_from,
        "state_to": ev.state_to,
        "outcome": ev.outcome,
        "detail": detail_json,
    }


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the row's canonical JSON."""
    return hashlib.sha256((prev_hash + _canonical(payload)).encode()).hexdigest()


def append(session: Session, events: Sequence[AuditEvent], now: dt.datetime) -> int:
    """Append ``events`` to the chain inside the caller's transaction; returns how many.

    Rows go in with one bulk INSERT (no ORM objects: building them was most of the cost).
    On PostgreSQL an advisory lock, held until commit, serialises appends so the chain
    stays linear across workers (``audit_log_head`` takes it and reads the head in one
    call); SQLite's write lock does the same.
    """
    if not events:
        return 0
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The lock and the head in one round trip (migration 0004).
        head = connection.execute(
            text("SELECT audit_log_head(:k)"), {"k": _PG_AUDIT_LOCK}
        ).scalar_one()
    else:
        head = connection.execute(
            select(AUDIT_LOG.c.hash).order_by(AUDIT_LOG.c.id.desc()).limit(1)
        ).scalar_one_or_none()
    prev = head or GENESIS
    rows: list[dict[str, Any]] = []
    for ev in events:
        payload = _row_payload(now, ev, _canonical(ev.detail))
        digest = chain_hash(prev, payload)
        # The hashed payload is the row itself, with the instant as a datetime.
        rows.append({**payload, "recorded_at": now, "prev_hash": prev, "hash": digest})
        prev = digest
    # Core, not the ORM's bulk insert: that one splits the rows by which columns are
    # None and sent most of them one INSERT each.
    connection.execute(AUDIT_LOG.insert(), rows)
    return len(rows)


def _payload_of(row: AuditRow) -> dict[str, Any]:
    ev = AuditEvent(
        event=row.event,
        actor=row.actor,
        authorization_id=row.authorization_id,
        provider=row.provider,
        order_id=row.order_id,
        amount=row.amount,
        currency=row.currency,
        idempotency_key=row.idempotency_key,
        state_from=row.state_from,
        state_to=row.state_to,
        outcome=row.outcome,
    )
    return _row_payload(row.recorded_at, ev, row.detail)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of walking the chain."""

    rows: int
    last_hash: str


def iter_rows(engine: Engine, batch: int = 5000) -> Iterator[AuditRow]:
    """All audit rows in chain order, streamed in batches."""
    last_id = 0
    while True:
        with Session(engine) as session:
            chunk = list(
                session.scalars(
                    select(AuditRow).where(AuditRow.id > last_id).order_by(AuditRow.id).limit(batch)
                )
            )
        if not chunk:
            return
        yield from chunk
        last_id = chunk[-1].id


def verify_rows(rows: Iterable[AuditRow]) -> VerifyReport:
    """Check every link; raise AuditIntegrityError naming the first row that does not fit."""
    prev = GENESIS
    count = 0
    for row in rows:
        if row.prev_hash != prev:
            raise AuditIntegrityError(
                f"audit row {row.id} does not follow the row before it (a row was deleted, "
                f"inserted or reordered before it)"
            )
        if chain_hash(prev, _payload_of(row)) != row.hash:
            raise AuditIntegrityError(f"audit row {row.id} was edited after it was written")
        prev = row.hash
        count += 1
    return VerifyReport(rows=count, last_hash=prev)


def verify(engine: Engine) -> VerifyReport:
    """Verify the whole audit chain in the database."""
    return verify_rows(iter_rows(engine))


def query(
    engine: Engine,
    authorization_id: int | None = None,
    since: dt.datetime | None = None,
    limit: int | None = None,
) -> list[AuditRow]:
    """Audit rows, oldest first, optionally for one authorization and/or since an instant."""
    stmt = select(AuditRow).order_by(AuditRow.id)
    if authorization_id is not None:
        stmt = stmt.where(AuditRow.authorization_id == authorization_id)
    if since is not None:
        stmt = stmt.where(AuditRow.recorded_at >= since)
    if limit is not None:
        stmt = stmt.limit(limit)
    with Session(engine) as session:
        return list(session.scalars(stmt))


def row_as_dict(row: AuditRow) -> dict[str, Any]:
    """A JSON-ready view of an audit row."""
    return {
        "id": row.id,
        **_payload_of(row),
        "detail": json.loads(row.detail),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }
