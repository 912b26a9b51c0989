"""Guard rails before money moves, as the scan applies them (the rails themselves, each
deciding and explaining, are ``watchdog.guard_rails``), and what happens to a row held back
by one, or deferred because it cannot act yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from watchdog import controls, guard_rails
from watchdog.accounts import label
from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.domain import ActionKind, ProviderName
from watchdog.guard_rails import Hold, Situation
from watchdog.models import Authorization
from watchdog.policy import Decision
from watchdog.scan.context import ScanContext
from watchdog.scan.pacing import FAILURES_BEFORE_ALERT, backoff
from watchdog.transitions import Event


def guard_rail(
    ctx: ScanContext, row: Authorization, kind: ActionKind, decision: Decision
) -> Hold | None:
    """Why this action must wait, as (event, reason, retry_later); None lets it go.
    Every rail of ``guard_rails.GUARD_RAILS`` is asked in turn; the first that holds wins."""
    provider = ProviderName(row.provider)
    situation = Situation(
        authorization_id=row.id,
        provider=provider,
        currency=row.currency,
        policy=ctx.planner.policy(provider, row.account),
        global_policy=ctx.config.policy,
        dry_run=ctx.dry_run,
        pauses=ctx.pauses(),
        actions_this_pass=ctx.actions_this_pass,
        approved=lambda: approved(ctx, row),
        account=row.account,
    )
    return guard_rails.first_hold(situation, kind, decision.amount)


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
    await defer(ctx, row, f"provider {label(row.provider, row.account)} is not configured "
                          "(base_url/credentials)")


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
