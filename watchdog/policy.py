"""The planning functions: pure functions of (authorization, provider rules, policy, now).

They answer two questions: what must happen now, and when must we look again
(``next_action_at``, stored in an indexed column so a scan reads only due rows).
No I/O, no clock: ``now`` is an argument. Callers go through ``watchdog.planner.Planner``,
which binds the rules and policy of one configuration.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from watchdog.config import PolicySettings
from watchdog.domain import (
    AlertStage,
    AuthorizationSnapshot,
    DeadlineSource,
    InstructionKind,
    OnDeadline,
    State,
)
from watchdog.errors import InstructionError, InstructionRefused
from watchdog.money import format_money
from watchdog.providers.base import ProviderRules


class Step(enum.StrEnum):
    """One thing the scan can do for an authorization."""

    WAIT = "wait"  # nothing now; look again at next_action_at
    SYNC = "sync"  # read the provider's status (refresh deadline and open amount)
    CAPTURE = "capture"
    CANCEL = "cancel"
    ALERT_APPROACHING = "alert_approaching"
    ALERT_CRITICAL = "alert_critical"
    EXPIRE = "expire"  # too late to act safely: record expired and page
    RECOVER = "recover"  # an intent has no recorded outcome: find out what happened
    CONFIRM = "confirm"  # an accepted effect is pending at the provider: read its status


@dataclass(frozen=True, slots=True)
class Timeline:
    """The instants that matter for one authorization."""

    deadline: dt.datetime
    deadline_source: DeadlineSource
    alert_at: dt.datetime
    act_at: dt.datetime
    critical_at: dt.datetime
    guard_at: dt.datetime  # deadline - safety margin: never send a capture at or after this


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do now and when to look again."""

    step: Step
    next_action_at: dt.datetime | None
    reason: str
    amount: int | None = None
    final: bool = True


def deadline_of(
    auth: AuthorizationSnapshot, rules: ProviderRules
) -> tuple[dt.datetime, DeadlineSource]:
    """The earliest of: the provider's reported expiry, the explicit one, and the window.

    Always aware UTC. The window is added in absolute time: an ``authorized_at`` carrying a
    zone with daylight saving (``ZoneInfo("Europe/London")``) must not make a 7-day window
    one hour shorter or longer, which plain aware-datetime arithmetic (wall clock) would.
    """
    candidates = [(_utc(auth.authorized_at, "authorized_at") + rules.window,
                   DeadlineSource.PROVIDER_WINDOW)]
    if auth.expires_at is not None:
        candidates.append((_utc(auth.expires_at, "expires_at"), DeadlineSource.EXPLICIT))
    if auth.provider_expires_at is not None:
        candidates.append((_utc(auth.provider_expires_at, "provider_expires_at"),
                           DeadlineSource.PROVIDER_REPORTED))
    # Earliest wins; on a tie the provider's own word beats ours.
    order = {DeadlineSource.PROVIDER_REPORTED: 0, DeadlineSource.EXPLICIT: 1,
             DeadlineSource.PROVIDER_WINDOW: 2}
    return min(candidates, key=lambda c: (c[0], order[c[1]]))


def _utc(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} is naive; the planner needs aware instants")
    return value.astimezone(dt.UTC)


def timeline(
    auth: AuthorizationSnapshot, rules: ProviderRules, policy: PolicySettings
) -> Timeline:
    """The authorization's timeline under ``policy``."""
    deadline, source = deadline_of(auth, rules)
    act_at = business_day_at_or_before(deadline - policy.capture_lead, policy)
    return Timeline(
        deadline=deadline,
        deadline_source=source,
        alert_at=min(deadline - policy.alert_lead, act_at),
        act_at=act_at,
        critical_at=deadline - policy.critical_lead,
        guard_at=deadline - policy.safety_margin,
    )


def business_day_at_or_before(instant: dt.datetime, policy: PolicySettings) -> dt.datetime:
    """Move ``instant`` back, a day at a time, off weekends and holidays (local calendar)."""
    if not policy.avoid_weekends and not policy.holidays:
        return instant
    zone = ZoneInfo(policy.calendar_timezone)
    for _ in range(31):
        local = instant.astimezone(zone).date()
        if not (
            (policy.avoid_weekends and local.weekday() >= 5) or local in policy.holidays
        ):
            return instant
        instant -= dt.timedelta(days=1)
    return instant


def effective_on_deadline(auth: AuthorizationSnapshot, policy: PolicySettings) -> OnDeadline:
    """What happens at the deadline: instruction, then the authorization's own, then policy."""
    if auth.instruction is InstructionKind.CAPTURE_AT_DEADLINE:
        return OnDeadline.CAPTURE
    return auth.on_deadline or policy.on_deadline


