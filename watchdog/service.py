"""The watchdog as a library: register, import, instruct, plan, show.

The CLI, the HTTP API and embedding applications all call these functions, so a
record is validated and stored the same way whichever door it came through. Each takes
the configuration's Planner (``planner=``; built from ``config`` when not given), which
plans every row it stores or changes: the store is handed plain column values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from watchdog import audit, store
from watchdog.accounts import DEFAULT_ACCOUNT, require_account
from watchdog.audit import AuditEvent
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import Config
from watchdog.db import make_engine, transaction
from watchdog.domain import AuthorizationSnapshot, InstructionKind, State
from watchdog.errors import (
    ConfigError,
    ConflictError,
    InstructionRefused,
    TransitionError,
    ValidationError,
)
from watchdog.importer import Rejection, parse_file
from watchdog.models import Authorization
from watchdog.money import format_money
from watchdog.planner import Planner
from watchdog.registration import NewAuthorization, validate_record
from watchdog.store import Registered
from watchdog.text import printable
from watchdog.transitions import Event, in_order, sources, starts


def open_engine(config: Config) -> Engine:
    """An engine on the configured database; a URL that does not parse is a ConfigError
    naming the key, with the password masked."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from watchdog.dberrors import redact, safe_url

    try:
        return make_engine(config.database_url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        reason = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        config.database_url)
        raise ConfigError(f"database.url: {safe_url(config.database_url)} is not usable: "
                          f"{reason}") from None


def register(
    engine: Engine,
    config: Config,
    data: Mapping[str, Any],
    actor: str,
    clock: Clock = SYSTEM_CLOCK,
    *,
    planner: Planner | None = None,
) -> Registered:
    """Validate and store one authorization (idempotent when identical)."""
    record = validate_record(data)
    require_account(config, record.provider, record.account)
    planner = planner or Planner(config)
    with transaction(engine) as session:
        return _store(session, planner, record, actor, clock.now())


def _store(
    session: Session, planner: Planner, record: NewAuthorization, actor: str, now: dt.datetime
) -> Registered:
    """Store ``record`` with its deadline and next instant as the planner places them."""
    planned = planner.replan(
        AuthorizationSnapshot(
            id=0,
            provider=record.provider,
            order_id=record.order_id,
            amount=record.amount,
            currency=record.currency,
            authorized_at=record.authorized_at,
            state=State.AUTHORIZED,
            expires_at=record.expires_at,
            on_deadline=record.on_deadline,
            capture_amount=record.capture_amount,
            account=record.account,
        ),
        now,
    )
    return store.register(
        session, record.provider.value, record.order_id, record.comparable(),
        planned.columns(), actor, now, account=record.account,
    )


@dataclass
class ImportReport:
    """What an import stored and what it refused."""

    created: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def import_file(
    engine: Engine,
    config: Config,
    path: Path,
    actor: str,
    fmt: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    batch: int = 500,
    *,
    planner: Planner | None = None,
) -> ImportReport:
    """Store every valid row of ``path`` and report every rejected one."""
    planner = planner or Planner(config)
    parsed = parse_file(path, fmt)
    report = ImportReport(rejections=list(parsed.rejections))
    records = []
    for line, record in parsed.records:
        try:
            require_account(config, record.provider, record.account)
        except ValidationError as exc:
            report.rejections.append(Rejection(line, exc.field, exc.reason))
            continue
        records.append((line, record))
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        try:
            with transaction(engine) as session:
                results = [_store(session, planner, r, actor, clock.now()) for _, r in chunk]
        except ConflictError:
            results = []
            for line, record in chunk:  # fall back row by row to name the conflicting lines
                try:
                    with transaction(engine) as session:
                        results.append(_store(session, planner, record, actor, clock.now()))
                except ConflictError as exc:
                    report.rejections.append(Rejection(line, "order_id", str(exc)))
        report.created += sum(1 for r in results if r.created)
        report.unchanged += sum(1 for r in results if not r.created)
    report.rejections.sort(key=lambda r: r.line)
    return report


