"""Deadline stages of an open authorization: the approaching/critical alerts, and expiry."""

from __future__ import annotations

import datetime as dt

from watchdog import store
from watchdog.alerts.outbox import AlertKind, Severity, deadline_text
from watchdog.domain import AlertStage, State
from watchdog.models import Authorization
from watchdog.money import format_money
from watchdog.policy import Decision, Step
from watchdog.reconcile import reconcile
from watchdog.scan.context import ScanContext
from watchdog.scan.sync import apply_reconciliation, status
from watchdog.scan.writes import RowWrite
from watchdog.transitions import Event


async def alert_stage(
    ctx: ScanContext, row: Authorization, decision: Decision, now: dt.datetime
) -> None:
    """Raise the approaching or critical deadline alert and remember the stage reached."""
    critical = decision.step is Step.ALERT_CRITICAL
    kind = AlertKind.DEADLINE_CRITICAL if critical else AlertKind.DEADLINE_APPROACHING
    stage = AlertStage.CRITICAL if critical else AlertStage.APPROACHING
    summary = (
        f"{row.provider} order {row.order_id}: "
        f"{format_money(row.amount - row.captured_amount, row.currency)} still open, "
        f"deadline {deadline_text(row.deadline, ctx.config.zone)}"
    )
    write = ctx.write(row, now)
    write.transition(Event.ALERT, {"alert_stage": int(stage), "updated_at": now})
    severity = Severity.CRITICAL if critical else Severity.WARNING
    write.alerts.append(
        lambda session: ctx.alert(session, row, kind, severity, summary, decision.reason, now)
    )
    if critical:
        # Resolved after the critical alert is raised, in the same transaction, as before.
        write.resolve("escalated to critical", kinds=(AlertKind.DEADLINE_APPROACHING,))
    ctx.replan_into(write)
    await ctx.commit(write)


async def expire(ctx: ScanContext, row: Authorization, decision: Decision) -> None:
    """The deadline passed with money still open: unless the provider says it was settled,
    mark the authorization expired and page."""
    result = await status(ctx, row)
    now = ctx.clock.now()
    if result is not None and result.snapshot is not None:
        rec = reconcile(store.snapshot(row), result, now)
        if rec.new_state in (State.CAPTURED, State.CANCELED):
            await apply_reconciliation(ctx, row, result, now)
            return
    guard_at = ctx.timeline(row).guard_at
    if ctx.last_pass_end is not None and ctx.last_pass_end < guard_at <= now - (
        ctx.config.scheduler.scan_interval * 2
    ):
        decision = Decision(
            decision.step,
            decision.next_action_at,
            f"{decision.reason}; watchdog was down from "
            f"{ctx.last_pass_end.isoformat()} to {now.isoformat()}",
        )
    write = ctx.write(row, now)
    expired_into(
        ctx,
        write,
        Event.EXPIRE,
        "scan:authorization:expire",
        decision.reason,
        f"{row.provider} order {row.order_id}: authorization lost "
        f"({format_money(row.amount - row.captured_amount, row.currency)} never captured, "
        f"deadline {deadline_text(row.deadline, ctx.config.zone)})",
    )
    await ctx.commit(write)


def expired_into(
    ctx: ScanContext,
    write: RowWrite,
    transition: Event,
    event: str,
    reason: str,
    summary: str,
    key: str | None = None,
) -> None:
    """Add to ``write``: mark the row expired (``transition``: ``expire`` from an open
    state, ``abandon`` from an in-flight one), audit why, page (authorization_expired) and
    supersede its other alerts.

    A write for the group committer rather than a transaction of its own: on PostgreSQL a
    blocking transaction on the event loop can wait for the audit chain's lock while the
    committer's transaction, which holds it, waits for the loop."""
    row, now = write.row, write.now
    write.transition(
        transition,
        {
            "state": State.EXPIRED.value,
            "next_action_at": None,
            "instruction": None,
            "updated_at": now,
        },
    )
    write.events.append(
        ctx.event(row, event, key=key, state_to=State.EXPIRED.value, detail={"reason": reason})
    )
    write.alerts.append(
        lambda session: ctx.alert(
            session, row, AlertKind.AUTHORIZATION_EXPIRED, Severity.CRITICAL, summary, reason,
            now,
        )
    )
    write.resolve("superseded by authorization_expired")

