"""SQLAlchemy tables. The schema changes only through the alembic migrations (``alembic/``)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from watchdog.domain import ActionStatus, State

UTC = dt.UTC

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An instant stored in UTC; refuses naive datetimes and always reads back aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; give an offset")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=enum.StrEnum)


class EnumText(TypeDecorator[E], Generic[E]):
    """A ``StrEnum`` kept as its value in a plain VARCHAR: no native enum type, so the
    stored strings and the migrations stay as they are (and ``alembic check`` sees the
    VARCHAR it always saw). Rows read back as members; a value written that is not a
    member is refused before it reaches the database. Compared values (a range or prefix
    of states in ``risk``) are taken as plain strings."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum_class(value).value  # ValueError names a string not in the enum

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        if value is None:
            return None
        return self.enum_class(value)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        return _COMPARED


class _ComparedText(TypeDecorator[str]):
    """The type of a value compared with an ``EnumText`` column: members as their value,
    strings as they are."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, enum.Enum):
            return str(value.value)
        return value  # type: ignore[no-any-return]


_COMPARED = _ComparedText()

Id = BigInteger().with_variant(Integer(), "sqlite")


PARTIAL_INDEXES = {
    "ix_authorizations_due": "next_action_at IS NOT NULL",
    "ix_actions_open": "status IN ('pending', 'unknown')",
    "ix_alert_deliveries_pending": "status = 'pending'",
    "ix_authorizations_unsynced": "last_synced_at IS NULL",
    "ix_authorizations_claimed_by": "claimed_by IS NOT NULL",
}
"""The WHERE of each partial index, as the migrations create it on both databases.

The models leave it out: ``postgresql_where`` / ``sqlite_where`` make SQLAlchemy load
both dialect packages when this module is imported, ~50 ms of every ``scan`` a systemd
timer starts (the PostgreSQL one even on SQLite). ``tests/integration/test_migrations.py``
checks that the migrated database has exactly these WHERE clauses.
"""


class Base(DeclarativeBase):
    """Declarative base with explicit constraint names."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_STATES = ", ".join(f"'{s.value}'" for s in State)


class Authorization(Base):
    """One authorization the watchdog keeps: the queue is this table."""

    __tablename__ = "authorizations"
    __table_args__ = (
        # Order ids are chosen by each merchant account (migration 0008).
        UniqueConstraint("provider", "account", "order_id"),
        CheckConstraint(f"state IN ({_STATES})", name="state"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("captured_amount >= 0 AND captured_amount <= amount", name="captured"),
        # Partial (WHERE next_action_at IS NOT NULL) in the migrations: see PARTIAL_INDEXES.
        Index(
            "ix_authorizations_due",
            "next_action_at",
            "id",  # the claim's ORDER BY: read n entries and stop, no sort
        ),
        Index("ix_authorizations_state_deadline", "state", "deadline"),  # check (risk.py)
        # Partial (WHERE last_synced_at IS NULL): the early read's queue, deadline first.
        Index("ix_authorizations_unsynced", "deadline", "id"),
        # Partial (WHERE claimed_by IS NOT NULL): the rows held right now, per worker.
        Index("ix_authorizations_claimed_by", "claimed_by"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    # The merchant account at the provider (``watchdog.accounts``); ``default`` without one.
    account: Mapped[str] = mapped_column(String(32), default="default", server_default="default")
    order_id: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    authorized_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    on_deadline: Mapped[str | None] = mapped_column(String(16))
    capture_amount: Mapped[int | None] = mapped_column(BigInteger)

    # A plain string, not ``EnumText(State)``: ``check`` (the second line of defence) must
    # judge rows in a state this version does not know (a newer or older schema's
    # confirming state, tests/alerts/test_check_data.py), which a strict enum column
    # would refuse to read. Writers name ``State`` members; the CHECK constraint and the
    # transition table (``watchdog.transitions``) keep the values legal.
    state: Mapped[str] = mapped_column(String(24), default=State.AUTHORIZED.value)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    capture_count: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deadline_source: Mapped[str] = mapped_column(String(24))
    next_action_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    alert_stage: Mapped[int] = mapped_column(SmallInteger, default=0)

    instruction: Mapped[str | None] = mapped_column(String(24))
    instruction_amount: Mapped[int | None] = mapped_column(BigInteger)
    instruction_final: Mapped[bool] = mapped_column(Boolean, default=False)

    provider_state: Mapped[str | None] = mapped_column(String(40))
    provider_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider_open_amount: Mapped[int | None] = mapped_column(BigInteger)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Action(Base):
    """A capture or cancel intent: committed before the provider is called, outcome after."""

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("authorization_id", "kind", "seq", "attempt"),
        # Partial (WHERE status IN ('pending', 'unknown')) in the migrations.
        Index("ix_actions_open", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    authorization_id: Mapped[int] = mapped_column(ForeignKey("authorizations.id"))
    kind: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer)  # which capture (1st, 2nd, ...) this intent is
    attempt: Mapped[int] = mapped_column(Integer)  # bumps only after a definite "nothing moved"
    idempotency_key: Mapped[str] = mapped_column(String(100))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    final: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[ActionStatus] = mapped_column(EnumText(ActionStatus, 16))
    sends: Mapped[int] = mapped_column(Integer, default=0)
    recoveries: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(200))
    provider_code: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Installation(Base):
    """One row: this database's random id, made with the schema (migration 0005).

    Every idempotency key carries it, so keys never repeat across databases: a new
    database gets a new id, a restore keeps its own."""

    __tablename__ = "installation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """Append-only record of every decision and provider call, chained by a keyed MAC (audit.py)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_authorization_id", "authorization_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(64))
    authorization_id: Mapped[int | None] = mapped_column(BigInteger)
    provider: Mapped[str | None] = mapped_column(String(16))
    order_id: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    state_from: Mapped[str | None] = mapped_column(String(24))
    state_to: Mapped[str | None] = mapped_column(String(24))
    outcome: Mapped[str | None] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text)
    # From the re-key row on: the previous row's MAC and this row's HMAC-SHA256 (hex); before
    # it, the legacy plain SHA-256 links.
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Alert(Base):
    """An alert in the outbox: written with the state change that raised it."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index("ix_alerts_status", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    authorization_id: Mapped[int | None] = mapped_column(BigInteger)
    provider: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    notified_revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Pass(Base):
    """One scan pass: the heartbeat that the dead-man's switch and ``check`` read."""

    __tablename__ = "passes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)


class Worker(Base):
    """A live scanning process and its heartbeat (procrastinate's ``workers`` table).

    Rows leased to a worker whose heartbeat is older than one lease, or that has no row
    here, are free to claim: a dead worker's rows come back within one lease of its last
    heartbeat, however slow the provider call it died in.
    """

    __tablename__ = "workers"
    __table_args__ = (Index("ix_workers_heartbeat_at", "heartbeat_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Boot id and PID namespace of the process: a restarted daemon with the same key can
    # tell that a previous incarnation's pid is gone and take its rows at once.
    host_key: Mapped[str | None] = mapped_column(String(120))
    pid: Mapped[int | None] = mapped_column(Integer)


class AlertDelivery(Base):
    """One alert revision to deliver to one sink: retried with backoff, never blocks a pass."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "sink", "revision"),
        # Partial (WHERE status = 'pending') in the migrations.
        Index("ix_alert_deliveries_pending", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    sink: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(16))  # trigger | resolve
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token for the HTTP API; only its hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("token_hash"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(16))  # read | write
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Control(Base):
    """Operator switches every instance obeys (pause globally or per provider)."""

    __tablename__ = "controls"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
