"""Recording what became of a capture/cancel: the provider's answer, or abandonment at the
deadline guard. Each is one write, fenced by the row's lease."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from watchdog import store
from watchdog.alerting import AlertKind, Severity
from watchdog.domain import ActionKind, InstructionKind, ProviderName, State
from watchdog.models import Action, Authorization
from watchdog.providers.base import Outcome, ProviderResult
from watchdog.scan.context import ScanContext
from watchdog.scan.pacing import FAILURES_BEFORE_ALERT, backoff
from watchdog.scan.stages import record_expired
from watchdog.scan.sync import result_detail


async def record_outcome(
    ctx: ScanContext, row: Authorization, action: Action, result: ProviderResult
) -> None:
    """Apply the provider's answer to the action and the authorization; audit and alert."""
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
        values.update(instruction=None, attempts=0, not_before=None, last_error=None)
        if (
            row.instruction == InstructionKind.CAPTURE_AT_DEADLINE.value
            and action.kind == ActionKind.CAPTURE.value
        ):
            # "Capture N at the deadline" is done once N is captured: keep the
            # instruction with nothing left to take, so the remainder is released
            # rather than captured by the default policy.
            values.update(instruction=row.instruction, instruction_amount=0)
        action_values.update(status=result.outcome.value, completed_at=now)
    elif result.outcome is Outcome.UNKNOWN:
        action_values.update(status="unknown")
        values.update(last_error=result.describe())
    elif result.outcome is Outcome.RETRYABLE:
        action_values.update(status="retryable")
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
        action_values.update(status="rejected", completed_at=now)
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
        write.update([in_flight], values)
    else:
        write.update([in_flight], values)
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


def effect_values(ctx: ScanContext, row: Authorization, action: Action) -> dict[str, Any]:
    """Columns after our capture/cancel took effect."""
    rules = store.rules_for(ctx.config, ProviderName(row.provider))
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


def prior_state(row: Authorization) -> State:
    """The open state a retryable failure returns the row to."""
    return State.PARTIALLY_CAPTURED if row.captured_amount > 0 else State.AUTHORIZED


def outcome_too_late(ctx: ScanContext, row: Authorization, action: Action) -> None:
    """The deadline guard was reached before the action could be sent or confirmed:
    abandon it, mark the authorization expired and page."""
    now = ctx.clock.now()
    with ctx.tx() as session:
        session.execute(
            update(Action)
            .where(Action.idempotency_key == action.idempotency_key)
            .values(status="abandoned", completed_at=now)
        )
        record_expired(
            ctx,
            session,
            row,
            now,
            f"scan:{action.kind}:abandon",
            "deadline guard reached",
            f"{row.provider} order {row.order_id}: deadline guard reached before "
            f"the {action.kind} could be confirmed",
            key=action.idempotency_key,
        )
