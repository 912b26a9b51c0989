"""Guard rails before money moves (dry run, pauses, per-pass budgets, amount limit) and
what happens to a row held back by one, or deferred because it cannot act yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from watchdog import controls
from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.domain import ActionKind, ProviderName
from watchdog.models import Authorization
from watchdog.money import format_money
from watchdog.policy import Decision
from watchdog.scan.context import ScanContext
from watchdog.scan.pacing import FAILURES_BEFORE_ALERT, backoff
from watchdog.transitions import Event

Hold = tuple[str, str, bool]
"""(event, reason, retry_later): why an action must wait."""


def guard_rail(
    ctx: ScanContext, row: Authorization, kind: ActionKind, decision: Decision
) -> Hold | None:
    """Why this action must wait, as (event, reason, retry_later); None lets it go."""
    provider = ProviderName(row.provider)
    policy = ctx.config.policy_for(provider)
    if ctx.dry_run or policy.dry_run:
        return "would", f"dry run: would {kind} {decision.amount or ''}".strip(), True
    paused = controls.pause_for(ctx.pauses(), provider)
    if paused is not None:
        scope = "all providers" if paused.scope == controls.GLOBAL else paused.scope
        return "held", f"{scope} paused by {paused.actor}: {paused.reason}", True
    budget = ctx.config.policy.max_actions_per_pass
    if budget is not None and sum(ctx.actions_this_pass.values()) >= budget:
        return "deferred", f"action budget of {budget} per pass used up", False
    provider_budget = policy.max_actions_per_pass
    if provider_budget is not None and ctx.actions_this_pass.get(row.provider, 0) >= (
        provider_budget
    ):
        return "deferred", f"{provider} action budget of {provider_budget} used up", False
    limit = policy.max_capture_amount
    if (
        kind is ActionKind.CAPTURE
        and limit is not None
        and (decision.amount or 0) > limit
        and not approved(ctx, row)
    ):
        return (
            "held",
            f"capture of {format_money(decision.amount or 0, row.currency)} exceeds "
            f"max_capture_amount {format_money(limit, row.currency)}; "
            f"approve with `expiry-watchdog approve {row.id}`",
            True,
        )
    return None


def approved(ctx: ScanContext, row: Authorization) -> bool:
    """Whether an operator approved an action on ``row`` above the amount limit."""
    with Session(ctx.engine) as session:
        return controls.is_approved(session, row.id)


def count_action(ctx: ScanContext, row: Authorization, actions: int = 1) -> None:
    """Charge ``actions`` to this pass's budgets (-1 gives back one that was not taken).
    Charged before the intent commits, so rows committing together cannot overspend."""
    ctx.actions_this_pass[row.provider] = ctx.actions_this_pass.get(row.provider, 0) + actions


async def hold(
    ctx: ScanContext,
    row: Authorization,
    kind: ActionKind,
    decision: Decision,
    event: str,
    reason: str,
    retry_later: bool,
) -> None:
    """Audit an action held back by a guard rail, alert on-call, and look again later
    (or, when it must not retry in this pass, give the row up)."""
    now = ctx.clock.now()
    write = ctx.write(row, now)
    values: dict[str, Any] = {"updated_at": now}
    if retry_later:
        values["not_before"] = now + ctx.config.scheduler.scan_interval
    write.transition(Event.HOLD, values)
    if retry_later:
        ctx.replan_into(write)
    else:
        write.release = True
    write.events.append(
        ctx.event(
            row,
            f"scan:{kind.value}:{event}",
            amount=decision.amount,
            detail={
                "reason": reason,
                "decision": decision.reason,
                "deadline": row.deadline.isoformat(),
            },
        )
    )
    if event == "held":
        summary = f"{row.provider} order {row.order_id}: {kind} held back — {reason}"
        write.alerts.append(
            lambda session: ctx.alert(
                session,
                row,
                AlertKind.DEADLINE_APPROACHING,
                Severity.WARNING,
                summary,
                f"{kind} held: {reason}",
                now,
            )
        )
    await ctx.commit(write)


async def not_configured(ctx: ScanContext, row: Authorization) -> None:
    """The row's provider has no adapter: defer it."""
    await defer(ctx, row, f"provider {row.provider} is not configured (base_url/credentials)")


async def defer(ctx: ScanContext, row: Authorization, why: str) -> None:
    """Cannot act now: back off, audit, alert after repeated failures, release the row."""
    now = ctx.clock.now()
    attempts = row.attempts + 1
    write = ctx.write(row, now)
    write.transition(
        Event.DEFER,
        {
            "attempts": attempts,
            "not_before": now + backoff(attempts, None),
            "last_error": why,
            "updated_at": now,
        },
    )
    ctx.replan_into(write)
    write.events.append(ctx.event(row, "scan:action:defer", detail={"reason": why}))
    if attempts >= FAILURES_BEFORE_ALERT:
        write.alerts.append(
            lambda session: ctx.alert(
                session,
                row,
                AlertKind.ACTION_FAILED,
                Severity.WARNING,
                f"{row.provider} order {row.order_id}: {why}",
                why,
                now,
            )
        )
    write.release = True
    await ctx.commit(write)
