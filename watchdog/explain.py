"""``expiry-watchdog explain ID``: why this authorization gets this action at this time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from watchdog import controls, store
from watchdog.accounts import label
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.domain import DeadlineSource, OnDeadline
from watchdog.durations import format_duration
from watchdog.money import format_money
from watchdog.policy import capture_target, effective_on_deadline, open_amount, plan, timeline
from watchdog.providers import registry
from watchdog.providers.truth import meaning_of

_SOURCE_TEXT = {
    DeadlineSource.PROVIDER_REPORTED: "reported by the provider in its status answer",
    DeadlineSource.EXPLICIT: "the explicit expires_at given at registration",
    DeadlineSource.PROVIDER_WINDOW: "authorized_at plus the configured provider window",
}
def explain(
    engine: Engine, config: Config, authorization_id: int, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    """Lines of plain text: deadline and its source, policy, rules, guard rails, decision."""
    now = clock.now()
    with transaction(engine) as session:
        row = store.get(session, authorization_id)
        all_pauses = controls.pauses(session)
        approved = controls.is_approved(session, row.id)
    snap = store.snapshot(row)
    provider = snap.provider
    rules = store.rules_for(config, provider, snap.account)
    policy = config.policy_for(provider, snap.account)
    tl = timeline(snap, rules, policy)
    decision = plan(snap, rules, policy, now)
    zone = config.zone

    def when(instant: dt.datetime) -> str:
        local = instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        return f"{instant.isoformat()} ({local})"

    on_deadline = effective_on_deadline(snap, policy)
    why_action = (
        "a merchant instruction"
        if snap.instruction
        else "the authorization's own on_deadline"
        if snap.on_deadline
        else "the provider policy"
        if policy.on_deadline != config.policy.on_deadline
        else "the global policy"
    )
    lines = [
        f"authorization #{row.id}: {label(provider, snap.account)} order {row.order_id}, "
        f"{format_money(row.amount, row.currency)}, state {row.state}, "
        f"captured {format_money(row.captured_amount, row.currency)}",
        f"provider status: {meaning_of(provider, row.provider_state)}",
        f"deadline {when(tl.deadline)}: {_SOURCE_TEXT[tl.deadline_source]}",
        f"  candidates: window {format_duration(rules.window)} -> "
        f"{(snap.authorized_at + rules.window).isoformat()}"
        + (f"; explicit {snap.expires_at.isoformat()}" if snap.expires_at else "")
        + (
            f"; provider {snap.provider_expires_at.isoformat()}"
            if snap.provider_expires_at
            else "; provider has not reported one"
            if rules.reports_expiry
            else ""
        ),
        f"policy: alert_lead {format_duration(policy.alert_lead)}, capture_lead "
        f"{format_duration(policy.capture_lead)}, critical_lead "
        f"{format_duration(policy.critical_lead)}, safety_margin "
        f"{format_duration(policy.safety_margin)}",
        f"  alert at {when(tl.alert_at)}",
        f"  act at {when(tl.act_at)}",
        f"  critical at {when(tl.critical_at)}",
        f"  nothing is sent after {when(tl.guard_at)}",
        f"at the deadline: {on_deadline} (from {why_action})",
        f"provider rules ({provider}): {registry.spec(provider).explain}",
        f"  open amount now {format_money(open_amount(snap, rules), row.currency)}; a deadline "
        f"capture would take {format_money(capture_target(snap, rules), row.currency)}",
    ]
    paused = controls.pause_for(all_pauses, provider, snap.account)
    rails = []
    if paused:
        rails.append(
            f"PAUSED ({paused.scope}) by {paused.actor} since "
            f"{paused.since.isoformat()}: {paused.reason}"
        )
    if config.policy.dry_run or policy.dry_run:
        rails.append("dry_run is on: nothing will move")
    if policy.max_capture_amount is not None:
        rails.append(
            f"max_capture_amount {policy.max_capture_amount}: "
            + (
                "approved for this authorization"
                if approved
                else f"a larger capture waits for `expiry-watchdog approve {row.id}`"
            )
        )
    if policy.max_actions_per_pass is not None or config.policy.max_actions_per_pass is not None:
        rails.append(f"max_actions_per_pass {policy.max_actions_per_pass}")
    lines.append("guard rails: " + ("; ".join(rails) if rails else "none"))
    lines.append(f"decision now ({now.isoformat()}): {decision.step} — {decision.reason}")
    if decision.next_action_at is not None:
        lines.append(f"  next look at {when(decision.next_action_at)}")
    changes = []
    if on_deadline is OnDeadline.CAPTURE:
        changes.append("instruct cancel-now, or register with on_deadline=cancel, to release it")
    else:
        changes.append("instruct capture-now or capture-at-deadline to capture it")
    if not snap.provider_expires_at and rules.reports_expiry:
        changes.append("a status read showing an earlier provider expiry moves every step earlier")
    if paused:
        changes.append(f"`expiry-watchdog resume --provider {paused.scope}` lets money move")
    lines.append("what would change this: " + "; ".join(changes))
    return lines
