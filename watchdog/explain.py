"""``expiry-watchdog explain ID``: why this authorization gets this action at this time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from watchdog import controls, guard_rails, store
from watchdog.accounts import label
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.domain import DeadlineSource, OnDeadline
from watchdog.durations import format_duration
from watchdog.guard_rails import Situation
from watchdog.money import format_money
from watchdog.planner import Planner
from watchdog.providers import registry
from watchdog.providers.truth import meaning_of

_SOURCE_TEXT = {
    DeadlineSource.PROVIDER_REPORTED: "reported by the provider in its status answer",
    DeadlineSource.EXPLICIT: "the explicit expires_at given at registration",
    DeadlineSource.PROVIDER_WINDOW: "authorized_at plus the configured provider window",
}


def explain(
    engine: Engine,
    config: Config,
    authorization_id: int,
    clock: Clock = SYSTEM_CLOCK,
    planner: Planner | None = None,
) -> list[str]:
    """Lines of plain text: deadline and its source, policy, rules, guard rails, decision.

    The timeline and decision are the Planner's (``config``'s unless one is given) and the
    guard-rail lines are each rail's own ``describe``, so this says what the scan does."""
    planner = planner or Planner(config)
    now = clock.now()
    with transaction(engine) as session:
        row = store.get(session, authorization_id)
        all_pauses = controls.pauses(session)
        approved = controls.is_approved(session, row.id)
    snap = store.snapshot(row)
    provider = snap.provider
    rules = planner.rules(provider, snap.account)
    policy = planner.policy(provider, snap.account)
    tl = planner.timeline(snap)
    decision = planner.decide(snap, now)
    zone = config.zone

    def when(instant: dt.datetime) -> str:
        local = instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        return f"{instant.isoformat()} ({local})"

    on_deadline = planner.on_deadline(snap)
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
        f"  open amount now {format_money(planner.open_amount(snap), row.currency)}; a deadline "
        f"capture would take {format_money(planner.capture_target(snap), row.currency)}",
    ]
    situation = Situation(
        authorization_id=row.id,
        provider=provider,
        currency=row.currency,
        policy=policy,
        global_policy=config.policy,
        dry_run=config.policy.dry_run,
        pauses=all_pauses,
        actions_this_pass={},
        approved=lambda: approved,
        account=snap.account,
    )
    rails = guard_rails.descriptions(situation)
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
    changes.extend(guard_rails.remedies(situation))
    lines.append("what would change this: " + "; ".join(changes))
    return lines