def instruct(
    engine: Engine,
    config: Config,
    authorization_id: int,
    kind: InstructionKind,
    actor: str,
    amount: int | None = None,
    final: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    *,
    planner: Planner | None = None,
) -> Authorization:
    """Record a merchant instruction; the worker carries it out with the usual guarantees.

    A refused instruction (not open, an action already in flight, amount or provider rules)
    raises, and the refusal and its reason are audited.
    """
    planner = planner or Planner(config)
    try:
        return _instruct(engine, planner, authorization_id, kind, actor, amount, final, clock)
    except (InstructionRefused, TransitionError) as exc:
        with transaction(engine) as session:
            row = session.get(Authorization, authorization_id)
            audit.append(
                session,
                [
                    AuditEvent(
                        event=f"instruct:{kind.value}:refuse",
                        actor=actor,
                        authorization_id=authorization_id,
                        provider=row.provider if row else None,
                        order_id=row.order_id if row else None,
                        amount=amount,
                        currency=row.currency if row else None,
                        state_from=row.state if row else None,
                        detail={"reason": str(exc)},
                    )
                ],
                clock.now(),
            )
        raise


def _instruct(
    engine: Engine,
    planner: Planner,
    authorization_id: int,
    kind: InstructionKind,
    actor: str,
    amount: int | None,
    final: bool,
    clock: Clock,
) -> Authorization:
    now = clock.now()
    with transaction(engine) as session:
        row = store.get(session, authorization_id)
        snap = store.snapshot(row)
        planner.validate_instruction(snap, kind, amount, final)
        if amount is None and kind is not InstructionKind.CANCEL_NOW:
            amount = planner.open_amount(snap)
        values: dict[str, Any] = {
            "instruction": kind.value,
            "instruction_amount": amount if kind is not InstructionKind.CANCEL_NOW else None,
            "instruction_final": final,
            "updated_at": now,
            "not_before": None,
        }
        try:
            store.guarded_update(session, row, in_order(starts(Event.INSTRUCT)), values)
        except TransitionError as exc:
            raise TransitionError(
                authorization_id, kind.value, f"{exc.reason}; an action is already in flight"
            ) from None
        new_values = planner.replan(store.snapshot(row), now).columns()
        store.guarded_update(session, row, _replan_guard(row), new_values)
        audit.append(
            session,
            [
                audit.about(
                    row,
                    f"instruct:{kind.value}:accept",
                    actor,
                    amount=amount,
                    detail={"final": final},
                )
            ],
            now,
        )
        return row


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One upcoming event for one authorization.

    ``account`` is the merchant account at the provider (``default`` for a provider
    section without ``accounts``); it comes last so positional construction stays valid.
    """

    at: dt.datetime
    what: str
    authorization_id: int
    provider: str
    order_id: str
    open_amount: int
    currency: str
    state: str
    account: str = DEFAULT_ACCOUNT


AtRiskKey = tuple[str, str, str]
"""``plan_view``'s money-at-risk key: (provider, account, currency)."""


def plan_view(
    engine: Engine,
    config: Config,
    horizon: dt.timedelta,
    clock: Clock = SYSTEM_CLOCK,
    limit: int = 10_000,
    *,
    planner: Planner | None = None,
) -> tuple[list[PlanEntry], dict[AtRiskKey, int]]:
    """What happens within ``horizon``, soonest first, and money at risk.

    Money at risk (open, not captured, minor units) is per (provider, account, currency):
    two accounts of one provider are two merchants whose money never adds up, and amounts
    of different currencies never do either. Each entry is planned with its own account's
    window and policy (the Planner reads ``snap.account``).
    """
    planner = planner or Planner(config)
    now = clock.now()
    until = now + horizon
    entries: list[PlanEntry] = []
    with transaction(engine) as session:
        rows = store.list_open(session, until=until, limit=limit)
        at_risk = {
            (provider, account or DEFAULT_ACCOUNT, currency): int(total)
            for provider, account, currency, total in session.execute(
                select(
                    Authorization.provider,
                    Authorization.account,
                    Authorization.currency,
                    func.sum(Authorization.amount - Authorization.captured_amount),
                )
                .where(
                    Authorization.state.notin_(
                        [s.value for s in (State.CAPTURED, State.CANCELED, State.EXPIRED)]
                    )
                )
                .group_by(Authorization.provider, Authorization.account,
                          Authorization.currency)
            )
        }
    for row in rows:
        snap = store.snapshot(row)
        tl = planner.timeline(snap)
        open_amt = row.amount - row.captured_amount
        action = planner.on_deadline(snap).value
        events = [
            (tl.alert_at, "alert"),
            (tl.act_at, action),
            (tl.critical_at, "critical"),
            (tl.deadline, "deadline"),
        ]
        if row.instruction in (InstructionKind.CAPTURE_NOW.value, InstructionKind.CANCEL_NOW.value):
            events.append((row.next_action_at or now, row.instruction))
        for at, what in events:
            if at <= until and (at >= now or what in ("capture_now", "cancel_now")):
                entries.append(
                    PlanEntry(
                        at,
                        what,
                        row.id,
                        row.provider,
                        row.order_id,
                        open_amt,
                        row.currency,
                        row.state,
                        row.account,
                    )
                )
    entries.sort(key=lambda e: (e.at, e.authorization_id))
    return entries, at_risk


