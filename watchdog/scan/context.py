"""What every step of a pass works with: the worker's dependencies (the Planner among
them), its per-pass tallies, and the small row helpers (plan, audit event, alert, re-plan,
park, release). Every write
of a step goes through the group committer (``write`` ... ``commit``); nothing here opens
a write transaction of its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from watchdog import audit, controls, store
from watchdog.accounts import DEFAULT_ACCOUNT, label
from watchdog.alerts.outbox import AlertKind, Severity, alert_details, raise_alert
from watchdog.audit import AuditEvent
from watchdog.clock import Clock
from watchdog.config import Config, ProviderSettings
from watchdog.domain import ProviderName, State
from watchdog.models import Authorization
from watchdog.planner import Planner
from watchdog.policy import Decision, Timeline
from watchdog.providers.accounted import for_account
from watchdog.providers.base import AuthRef, ProviderAdapter
from watchdog.scan.committer import GroupCommitter
from watchdog.scan.writes import RowWrite
from watchdog.transitions import Event

PAUSES_FRESH_FOR = 1.0
"""Seconds a read of the pause switches is trusted before it is read again."""


@dataclass
class ScanContext:
    """One worker's dependencies and the state it carries from row to row within a pass."""

    engine: Engine
    config: Config
    adapters: Mapping[ProviderName, ProviderAdapter]
    clock: Clock
    worker: str
    sleep: Callable[[float], Awaitable[None]]
    dry_run: bool
    planner: Planner
    actions_this_pass: dict[str, int] = field(default_factory=dict)
    last_pass_end: dt.datetime | None = None
    committer: GroupCommitter = field(init=False)
    on_settle_failure: Callable[[Authorization, Exception], Awaitable[None]] | None = None
    _pauses: tuple[float, dict[str, controls.Pause]] | None = None
    _settling: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.committer = GroupCommitter(self.engine, self.clock)

    # ------------------------------------------------------------------ reading

    def adapter(self, row: Authorization) -> ProviderAdapter | None:
        """The adapter of the row's provider account, None when that provider or account is
        not configured (or not usable)."""
        return for_account(self.adapters.get(ProviderName(row.provider)), row.account)

    def settings(self, row: Authorization) -> ProviderSettings:
        """The settings of the row's provider account (the provider's when the account is
        no longer configured)."""
        provider = ProviderName(row.provider)
        return self.config.settings_of(provider, row.account) or self.config.provider(provider)

    def ref(self, row: Authorization) -> AuthRef:
        """What a provider adapter needs to know about the row."""
        return AuthRef(row.id, row.order_id, row.amount, row.currency, row.captured_amount,
                       account=row.account)

    def decide(self, row: Authorization, now: dt.datetime) -> Decision:
        """The planner's next step for the row as it stands."""
        return self.planner.decide(store.snapshot(row), now)

    def timeline(self, row: Authorization) -> Timeline:
        """The row's alert/capture/critical/guard instants."""
        return self.planner.timeline(store.snapshot(row))

    # ------------------------------------------------------------------ audit and alerts

    def event(
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
        """An audit event about ``row`` by this worker."""
        return audit.about(
            row,
            event,
            self.worker,
            amount=amount,
            idempotency_key=key,
            state_from=state_from,
            state_to=state_to,
            outcome=outcome,
            detail=detail or {},
        )

    async def audit(self, row: Authorization, event: str, **kwargs: Any) -> None:
        """Append one audit event about ``row`` (no guard: nothing else is written)."""
        write = self.write(row, self.clock.now())
        write.events.append(self.event(row, event, **kwargs))
        await self.commit(write)

    def alert(
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
        self.committer.known.alert_raised(row.id)
        if row.account != DEFAULT_ACCOUNT and summary.startswith(f"{row.provider} "):
            # "flitt/ge-shop order 1: ...": the text names the merchant account
            summary = label(row.provider, row.account) + summary[len(row.provider):]
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

    # ------------------------------------------------------------------ writes

    def write(self, row: Authorization, now: dt.datetime) -> RowWrite:
        """An empty set of writes about ``row`` by this worker, to fill and commit."""
        return RowWrite(row=row, worker=self.worker, now=now)

    async def commit(self, write: RowWrite) -> None:
        """Commit ``write`` (grouped with other rows' writes); TransitionError if refused."""
        await self.committer.commit(write)

    def commit_soon(self, write: RowWrite) -> None:
        """Commit a row's last write (the one that also gives up its lease) without waiting,
        so the row's place among those in flight goes to the next row at once.

        ``settle`` waits for every such write; one that fails goes to
        ``on_settle_failure`` (or is raised by ``settle`` when there is none).
        """

        async def commit_and_report() -> None:
            try:
                await self.commit(write)
            except Exception as exc:
                if self.on_settle_failure is None:
                    raise
                await self.on_settle_failure(write.row, exc)

        task = asyncio.create_task(commit_and_report())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def settle(self) -> None:
        """Wait until every write handed to ``commit_soon`` is committed or reported."""
        while self._settling:
            for result in await asyncio.gather(*self._settling, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result

    def replan_into(self, write: RowWrite) -> None:
        """Add the row's deadline and next instant, as they stand after ``write``, to it."""
        write.transition(Event.REPLAN, self.replan_values(write.row, write.now))

    def replan_values(self, row: Authorization, now: dt.datetime) -> dict[str, Any]:
        """The row's deadline and next instant (the latter kept while an action is in flight)."""
        values = self.planner.replan(store.snapshot(row), now).columns()
        if State(row.state).is_in_flight:
            values.pop("next_action_at")
        return values

    async def park(self, row: Authorization, decision: Decision) -> None:
        """Nothing to do now: drop the lease and come back at the decision's instant."""
        write = self.write(row, self.clock.now())
        write.transition(
            Event.PARK,
            {
                "next_action_at": decision.next_action_at,
                "claimed_by": None,
                "claimed_until": None,
            },
        )
        await self.commit(write)

    async def release(self, row: Authorization) -> None:
        """Drop this worker's lease on the row (nothing happens if it is no longer ours)."""
        write = self.write(row, self.clock.now())
        write.release = True
        await self.commit(write)

    def pauses(self) -> dict[str, controls.Pause]:
        """The pause switches in force, read at most once a second: a pause stops actions
        that are not yet committed within a second, without a query per row."""
        tick = time.monotonic()
        if self._pauses is None or tick - self._pauses[0] > PAUSES_FRESH_FOR:
            with Session(self.engine) as session:
                self._pauses = (tick, controls.pauses(session))
        return self._pauses[1]

    def forget_pauses(self) -> None:
        """Read the pause switches afresh on next use (a new pass)."""
        self._pauses = None