def open_amount(auth: AuthorizationSnapshot, rules: ProviderRules) -> int:
    """What may still be captured: never more than authorized, nor than the provider allows."""
    if not rules.multiple_captures and auth.capture_count > 0:
        return 0
    remaining = auth.remaining_amount
    if auth.provider_open_amount is not None:
        remaining = min(remaining, auth.provider_open_amount)
    return max(remaining, 0)


def capture_target(auth: AuthorizationSnapshot, rules: ProviderRules) -> int:
    """How much the deadline capture should take now (0 = nothing left to capture)."""
    if (
        auth.instruction is InstructionKind.CAPTURE_AT_DEADLINE
        and auth.instruction_amount is not None
    ):
        # Like "capture N now", "ready to capture N" is N more: it is validated against (and
        # defaults to) the open amount, so it is not a total to subtract what was captured from.
        wanted = auth.instruction_amount
    else:
        wanted_total = auth.capture_amount if auth.capture_amount is not None else auth.amount
        wanted = wanted_total - auth.captured_amount
    return max(0, min(wanted, open_amount(auth, rules)))


def plan(
    auth: AuthorizationSnapshot,
    rules: ProviderRules,
    policy: PolicySettings,
    now: dt.datetime,
) -> Decision:
    """Decide what must happen to ``auth`` at ``now`` and when to look again."""
    if auth.state.is_final:
        return Decision(Step.WAIT, None, f"{auth.state}: nothing more to do")
    tl = timeline(auth, rules, policy)
    if auth.state.is_in_flight:
        return Decision(Step.RECOVER, now, f"{auth.state} without a recorded outcome")
    if auth.state.is_confirming:
        if auth.not_before is None or now >= auth.not_before:
            return Decision(Step.CONFIRM, now, f"{auth.state}: ask the provider whether the "
                            "pending effect is confirmed")
        return Decision(Step.WAIT, auth.not_before, f"{auth.state}: next status poll")
    if auth.state is State.NEEDS_ATTENTION:
        return _plan_needs_attention(auth, tl, now)
    if now >= tl.guard_at:
        return Decision(
            Step.EXPIRE, now,
            f"deadline {tl.deadline.isoformat()} minus safety margin reached; too late to act",
        )

    action = _due_action(auth, rules, policy, tl, now)
    if action is not None:
        return action
    if now >= tl.critical_at and auth.alert_stage < AlertStage.CRITICAL:
        return Decision(Step.ALERT_CRITICAL, now, "still open within critical_lead of deadline")
    if (
        now >= tl.alert_at
        and auth.alert_stage < AlertStage.APPROACHING
        and not _acts_automatically(auth, rules, policy)
    ):
        return Decision(Step.ALERT_APPROACHING, now, "within alert_lead and no automatic action")
    if now >= tl.alert_at and (auth.last_synced_at is None or auth.last_synced_at < tl.alert_at):
        return Decision(Step.SYNC, now, "confirm the provider's deadline and open amount")
    return Decision(Step.WAIT, _next_instant(auth, rules, policy, tl, now), "nothing due yet")


CONFIRM_POLLS: tuple[dt.timedelta, ...] = tuple(
    dt.timedelta(seconds=s) for s in (0, 5, 15, 30, 60, 120, 300)
)
"""Waits between status polls of a pending effect: the first read at once (most pending
captures settle within a second), then backing off to every 5 minutes, which repeats."""


def confirm_poll_at(polls: int, tl: Timeline, now: dt.datetime) -> dt.datetime:
    """When to read the status of a pending effect again after ``polls`` reads.

    The schedule is clipped to the timeline: a poll always falls on ``critical_at`` (to page
    while a human can still act) and on the deadline (where a still-pending effect is handed
    to a human), whichever comes before the next scheduled read."""
    wait = CONFIRM_POLLS[min(max(polls, 0), len(CONFIRM_POLLS) - 1)]
    candidates = [now + wait] + [t for t in (tl.critical_at, tl.deadline) if t > now]
    return min(candidates)


def _plan_needs_attention(
    auth: AuthorizationSnapshot, tl: Timeline, now: dt.datetime
) -> Decision:
    if now >= tl.deadline:
        return Decision(Step.WAIT, None, "needs attention; deadline passed — a human owns it")
    return Decision(Step.WAIT, tl.deadline, "needs attention; waiting for an operator")


