"""Confirming a pending effect: the provider accepted our capture or cancel but has not
finished it (JPMMPS ``CAPTURE_PENDING``, Flitt ``hold`` / reversal ``processing``).

The row waits in ``confirming_capture`` / ``confirming_cancel`` and its status is read on
a bounded schedule (``policy.CONFIRM_POLLS``, clipped to ``critical_at`` and the deadline)
until the provider says:

* confirmed — the effect is recorded, with the amount the provider shows;
* failed — nothing moved: the action is closed as ``failed``, the row is open again and
  pages; with time left the planner acts again under a new attempt (a new key);
* still pending at ``critical_at`` — ``effect_pending`` pages, polling goes on;
* still pending at the deadline — ``needs_attention`` pages and polling stops.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from watchdog import store
from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.domain import ActionKind, ActionStatus, State
from watchdog.models import Action, Authorization
from watchdog.money import format_money
from watchdog.policy import confirm_poll_at
from watchdog.providers.base import ProviderState
from watchdog.reconcile import Verdict, confirmation
from watchdog.scan.context import ScanContext
from watchdog.scan.known import ActionFacts
from watchdog.scan.outcome import effect_values, prior_state
from watchdog.scan.recovery import needs_attention
from watchdog.scan.sync import read_status, reconcile_into, result_detail, status_event
from watchdog.transitions import Event


def pending_action(ctx: ScanContext, row: Authorization) -> Action | ActionFacts | None:
    """The row's action waiting for the provider's confirmation: from what the claim learnt
    (no query, and no blocking read on the event loop), else read from the database."""
    known = [a for a in ctx.committer.known.actions_of(row.id) or []
             if a.status is ActionStatus.CONFIRMING]
    if known:
        return max(known, key=lambda a: (a.seq, a.attempt))
    with Session(ctx.engine) as session:
        return session.execute(
            select(Action)
            .where(Action.authorization_id == row.id, Action.status == ActionStatus.CONFIRMING)
            .order_by(Action.id.desc())
            .limit(1)
        ).scalar_one_or_none()


async def confirm(ctx: ScanContext, row: Authorization) -> bool:
    """Read the status of the row's pending effect and record what it says.

    True when the row goes on to its next step in this pass (confirmed or failed)."""
    action = pending_action(ctx, row)
    if action is None:
        await needs_attention(ctx, row, None, f"{row.state} without a pending effect to confirm")
        return False
    kind = ActionKind(action.kind)
    result = await read_status(ctx, row)
    now = ctx.clock.now()
    snap = result.snapshot if result is not None else None
    verdict, shown = confirmation(store.snapshot(row), kind, action.amount, snap)
    tl = ctx.timeline(row)
    write = ctx.write(row, now)
    confirming = State(row.state)
    if result is not None:
        write.events.append(status_event(ctx, row, result))
    detail: dict[str, Any] = {
        "verdict": verdict.value,
        "polls": action.recoveries + 1,
        "status": result_detail(result) if result is not None else None,
    }
    if verdict is Verdict.CONFIRMED:
        values: dict[str, Any] = effect_values(ctx, row, action)
        if kind is ActionKind.CAPTURE and shown is not None:
            values["captured_amount"] = max(0, min(shown, row.amount))
        values.update(instruction=None, attempts=0, not_before=None, last_error=None,
                      updated_at=now, last_synced_at=now)
        if snap is not None:
            values["provider_state"] = snap.raw_state[:40]
        write.update_action(action.idempotency_key, {
            "status": ActionStatus.SUCCEEDED, "completed_at": now,
            "recoveries": action.recoveries + 1,
        })
        final = State(values["state"]).is_final
        if final:
            values.update(next_action_at=None, claimed_by=None, claimed_until=None)
        write.transition(Event.CONFIRMED, values, read=confirming)
        if not final:
            ctx.replan_into(write)
        write.events.append(ctx.event(
            row, f"scan:{kind.value}:confirmed", amount=action.amount,
            key=action.idempotency_key, state_from=confirming.value, state_to=row.state,
            outcome="confirmed", detail=detail,
        ))
        if final:
            write.resolve(f"{row.state} confirmed by the provider")
            ctx.commit_soon(write)
            return False
        await ctx.commit(write)
        return True
    if verdict is Verdict.FAILED:
        write.update_action(action.idempotency_key, {
            "status": ActionStatus.FAILED, "completed_at": now,
            "recoveries": action.recoveries + 1,
        })
        time_left = now < tl.guard_at
        text = (
            f"the provider failed our {kind.value} of "
            f"{format_money(action.amount or 0, row.currency)} after accepting it as pending; "
            + ("trying again with a new attempt" if time_left
               else "no time is left to try again")
        )
        write.transition(Event.CONFIRM_FAILED, {
            "state": prior_state(row).value, "not_before": None, "updated_at": now,
            "last_error": text,
        }, read=confirming)
        write.events.append(ctx.event(
            row, f"scan:{kind.value}:failed", amount=action.amount, key=action.idempotency_key,
            state_from=confirming.value, state_to=row.state, outcome="failed", detail=detail,
        ))
        if result is not None and snap is not None:
            reconcile_into(ctx, write, result, audit_read=False)
        else:
            ctx.replan_into(write)
        write.alerts.append(lambda session: ctx.alert(
            session, row, AlertKind.ACTION_FAILED, Severity.CRITICAL,
            f"{row.provider} order {row.order_id}: {text}", text, now,
        ))
        await ctx.commit(write)
        return True
    # Still pending, or the answer does not tell.
    if snap is not None and snap.state is ProviderState.UNRECOGNISED:
        await ctx.commit(write)
        await needs_attention(ctx, row, None,
                        f"provider reported an unrecognised status {snap.raw_state!r} while "
                        f"the {kind.value} was pending")
        return False
    if now >= tl.deadline:
        write.update_action(action.idempotency_key, {"recoveries": action.recoveries + 1})
        await ctx.commit(write)
        await needs_attention(ctx, row, None,
                        f"the {kind.value} is still pending at the provider at the deadline; "
                        "find out at the provider whether it went through")
        return False
    waiting: dict[str, Any] = {
        "not_before": confirm_poll_at(action.recoveries + 1, tl, now),
        "updated_at": now,
        "last_synced_at": now,
        "last_error": (result.describe() if result is not None else "provider not configured")
        if verdict is Verdict.UNKNOWN else None,
    }
    # Raised on every poll from critical_at on: firing a firing alert again is a no-op.
    page = now >= tl.critical_at
    write.update_action(action.idempotency_key, {"recoveries": action.recoveries + 1})
    write.transition(Event.CONFIRM_WAIT, waiting, read=confirming)
    ctx.replan_into(write)
    write.events.append(ctx.event(
        row, f"scan:{kind.value}:still_pending", amount=action.amount,
        key=action.idempotency_key, outcome=verdict.value, detail=detail,
    ))
    if page:
        text = (f"our {kind.value} is still pending at the provider within critical_lead of "
                f"the deadline {row.deadline.isoformat()}")
        write.alerts.append(lambda session: ctx.alert(
            session, row, AlertKind.EFFECT_PENDING, Severity.CRITICAL,
            f"{row.provider} order {row.order_id}: {text}", text, now,
        ))
    await ctx.commit(write)
    return True  # the planner now says WAIT until the next poll and parks the row
