"""Money actions: sync, guard rails, then intent -> send -> outcome.

The intent (in-flight state, action row with its idempotency key, audit row) is committed
before the provider is called; the outcome is recorded in a second transaction.
"""

from __future__ import annotations

from watchdog import faultpoints, store
from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.audit import AuditEvent
from watchdog.domain import ActionKind, ProviderName, State
from watchdog.models import Action, Authorization
from watchdog.money import format_money
from watchdog.policy import Decision
from watchdog.providers.base import Outcome, ProviderAdapter, ProviderResult
from watchdog.providers.limits import SEND_GUARD, GuardReached
from watchdog.providers.retry import with_retries
from watchdog.scan.context import ScanContext
from watchdog.scan.guards import count_action, defer, guard_rail, hold, not_configured
from watchdog.scan.outcome import confirm_already_done, outcome_too_late, record_outcome
from watchdog.scan.sync import read_status, status_into
from watchdog.scan.writes import Intent, RowWrite
from watchdog.transitions import Event

OPEN = (State.AUTHORIZED, State.PARTIALLY_CAPTURED)


async def act(ctx: ScanContext, row: Authorization, kind: ActionKind, decision: Decision) -> bool:
    """Read the status, then commit it with an intent, then call the provider, then record
    the outcome.

    False means the row was handed off (parked or released)."""
    adapter = ctx.adapter(row)
    if adapter is None:
        await not_configured(ctx, row)
        return False
    before = await read_status(ctx, row)
    now = ctx.clock.now()
    write = ctx.write(row, now)
    status_into(ctx, write, before)
    if before is None or before.snapshot is None:
        await ctx.commit(write)
        await defer(
            ctx,
            row,
            f"status read failed before {kind}: {before.describe() if before else 'no answer'}",
        )
        return False
    fresh = ctx.decide(row, now)
    if fresh.step is not decision.step or fresh.amount != decision.amount:
        await ctx.commit(write)
        return True  # the provider's answer changed the plan; take it from the top
    held = guard_rail(ctx, row, kind, decision)
    if held is not None:
        await ctx.commit(write)
        await hold(ctx, row, kind, decision, *held)
        return held[2]  # a held row goes on to its alerts; a deferred one waits its turn
    unwanted_release = released_below_minimum(ctx, row, kind)
    if unwanted_release is not None:
        write.alerts.append(lambda session: ctx.alert(
            session, row, AlertKind.ACTION_FAILED, Severity.WARNING,
            f"{row.provider} order {row.order_id}: {unwanted_release}", unwanted_release, now,
        ))
    faultpoints.checkpoint("before_intent")
    count_action(ctx, row)
    try:
        action = await commit_intent(ctx, write, kind, decision)
    except BaseException:
        count_action(ctx, row, -1)
        raise
    faultpoints.checkpoint("after_intent")
    return await send(ctx, row, action, adapter)


def released_below_minimum(ctx: ScanContext, row: Authorization, kind: ActionKind) -> str | None:
    """Why a release gives up money the merchant still wanted (what is left to capture is
    below the provider's minimum capture), or None."""
    if kind is not ActionKind.CANCEL:
        return None
    rules = ctx.planner.rules(ProviderName(row.provider), row.account)
    wanted = ctx.planner.capture_target(store.snapshot(row))
    if 0 < wanted < rules.min_capture_amount:
        return (f"releasing {format_money(wanted, row.currency)} still wanted: below "
                f"{row.provider}'s minimum capture "
                f"{format_money(rules.min_capture_amount, row.currency)}")
    return None


async def commit_intent(
    ctx: ScanContext, write: RowWrite, kind: ActionKind, decision: Decision
) -> Action:
    """Move the row in flight and store the action (reusing a retryable one with the same
    amount, hence the same key) with its intent audit row, together with ``write``."""
    row, now = write.row, write.now
    in_flight = State.CAPTURING if kind is ActionKind.CAPTURE else State.CANCELING
    seq = row.capture_count + 1 if kind is ActionKind.CAPTURE else 1
    # While this worker lives its heartbeat keeps the row its own however long the call
    # takes; if it dies, the row is free one lease later and recovery asks the provider
    # (then resends with the same key, which every provider deduplicates). So recovery
    # waits one lease, not the provider's timeouts and retries (minutes for JPMMPS).
    # Any open state: the table's from-states for an intent (authorized,
    # partially_captured), as before.
    write.transition(
        Event.INTENT,
        {
            "state": in_flight.value,
            "next_action_at": now + ctx.config.scheduler.lease,
            "updated_at": now,
        },
        any_source=True,
    )

    def intent_event(action: Action) -> AuditEvent:
        return ctx.event(
            row,
            f"scan:{kind.value}:intent",
            amount=decision.amount,
            key=action.idempotency_key,
            state_to=in_flight.value,
            detail={
                "reason": decision.reason,
                "deadline": row.deadline.isoformat(),
                "deadline_source": row.deadline_source,
                "final": decision.final,
                "attempt": action.attempt,
                "seq": seq,
            },
        )

    write.intent = Intent(
        kind=kind,
        seq=seq,
        amount=decision.amount,
        final=decision.final,
        actor=ctx.worker,
        created_at=now,
        event=intent_event,
    )
    await ctx.commit(write)
    assert write.intent.action is not None
    return write.intent.action


async def send(
    ctx: ScanContext, row: Authorization, action: Action, adapter: ProviderAdapter
) -> bool:
    """Call the provider with the intent's key (unless the deadline guard is reached) and
    record the outcome. True when the row is no longer in flight."""
    kind = ActionKind(action.kind)
    guard_at = ctx.timeline(row).guard_at
    if ctx.clock.now() >= guard_at:
        await outcome_too_late(ctx, row, action)
        return True
    settings = ctx.settings(row)
    ref = ctx.ref(row)

    async def call() -> ProviderResult:
        if kind is ActionKind.CAPTURE:
            assert action.amount is not None
            return await adapter.capture(
                ref, action.amount, action.idempotency_key, final=action.final
            )
        return await adapter.cancel(ref, action.idempotency_key)

    faultpoints.checkpoint_in_flight("after_send")
    # No slot wait and no exchange outlives the guard instant (limits and transport read it).
    token = SEND_GUARD.set(lambda: (guard_at - ctx.clock.now()).total_seconds())
    try:
        result = await with_retries(
            call,
            settings.retry_attempts,
            settings.retry_backoff,
            ctx.sleep,
            deadline_guard=lambda: ctx.clock.now() < guard_at,
        )
    except GuardReached:
        # Waiting for a concurrency or rate-limit slot took us to the guard; nothing left.
        await outcome_too_late(ctx, row, action)
        return True
    finally:
        SEND_GUARD.reset(token)
    faultpoints.checkpoint("after_provider")
    if result.outcome is Outcome.ALREADY_DONE:
        result = await confirm_already_done(ctx, row, action, result)
    faultpoints.checkpoint("before_outcome")
    await record_outcome(ctx, row, action, result)
    if State(row.state).is_final:
        return False  # recorded and released in the outcome's own write
    return State(row.state) not in (State.CAPTURING, State.CANCELING)
