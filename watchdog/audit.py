"""The append-only audit trail: every row carries a keyed MAC of itself, its id and the
MAC of the row before it.

Writers append inside the same transaction as the state change they describe. The MAC is
HMAC-SHA256 with a key that never sits in the database (``watchdog.anchor``), so a row
rewritten by someone who can write the database but does not hold the key is detected;
ids are dense from the re-key row on and covered by the MAC, so a deleted, reordered or
re-used id is detected too. What the table alone cannot show — its newest rows deleted,
the whole table truncated, or history rewritten by a key holder — the checkpoints kept
outside the database show (``anchor.Checkpoint``).

Chains written before keying (plain SHA-256 from a zero genesis, migration 0004 and
earlier) are kept: the first ``audit:chain:rekey`` row (migration 0006) names the legacy
row count and head, and every row from it on is keyed. ``verify`` walks the chain, then
compares it with a checkpoint, and names the first thing that does not fit.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, Table, func, select, text
from sqlalchemy.orm import Session

from watchdog import anchor
from watchdog.accounts import DEFAULT_ACCOUNT
from watchdog.anchor import Checkpoint
from watchdog.errors import AuditIntegrityError
from watchdog.models import AuditRow, Authorization

GENESIS = "0" * 64
REKEY_EVENT = "audit:chain:rekey"
MAC_SCHEME = "hmac-sha256(key, id, prev_mac, row)"
AUDIT_LOG = cast(Table, AuditRow.__table__)
_PG_AUDIT_LOCK = 0x5741_5443  # advisory lock id serialising chain appends ("WATC")
log = logging.getLogger("watchdog.audit")


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
    """An event about one authorization: its id, provider, order id and currency filled in,
    and its merchant account in ``detail`` when it is not ``default`` (an order id is unique
    only within its account, so the trail must say which one)."""
    account = row.account
    if account != DEFAULT_ACCOUNT:
        fields["detail"] = {**fields.get("detail", {}), "account": account}
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
    """The legacy (unkeyed) link: SHA-256 over the previous hash and the row's canonical
    JSON. Only rows before the re-key row use it; anyone can recompute it."""
    return hashlib.sha256((prev_hash + _canonical(payload)).encode()).hexdigest()


def row_mac(key: bytes, row_id: int, prev_mac: str, payload: dict[str, Any]) -> str:
    """The keyed link: HMAC-SHA256 over the row's id, the previous row's MAC and the row's
    canonical JSON. Without the key it cannot be recomputed."""
    message = f"{row_id}\n{prev_mac}\n{_canonical(payload)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _head(connection: Any) -> tuple[int, str] | None:
    """The last row's (id, MAC), taking the chain's lock on PostgreSQL first."""
    if connection.dialect.name == "postgresql":
        # The lock and the head in one round trip (migration 0006's audit_log_tail).
        tail = connection.execute(
            text("SELECT audit_log_tail(:k)"), {"k": _PG_AUDIT_LOCK}
        ).scalar_one()
        if tail is None:
            return None
        row_id, _, mac = str(tail).partition(" ")
        return int(row_id), mac
    row = connection.execute(
        select(AUDIT_LOG.c.id, AUDIT_LOG.c.hash).order_by(AUDIT_LOG.c.id.desc()).limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row is not None else None


def append(session: Session, events: Sequence[AuditEvent], now: dt.datetime) -> int:
    """Append ``events`` to the chain inside the caller's transaction; returns how many.

    Rows go in with one bulk INSERT (no ORM objects: building them was most of the cost),
    with ids the chain assigns (the head's id + 1, + 2, ...), since the MAC covers the id.
    On PostgreSQL an advisory lock, held until commit, serialises appends so the chain
    stays linear and dense across workers (``audit_log_tail`` takes it and reads the head
    in one call); SQLite's write lock does the same.
    """
    if not events:
        return 0
    connection = session.connection()
    key = anchor.key_for(connection.engine.url)
    head = _head(connection)
    last_id, prev = head if head is not None else (0, GENESIS)
    rows: list[dict[str, Any]] = []
    for ev in events:
        last_id += 1
        payload = _row_payload(now, ev, _canonical(ev.detail))
        digest = row_mac(key, last_id, prev, payload)
        # The MACed payload is the row itself, with the instant as a datetime.
        rows.append({**payload, "id": last_id, "recorded_at": now, "prev_hash": prev,
                     "hash": digest})
        prev = digest
    # Core, not the ORM's bulk insert: that one splits the rows by which columns are
    # None and sent most of them one INSERT each.
    connection.execute(AUDIT_LOG.insert(), rows)
    return len(rows)


def rekey_event(legacy_rows: int, legacy_head: str, reason: str) -> AuditEvent:
    """The row from which the chain is keyed: it names what came before it."""
    return AuditEvent(
        event=REKEY_EVENT, actor="migration:0006",
        detail={"scheme": MAC_SCHEME, "legacy_rows": legacy_rows, "legacy_head": legacy_head,
                "reason": reason},
    )


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
    """The result of walking the chain (and comparing it with a checkpoint)."""

    rows: int
    last_id: int
    last_hash: str
    keyed_from: int | None = None  # id of the re-key row; None: no keyed row at all
    legacy_rows: int = 0
    checkpoint: Checkpoint | None = None  # the anchor the chain was compared with

    def describe(self) -> str:
        """What was verified, for the operator (the full head MAC, not a prefix)."""
        lines = [f"audit chain intact: {self.rows} rows, last id {self.last_id}",
                 f"head {self.last_hash}"]
        if self.keyed_from is None:
            lines.append("no keyed rows: the chain is only a plain SHA-256 chain")
        else:
            lines.append(f"keyed (HMAC-SHA256) from row id {self.keyed_from}; "
                         f"{self.legacy_rows} legacy unkeyed rows before it")
        if self.checkpoint is not None:
            lines.append(f"matches the checkpoint: {self.checkpoint.describe()}")
        else:
            lines.append("NOT compared with any checkpoint: deleted newest rows or a "
                         "truncated table cannot be detected without one")
        return "\n".join(lines)


class TamperKind(enum.StrEnum):
    """What ``verify`` found, named."""

    EDITED = "edited"  # a row does not match its MAC: edited, or rewritten without the key
    LINK = "broken link"  # a row does not follow its predecessor: deleted, inserted, reordered
    GAP = "deleted rows"  # ids jump in the keyed part
    TRUNCATED = "truncated"  # fewer rows than the checkpoint saw
    REWRITTEN = "rewritten"  # the checkpointed row has another MAC: history rewritten, or
    # its id re-used after the newest rows were deleted


class AuditTamperError(AuditIntegrityError):
    """The audit chain does not verify; ``kind`` names what was found."""

    def __init__(self, kind: TamperKind, message: str) -> None:
        self.kind = kind
        super().__init__(f"{kind.value}: {message}")


@dataclass(frozen=True, slots=True)
class ChainRow:
    """What verification reads of one row (from the database or an exported copy)."""

    id: int
    event: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def chain_row(row: AuditRow) -> ChainRow:
    """A stored row as verification reads it."""
    return ChainRow(row.id, row.event, _payload_of(row), row.prev_hash, row.hash)


def exported_row(data: dict[str, Any]) -> ChainRow:
    """A row of ``audit --format json`` (one JSON object per line) as verification reads it."""
    try:
        recorded = dt.datetime.fromisoformat(str(data["recorded_at"]))
        ev = AuditEvent(**{k: data[k] for k in (
            "event", "actor", "authorization_id", "provider", "order_id", "amount", "currency",
            "idempotency_key", "state_from", "state_to", "outcome")})
        detail = data["detail"]
        detail_json = detail if isinstance(detail, str) else _canonical(detail)
        return ChainRow(int(data["id"]), ev.event, _row_payload(recorded, ev, detail_json),
                        str(data["prev_hash"]), str(data["hash"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditIntegrityError(f"exported row is not an audit row: {exc!r}") from None


def iter_rows(engine: Engine, batch: int = 5000) -> Iterator[ChainRow]:
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
        yield from (chain_row(r) for r in chunk)
        last_id = chunk[-1].id


def verify_rows(
    rows: Iterable[ChainRow],
    key: bytes,
    checkpoint: Checkpoint | None = None,
    expect_head: str | None = None,
    expect_rows: int | None = None,
    require_keyed: bool = True,
) -> VerifyReport:
    """Check every link, then the anchor; raise AuditTamperError naming what was found.

    Rows before the first re-key row are checked as the legacy plain chain; the re-key
    row and every row after it by their MAC over (id, previous MAC, row), with ids
    dense. ``checkpoint`` (or ``expect_head``/``expect_rows`` from an auditor): the row
    the anchor names must exist with that MAC at that position, and the table must hold
    at least that many rows.
    """
    prev = GENESIS
    count = 0
    last_id = 0
    keyed_from: int | None = None
    legacy_rows = 0
    anchor_rows = checkpoint.rows if checkpoint is not None else expect_rows
    anchor_head = checkpoint.head if checkpoint is not None else expect_head
    anchor_seen = False
    for row in rows:
        if keyed_from is None and row.event == REKEY_EVENT:
            keyed_from, legacy_rows = row.id, count
        if row.prev_hash != prev:
            raise AuditTamperError(TamperKind.LINK, (
                f"audit row {row.id} does not follow the row before it (a row was deleted, "
                "inserted or reordered before it)"))
        if keyed_from is not None:
            if row.id != keyed_from and row.id != last_id + 1:
                raise AuditTamperError(TamperKind.GAP, (
                    f"audit row ids jump from {last_id} to {row.id}: rows were deleted"))
            if not hmac.compare_digest(row_mac(key, row.id, prev, row.payload), row.hash):
                raise AuditTamperError(TamperKind.EDITED, (
                    f"audit row {row.id} does not match its MAC: it was edited, moved to "
                    "another id, or rewritten without the key (or the key is not the one "
                    "that wrote it)"))
        elif chain_hash(prev, row.payload) != row.hash:
            raise AuditTamperError(TamperKind.EDITED,
                                   f"audit row {row.id} was edited after it was written")
        prev = row.hash
        count += 1
        last_id = row.id
        if anchor_rows is not None and count == anchor_rows:
            anchor_seen = True
            if checkpoint is not None and row.id != checkpoint.last_id:
                raise AuditTamperError(TamperKind.REWRITTEN, (
                    f"row {count} of the chain has id {row.id}, but the checkpoint "
                    f"({checkpoint.describe()}) saw id {checkpoint.last_id} there"))
            if anchor_head is not None and not hmac.compare_digest(row.hash, anchor_head):
                raise AuditTamperError(TamperKind.REWRITTEN, (
                    f"audit row {row.id} (row {count}) has MAC {row.hash}, the anchor says "
                    f"{anchor_head}: the history up to it was rewritten, or its id re-used "
                    "after the newest rows were deleted"))
    if require_keyed and keyed_from is None:
        raise AuditTamperError(TamperKind.TRUNCATED if count == 0 else TamperKind.REWRITTEN, (
            "the table holds no re-key row (every database migrated to 0006 starts its keyed "
            f"chain with one; found {count} unkeyed rows): audit_log was truncated or "
            "rewritten as an unkeyed chain"))
    if anchor_rows is not None and not anchor_seen:
        raise AuditTamperError(TamperKind.TRUNCATED, (
            f"the table holds {count} rows (last id {last_id}), the anchor saw {anchor_rows}"
            + (f" up to id {checkpoint.last_id}" if checkpoint is not None else "")
            + ": the newest rows were deleted or the table was truncated"))
    return VerifyReport(rows=count, last_id=last_id, last_hash=prev, keyed_from=keyed_from,
                        legacy_rows=legacy_rows, checkpoint=checkpoint)


def verify(
    engine: Engine,
    checkpoint: Checkpoint | None = None,
    expect_head: str | None = None,
    expect_rows: int | None = None,
    key: bytes | None = None,
) -> VerifyReport:
    """Verify the whole audit chain in the database (with its key, unless given one)."""
    return verify_rows(iter_rows(engine), key if key is not None else anchor.key_for(engine.url),
                       checkpoint, expect_head, expect_rows)


# ---------------------------------------------------------------- checkpoints

_REKEY: dict[str, tuple[int, int]] = {}  # database -> (re-key row id, legacy rows)


def _rekey_row(connection: Any) -> tuple[int, int] | None:
    """The re-key row's id and the legacy row count it names (cached: it never changes)."""
    name = connection.engine.url.render_as_string(hide_password=True)
    found = _REKEY.get(name)
    if found is None:
        row = connection.execute(
            select(AUDIT_LOG.c.id, AUDIT_LOG.c.detail).where(AUDIT_LOG.c.event == REKEY_EVENT)
            .order_by(AUDIT_LOG.c.id).limit(1)).first()
        if row is None:
            return None
        found = _REKEY[name] = (int(row[0]), int(json.loads(row[1])["legacy_rows"]))
    return found


def forget_cache() -> None:
    """Drop what is cached per database (its key and re-key row), e.g. after a migration."""
    _REKEY.clear()
    anchor.forget_keys()


class CheckpointMismatch(AuditIntegrityError):
    """The table no longer holds the head the last checkpoint saw; the checkpoint is kept."""


def take_checkpoint(engine: Engine, now: dt.datetime) -> Checkpoint | None:
    """The chain's head now (None for an empty chain). Rows are counted from the dense ids of
    the keyed part and the legacy count the re-key row names: primary-key lookups only."""
    with engine.connect() as connection:
        head = connection.execute(
            select(AUDIT_LOG.c.id, AUDIT_LOG.c.hash).order_by(AUDIT_LOG.c.id.desc()).limit(1)
        ).first()
        if head is None:
            return None
        rekey = _rekey_row(connection)
        if rekey is None:  # an unkeyed chain (never at this schema): count it
            rows = connection.execute(select(func.count()).select_from(AUDIT_LOG)).scalar_one()
        else:
            rows = rekey[1] + int(head[0]) - rekey[0] + 1
    return Checkpoint(last_id=int(head[0]), rows=int(rows), head=str(head[1]),
                      at=anchor.now_text(now))


def still_holds(engine: Engine, previous: Checkpoint) -> str | None:
    """Why the table no longer holds ``previous`` (None when it does): the checkpointed row
    must still be there, at that id, with that MAC."""
    with engine.connect() as connection:
        mac = connection.execute(
            select(AUDIT_LOG.c.hash).where(AUDIT_LOG.c.id == previous.last_id)).scalar()
    if mac is None:
        return (f"audit row {previous.last_id} is gone; the checkpoint saw "
                f"{previous.describe()}: rows were deleted or truncated")
    if mac != previous.head:
        return (f"audit row {previous.last_id} now has MAC {mac}; the checkpoint saw "
                f"{previous.describe()}: history was rewritten or the id re-used")
    return None


def write_checkpoint(engine: Engine, now: dt.datetime) -> Checkpoint | None:
    """Take a checkpoint and keep it outside the database: the checkpoint file (when there is
    one), the log line ``action=audit:checkpoint`` (the journal), and the caller's metrics.

    The file is replaced only when the table still holds the checkpoint it had; otherwise
    it is kept as evidence, the mismatch is logged at ERROR and CheckpointMismatch raised.
    """
    current = take_checkpoint(engine, now)
    if current is None:
        return None
    path = anchor.checkpoint_path(engine.url)
    if path is not None:
        previous = anchor.read_checkpoint(path)
        problem = still_holds(engine, previous) if previous is not None else None
        if problem is not None:
            log.error("audit checkpoint refused: %s", problem, extra={
                "action": "audit:checkpoint:mismatch", "checkpoint_file": str(path)})
            raise CheckpointMismatch(f"{problem}; {path} is kept unchanged, run "
                                     "`expiry-watchdog audit verify`")
        if previous is None or previous.last_id <= current.last_id:
            # (another worker may have written a newer one since this head was read)
            anchor.write_checkpoint_file(path, current)
    log.info("audit checkpoint: %s", current.describe(), extra={
        "action": "audit:checkpoint", "audit_last_id": current.last_id,
        "audit_rows": current.rows, "audit_head": current.head,
        "checkpoint_file": str(path) if path else None})
    return current


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