def _acts_automatically(
    auth: AuthorizationSnapshot, rules: ProviderRules, policy: PolicySettings
) -> bool:
    if auth.instruction in (InstructionKind.CAPTURE_NOW, InstructionKind.CANCEL_NOW):
        return True
    on_deadline = effective_on_deadline(auth, policy)
    if on_deadline is OnDeadline.CANCEL:
        return True
    return on_deadline is OnDeadline.CAPTURE and (
        capture_target(auth, rules) >= rules.min_capture_amount or open_amount(auth, rules) > 0
    )


def _due_action(
    auth: AuthorizationSnapshot,
    rules: ProviderRules,
    policy: PolicySettings,
    tl: Timeline,
    now: dt.datetime,
) -> Decision | None:
    """A capture or cancel that is due now (respecting a retry's ``not_before``), else None."""
    if auth.not_before is not None and now < auth.not_before:
        return None
    if auth.instruction is InstructionKind.CANCEL_NOW:
        return Decision(Step.CANCEL, now, "merchant instructed: cancel now")
    if auth.instruction is InstructionKind.CAPTURE_NOW and auth.instruction_amount:
        amount = min(auth.instruction_amount, open_amount(auth, rules))
        if amount > 0:
            return Decision(
                Step.CAPTURE, now, "merchant instructed: capture now",
                amount=amount, final=auth.instruction_final,
            )
    if now < tl.act_at:
        return None
    on_deadline = effective_on_deadline(auth, policy)
    if on_deadline is OnDeadline.CANCEL:
        return Decision(Step.CANCEL, now, "policy on_deadline=cancel and capture_lead reached")
    if on_deadline is OnDeadline.CAPTURE:
        amount = capture_target(auth, rules)
        if amount >= rules.min_capture_amount:
            return Decision(
                Step.CAPTURE, now, "policy on_deadline=capture and capture_lead reached",
                amount=amount, final=True,
            )
        if open_amount(auth, rules) > 0:
            return Decision(Step.CANCEL, now, "captured what was wanted; release the remainder")
    return None


def _next_instant(
    auth: AuthorizationSnapshot,
    rules: ProviderRules,
    policy: PolicySettings,
    tl: Timeline,
    now: dt.datetime,
) -> dt.datetime:
    """The earliest future instant at which ``plan`` would return something other than WAIT."""
    candidates = [tl.guard_at]
    if auth.last_synced_at is None or auth.last_synced_at < tl.alert_at:
        candidates.append(tl.alert_at)
    if auth.alert_stage < AlertStage.CRITICAL:
        candidates.append(tl.critical_at)
    if auth.alert_stage < AlertStage.APPROACHING:
        candidates.append(tl.alert_at)
    if _acts_automatically(auth, rules, policy):
        candidates.append(tl.act_at)
        if auth.not_before is not None:
            candidates.append(auth.not_before)
    future = [c for c in candidates if c > now]
    return min(future) if future else now


def validate_instruction(
    auth: AuthorizationSnapshot,
    rules: ProviderRules,
    kind: InstructionKind,
    amount: int | None,
    final: bool,
) -> None:
    """Refuse an instruction the provider's rules or the open amount cannot honour."""
    if auth.state not in (State.AUTHORIZED, State.PARTIALLY_CAPTURED):
        raise InstructionRefused(
            f"authorization {auth.id} is {auth.state}; "
            "only an open authorization takes instructions"
        )
    if kind is InstructionKind.CANCEL_NOW:
        return
    available = open_amount(auth, rules)
    if amount is None:
        amount = available
    if amount <= 0:
        raise InstructionError(f"amount must be positive, got {amount}")
    if amount > available:
        raise InstructionError(
            f"amount {amount} exceeds the open amount {available} (minor units: "
            f"{format_money(amount, auth.currency)} > {format_money(available, auth.currency)}) "
            f"of authorization {auth.id}"
        )
    if amount < rules.min_capture_amount:
        raise InstructionError(
            f"amount {amount} is below {rules.name}'s minimum capture {rules.min_capture_amount}"
        )
    partial = amount < available
    remainder = available - amount
    if partial and rules.multiple_captures and not final and remainder < rules.min_capture_amount:
        raise InstructionError(
            f"amount {amount} leaves {remainder} {auth.currency} open, below {rules.name}'s "
            f"minimum capture {rules.min_capture_amount}: that remainder could never be "
            f"captured; capture all {available}, or send final=true to release the remainder"
        )
    if partial and not rules.multiple_captures and not final:
        raise InstructionError(
            f"{rules.name} allows one capture only: capturing {amount} of {available} releases "
            f"the remainder; resend with final=true if that is intended"
        )
