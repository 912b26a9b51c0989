"""Sync: read the provider's status for a row and reconcile our record with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchdog import audit, store
from watchdog.alerting import AlertKind, Severity, resolve_alerts
from watchdog.audit import AuditEvent
from watchdog.domain import ProviderName, State
from watchdog.models import Authorization
from watchdog.providers.base import ProviderResult
from watchdog.providers.retry import with_retries
from watchdog.reconcile import reconcile
from watchdog.scan.context import ScanContext


async def read_status(ctx: ScanContext, row: Authorization) -> ProviderResult | None:
    """Ask the provider (with retries); None when it is not configured. Not audited yet."""
    adapter = ctx.adapter(row)
    if adapter is None:
        return None
    settings = ctx.config.provider(ProviderName(row.provider))
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
        now = ctx.clock.now()
        with ctx.tx() as session:
            audit.append(session, [status_event(ctx, row, result)], now)
    return result


async def sync(ctx: ScanContext, row: Authorization) -> ProviderResult | None:
    """Read the provider's status and apply what it says, audited in the same transaction."""
    result = await read_status(ctx, row)
    now = ctx.clock.now()
    if result is None or result.snapshot is None:
        with ctx.tx() as session:
            if result is not None:
                audit.append(session, [status_event(ctx, row, result)], now)
            store.guarded_update(
                session,
                row,
                [State(row.state)],
                {
                    "last_synced_at": now,
                    "updated_at": now,
                    "last_error": result.describe() if result else "provider not configured",
                },
                worker=ctx.worker,
            )
        return result
    apply_reconciliation(ctx, row, result, now, audit_read=True)
    return result


def apply_reconciliation(
    ctx: ScanContext,
    row: Authorization,
    result: ProviderResult,
    now: dt.datetime,
    *,
    audit_read: bool = False,
) -> None:
    """Write what the provider reports: state, amounts, deadline; audit and alert on drift."""
    snap = store.snapshot(row)
    rec = reconcile(snap, result, now)
    values = dict(rec.values, updated_at=now)
    old_deadline = row.deadline
    with ctx.tx() as session:
        events: list[AuditEvent] = [status_event(ctx, row, result)] if audit_read else []
        if rec.new_state is not None and rec.new_state.value != row.state:
            values["state"] = rec.new_state.value
            if rec.new_state.is_final or rec.new_state is State.NEEDS_ATTENTION:
                values["instruction"] = None
            events.append(
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
        store.guarded_update(session, row, [State(row.state)], values, worker=ctx.worker)
        ctx.replan(session, row, now)
        if row.deadline < old_deadline:
            events.append(
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
        audit.append(session, events, now)
        if rec.drift:
            ctx.alert(
                session,
                row,
                AlertKind.NEEDS_ATTENTION if rec.new_state is None else drift_kind(rec.new_state),
                Severity.CRITICAL if rec.new_state is State.EXPIRED else Severity.WARNING,
                f"{row.provider} {row.order_id}: {rec.drift}",
                rec.drift,
                now,
            )
        if rec.attention:
            ctx.alert(
                session,
                row,
                AlertKind.NEEDS_ATTENTION,
                Severity.CRITICAL,
                f"{row.provider} {row.order_id}: {rec.attention}",
                rec.attention,
                now,
            )
        if State(row.state) in (State.CAPTURED, State.CANCELED):
            resolve_alerts(session, row.id, now, ctx.worker, f"provider reports {row.state}")


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
        "message": result.message,
        "provider_state": snap.raw_state if snap else None,
        "captured_amount": snap.captured_amount if snap else None,
        "open_amount": snap.open_amount if snap else None,
        "expires_at": snap.expires_at.isoformat() if snap and snap.expires_at else None,
        "raw": result.raw,
    }
