"""Recording what became of a capture/cancel: the provider's answer, or abandonment at the
deadline guard. Each is one write, fenced by the row's lease."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from watchdog import store
from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.domain import ActionKind, ActionStatus, InstructionKind, ProviderName, State
from watchdog.models import Action, Authorization
from watchdog.money import format_money
from watchdog.providers.base import Outcome, ProviderResult
from watchdog.reconcile import Verdict, confirmation
from watchdog.scan.context import ScanContext
from watchdog.scan.known import ActionFacts
from watchdog.scan.pacing import FAILURES_BEFORE_ALERT, backoff
from watchdog.scan.stages import expired_into
from watchdog.scan.sync import read_status, result_detail, status_event
from watchdog.transitions import Event

OUTCOME_EVENTS = {
    Outcome.SUCCEEDED: Event.SUCCEEDED,
    Outcome.ALREADY_DONE: Event.SUCCEEDED,
    Outcome.PENDING: Event.PENDING,
    Outcome.UNKNOWN: Event.UNKNOWN,
    Outcome.RETRYABLE: Event.RETRYABLE,
    Outcome.REJECTED: Event.REJECTED,
}
"""The transition each provider answer makes (the guard of its outcome write)."""


async def record_outcome(
    ctx: ScanContext, row: Authorization, action: Action, result: ProviderResult
) -> None:
    """Apply the provider's answer to the action and the authorization; audit and alert."""
    if result.outcome is Outcome.RETRYABLE and answered_after_processing_began(result):
        # 408, 409 (still processing) and 5xx: the request reached the provider and may yet
        # land. Not "nothing moved": recovery reads the status and resends with the same
        # key; a new attempt (a new key, perhaps another amount) never follows such an answer.
        result = replace(
            result,
            outcome=Outcome.UNKNOWN,
            message=f"{result.message}; the outcome is unknown until a status read says",
        )
    now = ctx.clock.now()
    kind = ActionKind(action.kind)
    in_flight = State.CAPTURING if kind is ActionKind.CAPTURE else State.CANCELING
    detail = result_detail(result)
    action_values: dict[str, Any] = {
        "sends": action.sends + 1,
        "provider_code": result.provider_code,
        "request_id": result.request_id,
        "message": result.describe()[:2000],
    }
    values: dict[str, Any] = {"updated_at": now}
    alert: tuple[AlertKind, Severity, str] | None = None
    if result.outcome in (Outcome.SUCCEEDED, Outcome.ALREADY_DONE):
        values.update(effect_values(ctx, row, action))
        shown = result.snapshot.captured_amount if result.snapshot is not None else None
        expected = row.captured_amount + (action.amount or 0)
        if (
            result.outcome is Outcome.ALREADY_DONE
            and kind is ActionKind.CAPTURE
            and shown is not None
            and shown != expected
        ):
            # The provider's amount is the truth; less than we asked is someone else's
            # capture or a voided remainder: a human must know.
            values["captured_amount"] = max(0, min(shown, row.amount))
            if result.snapshot is not None and result.snapshot.open_amount == 0:
                values["state"] = State.CAPTURED.value
            # provider_mismatch: not resolved by the row becoming final in this write.
            alert = (
                AlertKind.PROVIDER_MISMATCH,
                Severity.CRITICAL,
                f"{kind} already done at the provider, but it shows "
                f"{format_money(shown, row.currency)} captured where the watchdog asked for "
                f"{format_money(expected, row.currency)}: {result.describe()}",
            )
        values.update(instruction=None, attempts=0, not_before=None, last_error=None)
        if (
            row.instruction == InstructionKind.CAPTURE_AT_DEADLINE.value
            and action.kind == ActionKind.CAPTURE.value
        ):
            # "Capture N at the deadline" is done once N is captured: keep the
            # instruction with nothing left to take, so the remainder is released
            # rather than captured by the default policy.
            values.update(instruction=row.instruction, instruction_amount=0)
        action_values.update(status=ActionStatus(result.outcome.value), completed_at=now)
    elif result.outcome is Outcome.PENDING:
        # Accepted, not final: poll the provider's status (the first read at once) until it
        # confirms or fails the effect. ``recoveries`` counts the polls.
        action_values.update(status=ActionStatus.CONFIRMING, recoveries=0)
        values.update(
            state=confirming_state(kind).value, not_before=now, last_error=None, attempts=0
        )
    elif result.outcome is Outcome.UNKNOWN:
        action_values.update(status=ActionStatus.UNKNOWN)
        values.update(last_error=result.describe())
    elif result.outcome is Outcome.RETRYABLE:
        action_values.update(status=ActionStatus.RETRYABLE)
        attempts = row.attempts + 1
        values.update(
            state=prior_state(row).value,
            attempts=attempts,
            not_before=now + backoff(attempts, result.retry_after),
            last_error=result.describe(),
        )
        if attempts >= FAILURES_BEFORE_ALERT:
            alert = (
                AlertKind.ACTION_FAILED,
                Severity.WARNING,
                f"{kind} keeps failing: {result.describe()}",
            )
    else:
        action_values.update(status=ActionStatus.REJECTED, completed_at=now)
        values.update(
            state=State.NEEDS_ATTENTION.value,
            instruction=None,
            last_error=result.describe(),
        )
        alert = (
            AlertKind.ACTION_FAILED,
            Severity.CRITICAL,
            f"{kind} rejected: {result.describe()}",
        )
    write = ctx.write(row, now)
    write.update_action(action.idempotency_key, action_values)
    if State(values.get("state", row.state)).is_final:
        # Nothing more will happen: plan, record and give up the lease in one write.
        values.update(next_action_at=None, claimed_by=None, claimed_until=None)
        write.transition(OUTCOME_EVENTS[result.outcome], values, read=in_flight)
    else:
        write.transition(OUTCOME_EVENTS[result.outcome], values, read=in_flight)
        ctx.replan_into(write)
    write.events.append(
        ctx.event(
            row,
            f"scan:{kind.value}:outcome",
            amount=action.amount,
            key=action.idempotency_key,
            state_from=in_flight.value,
            state_to=row.state,
            outcome=result.outcome.value,
            detail=detail,
        )
    )
    if alert is not None:
        alert_kind, severity, text = alert
        write.alerts.append(
            lambda session: ctx.alert(
                session,
                row,
                alert_kind,
                severity,
                f"{row.provider} order {row.order_id}: {text}",
                text,
                now,
            )
        )
    if State(row.state).is_final:
        write.resolve(f"{row.state} by the watchdog")
        ctx.commit_soon(write)  # nothing more happens to the row in this pass
        return
    await ctx.commit(write)
    for key, value in action_values.items():
        setattr(action, key, value)


