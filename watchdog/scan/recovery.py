"""Recovery of an in-flight intent without an outcome: ask the provider, then record the
effect, resend with the same key, try again later, or hand over to a human.

Every write goes through the group committer (``ctx.commit``), never a blocking
transaction of its own: on PostgreSQL such a transaction, run on the event loop, can wait
for the audit chain's lock while the committer's transaction holding it waits for the
loop (seen as a pass that hung after a database restart)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from watchdog import store
from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.domain import ActionKind, ActionStatus, ProviderName, State
from watchdog.models import Action, Authorization
from watchdog.providers.base import Outcome, ProviderResult, ProviderState
from watchdog.reconcile import effect_present
from watchdog.scan.actions import send
from watchdog.scan.context import ScanContext
from watchdog.scan.outcome import outcome_too_late, record_outcome
from watchdog.scan.pacing import backoff
from watchdog.scan.sync import read_status, result_detail, status_event
from watchdog.transitions import Event

MAX_RECOVERIES = 5


async def recover(ctx: ScanContext, row: Authorization) -> bool:
    """An in-flight intent has no outcome: ask the provider, then record or resend."""
    with Session(ctx.engine) as session:
        action = session.execute(
            select(Action)
            .where(
                Action.authorization_id == row.id,
                Action.status.in_([s for s in ActionStatus if s.is_open]),
            )
            .order_by(Action.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    adapter = ctx.adapter(row)
    if action is None or adapter is None:
        await needs_attention(
            ctx,
            row,
            None,
            "in-flight state without an open intent"
            if action is None
            else "provider not configured",
        )
        return False
    result = await read_status(ctx, row)
    now = ctx.clock.now()
    snap = result.snapshot if result is not None else None
    present = (
        effect_present(store.snapshot(row), ActionKind(action.kind), action.amount, snap)
        if snap is not None
        else None
    )
    check = ctx.write(row, now)
    if result is not None:
        check.events.append(status_event(ctx, row, result))
    check.events.append(
        ctx.event(
            row,
            f"recovery:{action.kind}:check",
            key=action.idempotency_key,
            outcome={True: "present", False: "absent", None: "unknown"}[present],
            detail={"status": result_detail(result) if result else None},
        )
    )
    if (
        snap is not None
        and snap.state is ProviderState.CAPTURE_PENDING
        and action.kind == ActionKind.CAPTURE.value
    ):
        await ctx.commit(check)
        # Our capture reached the provider and waits for its confirmation: not final.
        await record_outcome(
            ctx,
            row,
            action,
            ProviderResult(
                Outcome.PENDING,
                action.kind,
                ProviderName(row.provider),
                message="capture found pending at the provider during recovery",
                snapshot=snap,
            ),
        )
        return True
    if present is True:
        await ctx.commit(check)
        await record_outcome(
            ctx,
            row,
            action,
            ProviderResult(
                Outcome.ALREADY_DONE,
                action.kind,
                ProviderName(row.provider),
                message="effect found at the provider during recovery",
            ),
        )
        return True
    if present is False:
        if now >= ctx.timeline(row).guard_at:
            await ctx.commit(check)
            await outcome_too_late(ctx, row, action)
            return True
        check.events.append(
            ctx.event(
                row,
                f"recovery:{action.kind}:resend",
                key=action.idempotency_key,
                amount=action.amount,
            )
        )
        await ctx.commit(check)
        return await send(ctx, row, action, adapter)
    # Still cannot tell.
    if action.recoveries + 1 >= MAX_RECOVERIES or now >= ctx.timeline(row).guard_at:
        await ctx.commit(check)
        await needs_attention(ctx, row, action, "outcome still unknown after recovery attempts")
        return False
    recoveries = action.recoveries + 1
    next_at = min(now + backoff(recoveries, None), ctx.timeline(row).guard_at)
    check.update_action(action.idempotency_key, {"recoveries": recoveries})
    check.transition(
        Event.RECOVER,
        {"next_action_at": next_at, "claimed_by": None, "claimed_until": None, "updated_at": now},
    )
    await ctx.commit(check)
    return False


async def needs_attention(
    ctx: ScanContext, row: Authorization, action: Action | None, why: str
) -> None:
    """Hand the row to a human: mark it needs_attention, audit, page, release it."""
    now = ctx.clock.now()
    write = ctx.write(row, now)
    if action is not None:
        write.update_action(action.idempotency_key, {"status": ActionStatus.UNKNOWN})
    write.transition(
        Event.NEEDS_ATTENTION,
        {"state": State.NEEDS_ATTENTION.value, "last_error": why, "updated_at": now},
    )
    ctx.replan_into(write)
    write.events.append(
        ctx.event(
            row,
            "scan:authorization:needs_attention",
            state_to=State.NEEDS_ATTENTION.value,
            key=action.idempotency_key if action else None,
            detail={"reason": why},
        )
    )
    write.alerts.append(
        lambda session: ctx.alert(
            session,
            row,
            AlertKind.NEEDS_ATTENTION,
            Severity.CRITICAL,
            f"{row.provider} order {row.order_id}: {why}",
            why,
            now,
        )
    )
    write.release = True
    await ctx.commit(write)
