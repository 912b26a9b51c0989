"""One pass: due rows -> claim -> act -> record. The only place that joins policy,
store and providers.

Each row is leased by this worker; every write after a provider call is fenced by
the lease generation, so a worker that lost its lease cannot overwrite the one that
took the row after it. No database transaction is held across a network call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from watchdog import audit, controls, faultpoints, store
from watchdog.alerting import AlertKind, Severity, alert_details, raise_alert, resolve_alerts
from watchdog.audit import AuditEvent
from watchdog.clock import Clock
from watchdog.config import Config
from watchdog.domain import ActionKind, AlertStage, ProviderName, State
from watchdog.errors import TransitionError
from watchdog.models import Action, Authorization, Pass
from watchdog.policy import Decision, Step, plan, timeline
from watchdog.providers.base import AuthRef, Outcome, ProviderAdapter, ProviderResult
from watchdog.providers.retry import with_retries
from watchdog.reconcile import effect_present, reconcile

log = logging.getLogger("watchdog.scan")

MAX_STEPS_PER_ROW = 6
MAX_RECOVERIES = 5
FAILURES_BEFORE_ALERT = 3
OPEN = (State.AUTHORIZED, State.PARTIALLY_CAPTURED)


@dataclass
class PassReport:
    """What one pass did, for logs, metrics and the CLI."""

    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    claimed: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def count(self, step: str) -> None:
        """Tally one executed step."""
        self.steps[step] = self.steps.get(step, 0) + 1

    def summary(self) -> str:
        """One line for humans."""
        done = ", ".join(f"{k}={v}" for k, v in sorted(self.steps.items())) or "nothing due"
        return f"claimed {self.claimed}: {done}; errors {self.errors}"


class Scanner:
    """Runs passes for one worker identity."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        adapters: Mapping[ProviderName, ProviderAdapter],
        clock: Clock,
        worker: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        dry_run: bool = False,
    ) -> None:
        self.engine = engine
        self.config = config
        self.adapters = adapters
        self.clock = clock
        self.worker = worker
        self.sleep = sleep
        self.dry_run = dry_run or config.policy.dry_run
        self._stopping = False
        self._actions_this_pass: dict[str, int] = {}
        self._last_pass_end: dt.datetime | None = None

    def stop(self) -> None:
        """Finish the rows in hand, claim no more."""
        self._stopping = True

    async def run_pass(self) -> PassReport:
        """Work every due row once (earliest deadline first) and record the pass."""
        report = PassReport(started_at=self.clock.now())
        self._actions_this_pass = {}
        self._last_pass_end = self._previous_pass_end()
        pass_id = self._record_pass_start(report.started_at)
        seen: set[int] = set()
        semaphore = asyncio.Semaphore(self.config.scheduler.concurrency)
        try:
            while not self._stopping:
                rows = store.claim_due(
                    self.engine,
                    self.worker,
                    self.clock.now(),
                    self.config.scheduler.lease,
                    self.config.scheduler.batch_size,
                )
                fresh = [r for r in rows if r.id not in seen]
                for row in rows:
                    if row.id in seen:
                        self._release(row)
                if not fresh:
                    break
                report.claimed += len(fresh)
                seen.update(r.id for r in fresh)

                async def work(row: Authorization) -> None:
                    async with semaphore:
                        await self._process(row, report)

                await asyncio.gather(*(work(r) for r in fresh))
        finally:
            report.finished_at = self.clock.now()
            self._record_pass_end(pass_id, report)
        return report

    # ------------------------------------------------------------------ per row

    async def _process(self, row: Authorization, report: PassReport) -> None:
        try:
            for _ in range(MAX_STEPS_PER_ROW):
                now = self.clock.now()
                decision = self._decide(row, now)
                if decision.step is Step.WAIT:
                    self._park(row, decision)
                    return
                report.count(decision.step.value)
                log.info(
                    "step",
                    extra={
                        "action": f"scan:{decision.step.value}",
                        "authorization_id": row.id,
                        "provider": row.provider,
                        "reason": decision.reason,
                    },
                )
                if not await self._execute(row, decision, now):
                    return
            self._release(row)
        except TransitionError as exc:
            report.errors += 1
            self._audit_late_write(row, exc)
        except Exception:
            report.errors += 1
            log.exception(
                "row failed", extra={"action": "scan:row:error", "authorization_id": row.id}
            )
            self._release(row)

    def _decide(self, row: Authorization, now: dt.datetime) -> Decision:
        provider = ProviderName(row.provider)
        return plan(
            store.snapshot(row),
            store.rules_for(self.config, provider),
            self.config.policy_for(provider),
            now,
        )

    async def _execute(self, row: Authorization, decision: Decision, now: dt.datetime) -> bool:
        """Carry out one step. False means the row was handed off (parked or released)."""
        step = decision.step
        if step is Step.SYNC:
            await self._sync(row)
            return True
        if step in (Step.ALERT_APPROACHING, Step.ALERT_CRITICAL):
            self._alert_stage(row, decision, now)
            return True
        if step is Step.EXPIRE:
            await self._expire(row, decision)
            return True
        if step is Step.RECOVER:
            return await self._recover(row)
        kind = ActionKind.CAPTURE if step is Step.CAPTURE else ActionKind.CANCEL
        return await self._act(row, kind, decision)

    # ------------------------------------------------------------------ steps

    def _adapter(self, row: Authorization) -> ProviderAdapter | None:
        return self.adapters.get(ProviderName(row.provider))

    def _ref(self, row: Authorization) -> AuthRef:
        return AuthRef(row.id, row.order_id, row.amount, row.currency, row.captured_amount)

    async def _status(self, row: Authorization) -> ProviderResult | None:
        adapter = self._adapter(row)
        if adapter is None:
            return None
        settings = self.config.provider(ProviderName(row.provider))
        result = await with_retries(
            lambda: adapter.status(self._ref(row)),
            settings.retry_attempts,
            settings.retry_backoff,
            self.sleep,
        )
        self._audit(
            row, "scan:status:read", outcome=result.outcome.value, detail=_result_detail(result)
        )
        return result

    async def _sync(self, row: Authorization) -> ProviderResult | None:
        """Read the provider's status and apply what it says; returns the answer."""
        result = await self._status(row)
        now = self.clock.now()
        if result is None or result.snapshot is None:
            with self._tx() as session:
                store.guarded_update(
                    session,
                    row,
                    [State(row.state)],
                    {
                        "last_synced_at": now,
                        "updated_at": now,
                        "last_error": result.describe() if result else "provider not configured",
                    },
                    worker=self.worker,
                )
            return result
        self._apply_reconciliation(row, result, now)
        return result

    def _apply_reconciliation(
        self, row: Authorization, result: ProviderResult, now: dt.datetime
    ) -> None:
        snap = store.snapshot(row)
        rec = reconcile(snap, result, now)
        values = dict(rec.values, updated_at=now)
        old_deadline = row.deadline
        with self._tx() as session:
            events: list[AuditEvent] = []
            if rec.new_state is not None and rec.new_state.value != row.state:
                values["state"] = rec.new_state.value
                if rec.new_state.is_final or rec.new_state is State.NEEDS_ATTENTION:
                    values["instruction"] = None
                events.append(
                    self._event(
                        row,
                        "scan:sync:state",
                        state_to=rec.new_state.value,
                        detail={
                            "provider_state": result.snapshot.raw_state
                            if result.snapshot
                            else None,
                            "drift": rec.drift,
                            "attention": rec.attention,
                        },
                    )
                )
            store.guarded_update(session, row, [State(row.state)], values, worker=self.worker)
            self._replan(session, row, now)
            if row.deadline < old_deadline:
                events.append(
                    self._event(
                        row,
                        "scan:deadline:earlier",
                        detail={
                            "was": old_deadline.isoformat(),
                            "now": row.deadline.isoformat(),
                            "source": row.deadline_source,
                        },
                    )
                )
            audit.append(session, events, now)
            if rec.drift:
                self._alert(
                    session,
                    row,
                    AlertKind.NEEDS_ATTENTION
                    if rec.new_state is None
                    else _drift_kind(rec.new_state),
                    Severity.CRITICAL if rec.new_state is State.EXPIRED else Severity.WARNING,
                    f"{row.provider} {row.order_id}: {rec.drift}",
                    rec.drift,
                    now,
                )
            if rec.attention:
                self._alert(
                    session,
                    row,
                    AlertKind.NEEDS_ATTENTION,
                    Severity.CRITICAL,
                    f"{row.provider} {row.order_id}: {rec.attention}",
                    rec.attention,
                    now,
                )
            if State(row.state) in (State.CAPTURED, State.CANCELED):
                resolve_alerts(session, row.id, now, self.worker, f"provider reports {row.state}")

    def _alert_stage(self, row: Authorization, decision: Decision, now: dt.datetime) -> None:
        critical = decision.step is Step.ALERT_CRITICAL
        kind = AlertKind.DEADLINE_CRITICAL if critical else AlertKind.DEADLINE_APPROACHING
        stage = AlertStage.CRITICAL if critical else AlertStage.APPROACHING
        left = row.deadline - now
        summary = (
            f"{row.provider} order {row.order_id}: {row.amount - row.captured_amount} "
            f"{row.currency} still open, deadline in {_human(left)}"
        )
        with self._tx() as session:
            store.guarded_update(
                session,
                row,
                [State(row.state)],
                {"alert_stage": int(stage), "updated_at": now},
                worker=self.worker,
            )
            self._alert(
                session,
                row,
                kind,
                Severity.CRITICAL if critical else Severity.WARNING,
                summary,
                decision.reason,
                now,
            )
            if critical:
                resolve_alerts(
                    session,
                    row.id,
                    now,
                    self.worker,
                    "escalated to critical",
                    kinds=[AlertKind.DEADLINE_APPROACHING],
                )
            self._replan(session, row, now)

    async def _expire(self, row: Authorization, decision: Decision) -> None:
        result = await self._status(row)
        now = self.clock.now()
        if result is not None and result.snapshot is not None:
            rec = reconcile(store.snapshot(row), result, now)
            if rec.new_state in (State.CAPTURED, State.CANCELED):
                self._apply_reconciliation(row, result, now)
                return
        guard_at = self._timeline(row).guard_at
        if self._last_pass_end is not None and self._last_pass_end < guard_at <= now - (
            self.config.scheduler.scan_interval * 2
        ):
            decision = Decision(
                decision.step,
                decision.next_action_at,
                f"{decision.reason}; watchdog was down from "
                f"{self._last_pass_end.isoformat()} to {now.isoformat()}",
            )
        with self._tx() as session:
            store.guarded_update(
                session,
                row,
                [State(row.state)],
                {
                    "state": State.EXPIRED.value,
                    "next_action_at": None,
                    "instruction": None,
                    "updated_at": now,
                },
                worker=self.worker,
            )
            audit.append(
                session,
                [
                    self._event(
                        row,
                        "scan:authorization:expire",
                        state_to=State.EXPIRED.value,
                        detail={"reason": decision.reason},
                    )
                ],
                now,
            )
            self._alert(
                session,
                row,
                AlertKind.AUTHORIZATION_EXPIRED,
                Severity.CRITICAL,
                f"{row.provider} order {row.order_id}: authorization lost "
                f"({row.amount - row.captured_amount} {row.currency} never captured)",
                decision.reason,
                now,
            )
            resolve_alerts(session, row.id, now, self.worker, "superseded by authorization_expired")

    # ------------------------------------------------------------------ money

    async def _act(self, row: Authorization, kind: ActionKind, decision: Decision) -> bool:
        """Sync, then commit an intent, then call the provider, then record the outcome."""
        adapter = self._adapter(row)
        if adapter is None:
            self._not_configured(row)
            return False
        before = await self._sync(row)
        if before is None or before.snapshot is None:
            self._defer(
                row,
                f"status read failed before {kind}: {before.describe() if before else 'no answer'}",
            )
            return False
        now = self.clock.now()
        fresh = self._decide(row, now)
        if fresh.step is not decision.step or fresh.amount != decision.amount:
            return True  # the provider's answer changed the plan; take it from the top
        held = self._guard_rail(row, kind, decision)
        if held is not None:
            self._hold(row, kind, decision, *held)
            return held[2]  # a held row goes on to its alerts; a deferred one waits its turn
        self._count_action(row)
        faultpoints.checkpoint("before_intent")
        action = self._commit_intent(row, kind, decision, now)
        faultpoints.checkpoint("after_intent")
        return await self._send(row, action, adapter)

    def _guard_rail(
        self, row: Authorization, kind: ActionKind, decision: Decision
    ) -> tuple[str, str, bool] | None:
        """Why this action must wait, as (event, reason, retry_later); None lets it go."""
        provider = ProviderName(row.provider)
        policy = self.config.policy_for(provider)
        if self.dry_run or policy.dry_run:
            return "would", f"dry run: would {kind} {decision.amount or ''}".strip(), True
        with Session(self.engine) as session:
            paused = controls.pause_for(controls.pauses(session), provider)
            approved = controls.is_approved(session, row.id)
        if paused is not None:
            scope = "all providers" if paused.scope == controls.GLOBAL else paused.scope
            return "held", f"{scope} paused by {paused.actor}: {paused.reason}", True
        budget = self.config.policy.max_actions_per_pass
        if budget is not None and sum(self._actions_this_pass.values()) >= budget:
            return "deferred", f"action budget of {budget} per pass used up", False
        provider_budget = policy.max_actions_per_pass
        if provider_budget is not None and self._actions_this_pass.get(row.provider, 0) >= (
            provider_budget
        ):
            return "deferred", f"{provider} action budget of {provider_budget} used up", False
        limit = policy.max_capture_amount
        if (
            kind is ActionKind.CAPTURE
            and limit is not None
            and (decision.amount or 0) > limit
            and not approved
        ):
            return (
                "held",
                f"capture of {decision.amount} exceeds max_capture_amount {limit}; "
                f"approve with `expiry-watchdog approve {row.id}`",
                True,
            )
        return None

    def _count_action(self, row: Authorization) -> None:
        self._actions_this_pass[row.provider] = self._actions_this_pass.get(row.provider, 0) + 1

    def _hold(
        self,
        row: Authorization,
        kind: ActionKind,
        decision: Decision,
        event: str,
        reason: str,
        retry_later: bool,
    ) -> None:
        """Audit an action held back by a guard rail, alert on-call, and look again later."""
        now = self.clock.now()
        with self._tx() as session:
            values: dict[str, Any] = {"updated_at": now}
            if retry_later:
                values["not_before"] = now + self.config.scheduler.scan_interval
            store.guarded_update(session, row, [State(row.state)], values, worker=self.worker)
            if retry_later:
                self._replan(session, row, now)
            else:
                store.release(session, row, self.worker)
            audit.append(
                session,
                [
                    self._event(
                        row,
                        f"scan:{kind.value}:{event}",
                        amount=decision.amount,
                        detail={
                            "reason": reason,
                            "decision": decision.reason,
                            "deadline": row.deadline.isoformat(),
                        },
                    )
                ],
                now,
            )
            if event == "held":
                self._alert(
                    session,
                    row,
                    AlertKind.DEADLINE_APPROACHING,
                    Severity.WARNING,
                    f"{row.provider} order {row.order_id}: {kind} held back — {reason}",
                    f"{kind} held: {reason}",
                    now,
                )

    def _previous_pass_end(self) -> dt.datetime | None:
        with Session(self.engine) as session:
            return session.execute(
                select(func.max(Pass.finished_at)).where(Pass.ok.is_(True))
            ).scalar_one_or_none()

    def _commit_intent(
        self, row: Authorization, kind: ActionKind, decision: Decision, now: dt.datetime
    ) -> Action:
        in_flight = State.CAPTURING if kind is ActionKind.CAPTURE else State.CANCELING
        seq = row.capture_count + 1 if kind is ActionKind.CAPTURE else 1
        settings = self.config.provider(ProviderName(row.provider))
        recovery_after = dt.timedelta(
            seconds=(settings.connect_timeout + settings.read_timeout)
            * (settings.retry_attempts + 1)
        )
        with self._tx() as session:
            action: Action | None = session.execute(
                select(Action)
                .where(
                    Action.authorization_id == row.id,
                    Action.kind == kind.value,
                    Action.seq == seq,
                    Action.status == "retryable",
                )
                .order_by(Action.attempt.desc())
                .limit(1)
            ).scalar_one_or_none()
            if action is None or action.amount != decision.amount:
                attempt = session.execute(
                    select(Action.attempt)
                    .where(
                        Action.authorization_id == row.id,
                        Action.kind == kind.value,
                        Action.seq == seq,
                    )
                    .order_by(Action.attempt.desc())
                    .limit(1)
                ).scalar_one_or_none()
                attempt = 1 if attempt is None else attempt + 1
                action = Action(
                    authorization_id=row.id,
                    kind=kind.value,
                    seq=seq,
                    attempt=attempt,
                    idempotency_key=idempotency_key(row.id, kind, seq, attempt),
                    amount=decision.amount,
                    final=decision.final,
                    status="pending",
                    sends=0,
                    recoveries=0,
                    actor=self.worker,
                    created_at=now,
                )
                session.add(action)
            else:
                action.status = "pending"
            store.guarded_update(
                session,
                row,
                OPEN,
                {
                    "state": in_flight.value,
                    "next_action_at": now + recovery_after,
                    "updated_at": now,
                },
                worker=self.worker,
            )
            session.flush()
            audit.append(
                session,
                [
                    self._event(
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
                ],
                now,
            )
        return action

    async def _send(self, row: Authorization, action: Action, adapter: ProviderAdapter) -> bool:
        kind = ActionKind(action.kind)
        guard_at = self._timeline(row).guard_at
        if self.clock.now() >= guard_at:
            self._outcome_too_late(row, action)
            return True
        settings = self.config.provider(ProviderName(row.provider))
        ref = self._ref(row)

        async def call() -> ProviderResult:
            if kind is ActionKind.CAPTURE:
                assert action.amount is not None
                return await adapter.capture(
                    ref, action.amount, action.idempotency_key, final=action.final
                )
            return await adapter.cancel(ref, action.idempotency_key)

        faultpoints.checkpoint("after_send")
        result = await with_retries(
            call,
            settings.retry_attempts,
            settings.retry_backoff,
            self.sleep,
            deadline_guard=lambda: self.clock.now() < guard_at,
        )
        faultpoints.checkpoint("after_provider")
        faultpoints.checkpoint("before_outcome")
        self._record_outcome(row, action, result)
        return State(row.state) not in (State.CAPTURING, State.CANCELING)

    def _record_outcome(self, row: Authorization, action: Action, result: ProviderResult) -> None:
        now = self.clock.now()
        kind = ActionKind(action.kind)
        in_flight = State.CAPTURING if kind is ActionKind.CAPTURE else State.CANCELING
        detail = _result_detail(result)
        with self._tx() as session:
            db_action = session.get(Action, action.id)
            assert db_action is not None
            db_action.sends += 1
            db_action.provider_code = result.provider_code
            db_action.request_id = result.request_id
            db_action.message = result.describe()[:2000]
            values: dict[str, Any] = {"updated_at": now}
            alert: tuple[AlertKind, Severity, str] | None = None
            if result.outcome in (Outcome.SUCCEEDED, Outcome.ALREADY_DONE):
                values.update(self._effect_values(row, db_action))
                values.update(instruction=None, attempts=0, not_before=None, last_error=None)
                db_action.status = result.outcome.value
                db_action.completed_at = now
            elif result.outcome is Outcome.UNKNOWN:
                db_action.status = "unknown"
                values.update(last_error=result.describe())
            elif result.outcome is Outcome.RETRYABLE:
                db_action.status = "retryable"
                attempts = row.attempts + 1
                values.update(
                    state=self._prior_state(row).value,
                    attempts=attempts,
                    not_before=now + _backoff(attempts, result.retry_after),
                    last_error=result.describe(),
                )
                if attempts >= FAILURES_BEFORE_ALERT:
                    alert = (
                        AlertKind.ACTION_FAILED,
                        Severity.WARNING,
                        f"{kind} keeps failing: {result.describe()}",
                    )
            else:
                db_action.status = "rejected"
                db_action.completed_at = now
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
            store.guarded_update(session, row, [in_flight], values, worker=self.worker)
            self._replan(session, row, now)
            audit.append(
                session,
                [
                    self._event(
                        row,
                        f"scan:{kind.value}:outcome",
                        amount=action.amount,
                        key=action.idempotency_key,
                        state_from=in_flight.value,
                        state_to=row.state,
                        outcome=result.outcome.value,
                        detail=detail,
                    )
                ],
                now,
            )
            if alert is not None:
                self._alert(
                    session,
                    row,
                    alert[0],
                    alert[1],
                    f"{row.provider} order {row.order_id}: {alert[2]}",
                    alert[2],
                    now,
                )
            if State(row.state).is_final:
                resolve_alerts(session, row.id, now, self.worker, f"{row.state} by the watchdog")

    def _effect_values(self, row: Authorization, action: Action) -> dict[str, Any]:
        """Columns after our capture/cancel took effect."""
        rules = store.rules_for(self.config, ProviderName(row.provider))
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

    def _prior_state(self, row: Authorization) -> State:
        return State.PARTIALLY_CAPTURED if row.captured_amount > 0 else State.AUTHORIZED

    async def _recover(self, row: Authorization) -> bool:
        """An in-flight intent has no outcome: ask the provider, then record or resend."""
        with Session(self.engine) as session:
            action = session.execute(
                select(Action)
                .where(Action.authorization_id == row.id, Action.status.in_(["pending", "unknown"]))
                .order_by(Action.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        adapter = self._adapter(row)
        if action is None or adapter is None:
            self._needs_attention(
                row,
                None,
                "in-flight state without an open intent"
                if action is None
                else "provider not configured",
            )
            return False
        result = await self._status(row)
        now = self.clock.now()
        snap = result.snapshot if result is not None else None
        present = (
            effect_present(store.snapshot(row), ActionKind(action.kind), action.amount, snap)
            if snap is not None
            else None
        )
        self._audit(
            row,
            f"recovery:{action.kind}:check",
            key=action.idempotency_key,
            outcome={True: "present", False: "absent", None: "unknown"}[present],
            detail={"status": _result_detail(result) if result else None},
        )
        if present is True:
            self._record_outcome(
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
            if now >= self._timeline(row).guard_at:
                self._outcome_too_late(row, action)
                return True
            self._audit(
                row,
                f"recovery:{action.kind}:resend",
                key=action.idempotency_key,
                amount=action.amount,
            )
            return await self._send(row, action, adapter)
        # Still cannot tell.
        if action.recoveries + 1 >= MAX_RECOVERIES or now >= self._timeline(row).guard_at:
            self._needs_attention(row, action, "outcome still unknown after recovery attempts")
            return False
        with self._tx() as session:
            db_action = session.get(Action, action.id)
            assert db_action is not None
            db_action.recoveries += 1
            delay = _backoff(db_action.recoveries, None)
            next_at = min(now + delay, self._timeline(row).guard_at)
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
                worker=self.worker,
            )
        return False

    def _outcome_too_late(self, row: Authorization, action: Action) -> None:
        now = self.clock.now()
        with self._tx() as session:
            db_action = session.get(Action, action.id)
            assert db_action is not None
            db_action.status = "abandoned"
            db_action.completed_at = now
            store.guarded_update(
                session,
                row,
                [State(row.state)],
                {"state": State.EXPIRED.value, "next_action_at": None, "updated_at": now},
                worker=self.worker,
            )
            audit.append(
                session,
                [
                    self._event(
                        row,
                        f"scan:{action.kind}:abandon",
                        key=action.idempotency_key,
                        state_to=State.EXPIRED.value,
                        detail={"reason": "deadline guard reached"},
                    )
                ],
                now,
            )
            self._alert(
                session,
                row,
                AlertKind.AUTHORIZATION_EXPIRED,
                Severity.CRITICAL,
                f"{row.provider} order {row.order_id}: deadline guard reached before "
                f"the {action.kind} could be confirmed",
                f"{action.kind} not sent: too late",
                now,
            )

    def _needs_attention(self, row: Authorization, action: Action | None, why: str) -> None:
        now = self.clock.now()
        with self._tx() as session:
            if action is not None:
                db_action = session.get(Action, action.id)
                assert db_action is not None
                db_action.status = "unknown"
            store.guarded_update(
                session,
                row,
                [State(row.state)],
                {"state": State.NEEDS_ATTENTION.value, "last_error": why, "updated_at": now},
                worker=self.worker,
            )
            self._replan(session, row, now)
            audit.append(
                session,
                [
                    self._event(
                        row,
                        "scan:authorization:needs_attention",
                        state_to=State.NEEDS_ATTENTION.value,
                        key=action.idempotency_key if action else None,
                        detail={"reason": why},
                    )
                ],
                now,
            )
            self._alert(
                session,
                row,
                AlertKind.NEEDS_ATTENTION,
                Severity.CRITICAL,
                f"{row.provider} order {row.order_id}: {why}",
                why,
                now,
            )
            store.release(session, row, self.worker)

    def _not_configured(self, row: Authorization) -> None:
        self._defer(row, f"provider {row.provider} is not configured (base_url/credentials)")

    def _defer(self, row: Authorization, why: str) -> None:
        now = self.clock.now()
        attempts = row.attempts + 1
        with self._tx() as session:
            store.guarded_update(
                session,
                row,
                [State(row.state)],
                {
                    "attempts": attempts,
                    "not_before": now + _backoff(attempts, None),
                    "last_error": why,
                    "updated_at": now,
                },
                worker=self.worker,
            )
            self._replan(session, row, now)
            audit.append(
                session, [self._event(row, "scan:action:defer", detail={"reason": why})], now
            )
            if attempts >= FAILURES_BEFORE_ALERT:
                self._alert(
                    session,
                    row,
                    AlertKind.ACTION_FAILED,
                    Severity.WARNING,
                    f"{row.provider} order {row.order_id}: {why}",
                    why,
                    now,
                )
            store.release(session, row, self.worker)

    # ------------------------------------------------------------------ helpers

    def _timeline(self, row: Authorization) -> Any:
        provider = ProviderName(row.provider)
        return timeline(
            store.snapshot(row),
            store.rules_for(self.config, provider),
            self.config.policy_for(provider),
        )

    def _alert(
        self,
        session: Session,
        row: Authorization,
        kind: AlertKind,
        severity: Severity,
        summary: str,
        tried: str,
        now: dt.datetime,
    ) -> None:
        """Raise an alert about ``row`` in the caller's transaction (the outbox)."""
        raise_alert(
            session,
            kind,
            severity,
            summary,
            alert_details(row, tried, self.config.zone),
            now,
            self.worker,
            authorization_id=row.id,
            provider=row.provider,
        )

    def _replan(self, session: Session, row: Authorization, now: dt.datetime) -> None:
        values = store.replan_values(store.snapshot(row), self.config, now)
        if State(row.state).is_in_flight:
            values.pop("next_action_at")
        store.guarded_update(session, row, [State(row.state)], values, worker=self.worker)

    def _park(self, row: Authorization, decision: Decision) -> None:
        now = self.clock.now()
        with self._tx() as session:
            store.guarded_update(
                session,
                row,
                [State(row.state)],
                {
                    "next_action_at": decision.next_action_at,
                    "claimed_by": None,
                    "claimed_until": None,
                },
                worker=self.worker,
            )
            _ = now

    def _release(self, row: Authorization) -> None:
        with self._tx() as session:
            store.release(session, row, self.worker)

    def _tx(self) -> Any:
        from watchdog.db import transaction

        return transaction(self.engine)

    def _event(
        self,
        row: Authorization,
        event: str,
        *,
        amount: int | None = None,
        key: str | None = None,
        state_from: str | None = None,
        state_to: str | None = None,
        outcome: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            event=event,
            actor=self.worker,
            authorization_id=row.id,
            provider=row.provider,
            order_id=row.order_id,
            amount=amount,
            currency=row.currency,
            idempotency_key=key,
            state_from=state_from,
            state_to=state_to,
            outcome=outcome,
            detail=detail or {},
        )

    def _audit(self, row: Authorization, event: str, **kwargs: Any) -> None:
        now = self.clock.now()
        with self._tx() as session:
            audit.append(session, [self._event(row, event, **kwargs)], now)

    def _audit_late_write(self, row: Authorization, exc: TransitionError) -> None:
        log.warning(
            "late write refused",
            extra={
                "action": "scan:write:refused",
                "authorization_id": row.id,
                "reason": exc.reason,
            },
        )
        self._audit(
            row, "scan:write:refused", detail={"reason": exc.reason, "generation": row.generation}
        )

    def _record_pass_start(self, now: dt.datetime) -> int:
        with self._tx() as session:
            record = Pass(
                worker=self.worker,
                started_at=now,
                processed=0,
                failed=0,
                ok=False,
                dry_run=self.dry_run,
            )
            session.add(record)
            session.flush()
            return record.id

    def _record_pass_end(self, pass_id: int, report: PassReport) -> None:
        with self._tx() as session:
            record = session.get(Pass, pass_id)
            if record is not None:
                record.finished_at = report.finished_at
                record.processed = report.claimed
                record.failed = report.errors
                record.ok = report.errors == 0


def idempotency_key(authorization_id: int, kind: ActionKind, seq: int, attempt: int) -> str:
    """Deterministic from our own data: the same intent always carries the same key."""
    return f"ew-{authorization_id}-{kind.value}{seq}-a{attempt}"


def _backoff(attempts: int, retry_after: float | None) -> dt.timedelta:
    seconds = min(30 * 2 ** max(attempts - 1, 0), 3600)
    if retry_after is not None:
        seconds = max(seconds, int(retry_after))
    return dt.timedelta(seconds=seconds)


def _human(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 0:
        return "the past"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _drift_kind(state: State) -> AlertKind:
    return AlertKind.AUTHORIZATION_EXPIRED if state is State.EXPIRED else AlertKind.NEEDS_ATTENTION


def _result_detail(result: ProviderResult) -> dict[str, Any]:
    snap = result.snapshot
    return {
        "outcome": result.outcome.value,
        "http_status": result.http_status,
        "provider_code": result.provider_code,
        "request_id": result.request_id,
        "message": result.message,
        "provider_state": snap.raw_state if snap else None,
        "captured_amount": snap.captured_amount if snap else None,
        "open_amount": snap.open_amount if snap else None,
        "expires_at": snap.expires_at.isoformat() if snap and snap.expires_at else None,
        "raw": result.raw,
    }