async def confirm_already_done(
    ctx: ScanContext, row: Authorization, action: Action, answer: ProviderResult
) -> ProviderResult:
    """"Already done" is confirmed, not assumed: read the status and say what it shows.

    Clearpay's 410 ``payment_captured`` also means "partly captured, the rest voided", and a
    Smartpay "already captured" may be someone else's capture. The result is ALREADY_DONE
    with the provider's snapshot when our effect is there (the amount booked is then the
    provider's), REJECTED when the status shows it absent (nothing moved: it pages),
    PENDING or UNKNOWN when the status cannot tell yet."""
    status = await read_status(ctx, row)
    write = ctx.write(row, ctx.clock.now())
    if status is not None:
        write.events.append(status_event(ctx, row, status))
        await ctx.commit(write)  # audit only
    snap = status.snapshot if status is not None else None
    verdict, _ = confirmation(store.snapshot(row), ActionKind(action.kind), action.amount, snap)
    said = answer.describe()
    if verdict is Verdict.CONFIRMED:
        return replace(answer, snapshot=snap,
                       message=f"{answer.message}; confirmed by a status read")
    if verdict is Verdict.FAILED:
        return replace(answer, outcome=Outcome.REJECTED, snapshot=snap,
                       message=f"the provider said already done ({said}) but its status shows "
                       "our effect absent: nothing moved")
    if verdict is Verdict.PENDING:
        return replace(answer, outcome=Outcome.PENDING, snapshot=snap)
    return replace(answer, outcome=Outcome.UNKNOWN,
                   message=f"{answer.message}; not confirmed: the status read did not tell")


def effect_values(
    ctx: ScanContext, row: Authorization, action: Action | ActionFacts
) -> dict[str, Any]:
    """Columns after our capture/cancel took effect."""
    rules = ctx.planner.rules(ProviderName(row.provider), row.account)
    if action.kind == ActionKind.CANCEL.value:
        final_state = State.CAPTURED if row.captured_amount > 0 else State.CANCELED
        return {"state": final_state.value, "provider_open_amount": 0}
    amount = action.amount or 0
    captured = min(row.amount, row.captured_amount + amount)
    # A remainder stays open after a partial capture unless this was a final capture at a
    # provider that releases it by itself; an open remainder is captured or voided later.
    remainder_open = (
        captured < row.amount
        and rules.multiple_captures
        and (not action.final or not rules.partial_releases_remainder)
    )
    more_possible = remainder_open
    state = State.PARTIALLY_CAPTURED if more_possible else State.CAPTURED
    values: dict[str, Any] = {
        "state": state.value,
        "captured_amount": captured,
        "capture_count": row.capture_count + 1,
    }
    if row.provider_open_amount is not None:
        values["provider_open_amount"] = max(0, row.provider_open_amount - amount)
    return values


def answered_after_processing_began(result: ProviderResult) -> bool:
    """Did the provider answer in a way that does not say nothing moved: 408, 409 or 5xx?

    A 429 is refused before any processing, and a transport failure before the request
    left has no status: both stay "nothing moved"."""
    status = result.http_status
    return status is not None and (status in (408, 409) or status >= 500)


def confirming_state(kind: ActionKind) -> State:
    """The state a pending effect of ``kind`` waits in."""
    return State.CONFIRMING_CAPTURE if kind is ActionKind.CAPTURE else State.CONFIRMING_CANCEL


def prior_state(row: Authorization) -> State:
    """The open state a retryable failure returns the row to."""
    return State.PARTIALLY_CAPTURED if row.captured_amount > 0 else State.AUTHORIZED


async def outcome_too_late(ctx: ScanContext, row: Authorization, action: Action) -> None:
    """The deadline guard was reached before the action could be sent or confirmed:
    abandon it, mark the authorization expired and page."""
    write = ctx.write(row, ctx.clock.now())
    write.update_action(
        action.idempotency_key, {"status": ActionStatus.ABANDONED, "completed_at": write.now}
    )
    expired_into(
        ctx,
        write,
        Event.ABANDON,
        f"scan:{action.kind}:abandon",
        "deadline guard reached",
        f"{row.provider} order {row.order_id}: deadline guard reached before "
        f"the {action.kind} could be confirmed",
        key=action.idempotency_key,
    )
    await ctx.commit(write)
