"""Sync: read the provider's status for a row and reconcile our record with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchdog import store
from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.audit import AuditEvent
from watchdog.audit_evidence import capped_message, evidence
from watchdog.domain import State
from watchdog.models import Authorization
from watchdog.providers.base import ProviderResult
from watchdog.providers.retry import with_retries
from watchdog.reconcile import reconcile
from watchdog.scan.context import ScanContext
from watchdog.scan.writes import RowWrite
from watchdog.transitions import Event


async def read_status(ctx: ScanContext, row: Authorization) -> ProviderResult | None:
    """Ask the provider (with retries); None when it is not configured. Not audited yet."""
    adapter = ctx.adapter(row)
    if adapter is None:
        return None
    settings = ctx.settings(row)
    return await with_retries(
        lambda: adapter.status(ctx.ref(row)),
        settings.retry_attempts,
        settings.retry_backoff,
        ctx.sleep,
    )


def status_event(ctx: ScanContext, row: Authorization, result: ProviderResult) -> AuditEvent:
    """The audit row for a status answer."""
    return ctx.event(
        row, "scan:status:read", outcome=result.outcome.value, detail=result_detail(result)
    )


async def status(ctx: ScanContext, row: Authorization) -> ProviderResult | None:
    """Ask the provider (with retries) and audit the answer; None when not configured."""
    result = await read_status(ctx, row)
    if result is not None:
        write = ctx.write(row, ctx.clock.now())
        write.events.append(status_event(ctx, row, result))
        await ctx.commit(write)  # audit only: no guard, nothing else changes
    return result


async def sync(ctx: ScanContext, row: Authorization) -> ProviderResult | None:
    """Read the provider's status and apply what it says, audited in the same transaction."""
    result = await read_status(ctx, row)
    write = ctx.write(row, ctx.clock.now())
    status_into(ctx, write, result)
    await ctx.commit(write)
    return result


def status_into(ctx: ScanContext, write: RowWrite, result: ProviderResult | None) -> None:
    """Add a status answer to ``write``: what the provider reports, or why there is none."""
    row, now = write.row, write.now
    if result is None or result.snapshot is None:
        if result is not None:
            write.events.append(status_event(ctx, row, result))
        write.transition(
            Event.SYNC,
            {
                "last_synced_at": now,
                "updated_at": now,
                "last_error": result.describe() if result else "provider not configured",
            },
        )
        return
    reconcile_into(ctx, write, result, audit_read=True)


async def apply_reconciliation(
    ctx: ScanContext, row: Authorization, result: ProviderResult, now: dt.datetime
) -> None:
    """Write what the provider reports (the answer itself is audited already)."""
    write = ctx.write(row, now)
    reconcile_into(ctx, write, result, audit_read=False)
    await ctx.commit(write)


def reconcile_into(
    ctx: ScanContext, write: RowWrite, result: ProviderResult, *, audit_read: bool
) -> None:
    """Add what the provider reports to ``write``: state, amounts, deadline; the audit rows,
    and the alerts on drift."""
    row, now = write.row, write.now
    rec = reconcile(store.snapshot(row), result, now)
    values = dict(rec.values, updated_at=now)
    old_deadline = row.deadline
    if audit_read:
        write.events.append(status_event(ctx, row, result))
    if rec.new_state is not None and rec.new_state.value != row.state:
        values["state"] = rec.new_state.value
        if rec.new_state.is_final or rec.new_state is State.NEEDS_ATTENTION:
            values["instruction"] = None
        write.events.append(
            ctx.event(
                row,
                "scan:sync:state",
                state_to=rec.new_state.value,
                detail={
                    "provider_state": result.snapshot.raw_state if result.snapshot else None,
                    "drift": rec.drift,
                    "attention": rec.attention,
                },
            )
        )
    write.transition(Event.SYNC, values)
    ctx.replan_into(write)
    if row.deadline < old_deadline:
        write.events.append(
            ctx.event(
                row,
                "scan:deadline:earlier",
                detail={
                    "was": old_deadline.isoformat(),
                    "now": row.deadline.isoformat(),
                    "source": row.deadline_source,
                },
            )
        )
    if rec.drift:
        drift = rec.drift
        kind = AlertKind.NEEDS_ATTENTION if rec.new_state is None else drift_kind(rec.new_state)
        severity = Severity.CRITICAL if rec.new_state is State.EXPIRED else Severity.WARNING
        write.alerts.append(
            lambda session: ctx.alert(
                session, row, kind, severity, f"{row.provider} {row.order_id}: {drift}", drift, now
            )
        )
    if rec.mismatch:
        mismatch = rec.mismatch
        snap = result.snapshot
        write.events.append(
            ctx.event(
                row,
                "scan:provider:mismatch",
                amount=row.amount,
                detail={
                    "registered_amount": row.amount,
                    "registered_currency": row.currency,
                    "provider_amount": snap.amount if snap else None,
                    "provider_currency": snap.currency if snap else None,
                    "provider_open_amount": snap.open_amount if snap else None,
                    "mismatch": mismatch,
                },
            )
        )
        mismatch_severity = (
            Severity.CRITICAL if rec.new_state is State.NEEDS_ATTENTION else Severity.WARNING
        )
        write.alerts.append(
            lambda session: ctx.alert(
                session,
                row,
                AlertKind.PROVIDER_MISMATCH,
                mismatch_severity,
                f"{row.provider} {row.order_id}: {mismatch}",
                mismatch,
                now,
            )
        )
    if rec.attention:
        attention = rec.attention
        write.alerts.append(
            lambda session: ctx.alert(
                session,
                row,
                AlertKind.NEEDS_ATTENTION,
                Severity.CRITICAL,
                f"{row.provider} {row.order_id}: {attention}",
                attention,
                now,
            )
        )
    if State(row.state) in (State.CAPTURED, State.CANCELED):
        write.resolve(f"provider reports {row.state}")


def drift_kind(state: State) -> AlertKind:
    """The alert for a provider state that moved without us."""
    return AlertKind.AUTHORIZATION_EXPIRED if state is State.EXPIRED else AlertKind.NEEDS_ATTENTION


def result_detail(result: ProviderResult) -> dict[str, Any]:
    """A provider answer as audit detail."""
    snap = result.snapshot
    return {
        "outcome": result.outcome.value,
        "http_status": result.http_status,
        "provider_code": result.provider_code,
        "request_id": result.request_id,
        "message": capped_message(result.message),
        "provider_state": snap.raw_state if snap else None,
        "captured_amount": snap.captured_amount if snap else None,
        "open_amount": snap.open_amount if snap else None,
        "expires_at": snap.expires_at.isoformat() if snap and snap.expires_at else None,
        "amount": snap.amount if snap else None,
        "currency": snap.currency if snap else None,
        # Not the raw answer: an allow-list of its fields, its digest and size (no
        # personal data goes into the append-only audit; watchdog.audit_evidence).
        **evidence(result.provider, result.raw),
    }