def show(
    engine: Engine, config: Config, authorization_id: int, *, planner: Planner | None = None
) -> dict[str, Any]:
    """One authorization with its timeline and audit trail."""
    with transaction(engine) as session:
        row = store.get(session, authorization_id)
    tl = (planner or Planner(config)).timeline(store.snapshot(row))
    return {
        "authorization": authorization_dict(row),
        "timeline": {
            "alert_at": tl.alert_at.isoformat(),
            "act_at": tl.act_at.isoformat(),
            "critical_at": tl.critical_at.isoformat(),
            "guard_at": tl.guard_at.isoformat(),
            "deadline": tl.deadline.isoformat(),
            "deadline_source": tl.deadline_source.value,
        },
        "audit": [audit.row_as_dict(r) for r in audit.query(engine, authorization_id=row.id)],
    }


def authorization_dict(row: Authorization) -> dict[str, Any]:
    """A JSON-ready view of one authorization."""

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "provider": row.provider,
        "account": row.account,
        "order_id": row.order_id,
        "reference": row.reference,
        "amount": row.amount,
        "currency": row.currency,
        "authorized_at": iso(row.authorized_at),
        "expires_at": iso(row.expires_at),
        "on_deadline": row.on_deadline,
        "capture_amount": row.capture_amount,
        "state": row.state,
        "captured_amount": row.captured_amount,
        "deadline": iso(row.deadline),
        "deadline_source": row.deadline_source,
        "next_action_at": iso(row.next_action_at),
        "instruction": row.instruction,
        "instruction_amount": row.instruction_amount,
        "provider_state": row.provider_state,
        "last_error": row.last_error,
    }


def load_for_import(path: str) -> Path:
    """A path to import, or a clear error."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"import file {path} does not exist")
    return p


_RESOLVABLE = {
    State.CAPTURED,
    State.CANCELED,
    State.EXPIRED,
    State.AUTHORIZED,
    State.PARTIALLY_CAPTURED,
}


def resolve_attention(
    engine: Engine,
    config: Config,
    authorization_id: int,
    state: State,
    actor: str,
    note: str,
    captured_amount: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
    *,
    planner: Planner | None = None,
) -> Authorization:
    """Record what an operator found at the provider for an authorization in needs_attention.

    ``authorized`` hands it back to the watchdog; a final state closes it. The note and the
    operator go into the audit trail, and the authorization's alerts resolve.
    """
    from watchdog.alerts.outbox import resolve_alerts
    from watchdog.errors import ValidationError

    if state not in _RESOLVABLE:
        raise ValidationError("--state", f"must be one of {', '.join(sorted(_RESOLVABLE))}")
    if not note.strip():
        raise ValidationError("--note", "say what you found at the provider")
    printable("--note", note)
    planner = planner or Planner(config)
    now = clock.now()
    with transaction(engine) as session:
        row = store.get(session, authorization_id)
        captured = row.captured_amount if captured_amount is None else captured_amount
        if not 0 <= captured <= row.amount:
            raise ValidationError(
                "--captured-amount",
                f"must be between 0 and the authorized {row.amount} (minor units: "
                f"{format_money(row.amount, row.currency)})",
            )
        if state is State.CAPTURED and captured == 0:
            raise ValidationError("--captured-amount", "a captured authorization needs the amount")
        values: dict[str, Any] = {
            "state": state.value,
            "captured_amount": captured,
            "updated_at": now,
            "instruction": None,
            "not_before": None,
            "attempts": 0,
            "last_error": None,
            "claimed_by": None,
            "claimed_until": None,
        }
        previous = row.state
        store.guarded_update(session, row, in_order(sources(Event.RESOLVE, state)), values)
        store.guarded_update(
            session, row, _replan_guard(row), planner.replan(store.snapshot(row), now).columns()
        )
        audit.append(
            session,
            [
                audit.about(
                    row,
                    "operator:authorization:resolve",
                    actor,
                    amount=captured,
                    state_from=previous,
                    state_to=state.value,
                    detail={"note": note},
                )
            ],
            now,
        )
        resolve_alerts(session, row.id, now, actor, f"resolved by operator: {note}")
        return row


def _replan_guard(row: Authorization) -> list[State]:
    """A re-plan keeps the state it read (the table's ``replan`` rows, narrowed to it)."""
    read = State(row.state)
    return [read] if read in sources(Event.REPLAN, read) else []
