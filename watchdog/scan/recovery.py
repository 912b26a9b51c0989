"""Recovery of an in-flight intent without an outcome: ask the provider, then record the
effect, resend with the same key, try again later, or hand over to a human."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from watchdog import audit, store
from watchdog.alerting import AlertKind, Severity
from watchdog.domain import ActionKind, ProviderName, State
from watchdog.models import Action, Authorization
from watchdog.providers.base import Outcome, ProviderResult
from watchdog.reconcile import effect_present
from watchdog.scan.actions import send
from watchdog.scan.context import ScanContext
from watchdog.scan.outcome import outcome_too_late, record_outcome
from watchdog.scan.pacing import backoff
from watchdog.scan.sync import result_detail, status

MAX_RECOVERIES = 5


async def recover(ctx: ScanContext, row: Authorization) -> bool:
    """An in-flight intent has no outcome: ask the provider, then record or resend."""
    with Session(ctx.engine) as session:
        action = session.execute(
            select(Action)
            .where(Action.authorization_id == row.id, Action.status.in_(["pending", "unknown"]))
            .order_by(Action.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    adapter = ctx.adapter(row)
    if action is None or adapter is None:
        needs_attention(
            ctx,
            row,
            None,
            "in-flight state without an open intent"
            if action is None
            else "provider not configured",
        )
        return False
    result = await status(ctx, row)
    now = ctx.clock.now()
    snap = result.snapshot if result is not None else None
    present = (
        effect_present(store.snapshot(row), ActionKind(action.kind), action.amount, snap)
        if snap is not None
        else None
    )
    ctx.audit(
        row,
        f"recovery:{action.kind}:check",
        key=action.idempotency_key,
        outcome={True: "present", False: "absent", None: "unknown"}[present],
        detail={"status": result_detail(result) if result else None},
    )
    if present is True:
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
            outcome_too_late(ctx, row, action)
            return True
        ctx.audit(
            row,
            f"recovery:{action.kind}:resend",
            key=action.idempotency_key,
            amount=action.amount,
        )
        return await send(ctx, row, action, adapter)
    # Still cannot tell.
    if action.recoveries + 1 >= MAX_RECOVERIES or now >= ctx.timeline(row).guard_at:
        needs_attention(ctx, row, action, "outcome still unknown after recovery attempts")
        return False
    with ctx.tx() as session:
        recoveries = action.recoveries + 1
        session.execute(
            update(Action)
            .where(Action.idempotency_key == action.idempotency_key)
            .values(recoveries=recoveries)
        )
        delay = backoff(recoveries, None)
        next_at = min(now + delay, ctx.timeline(row).guard_at)
        store.guarded_update(
            session,
            row,
            [State(row.state)],
            {
                "next_action_at": next_at,
                "claimed_by": None,
                "claimed_until": None,
                "updated_at": now,
            },
            worker=ctx.worker,
        )
    return False


def needs_attention(ctx: ScanContext, row: Authorization, action: Action | None, why: str) -> None:
    """Hand the row to a human: mark it needs_attention, audit, page, release it."""
    now = ctx.clock.now()
    with ctx.tx() as session:
        if action is not None:
            session.execute(
                update(Action)
                .where(Action.idempotency_key == action.idempotency_key)
                .values(status="unknown")
            )
        store.guarded_update(
            session,
            row,
            [State(row.state)],
            {"state": State.NEEDS_ATTENTION.value, "last_error": why, "updated_at": now},
            worker=ctx.worker,
        )
        ctx.replan(session, row, now)
        audit.append(
            session,
            [
                ctx.event(
                    row,
                    "scan:authorization:needs_attention",
                    state_to=State.NEEDS_ATTENTION.value,
                    key=action.idempotency_key if action else None,
                    detail={"reason": why},
                )
            ],
            now,
        )
        ctx.alert(
            session,
            row,
            AlertKind.NEEDS_ATTENTION,
            Severity.CRITICAL,
            f"{row.provider} order {row.order_id}: {why}",
            why,
            now,
        )
        store.release(session, row, ctx.worker)
