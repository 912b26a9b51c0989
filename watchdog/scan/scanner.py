"""The pass loop: claim due rows, work each through its steps, record the pass."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import Engine

from watchdog import audit
from watchdog.clock import Clock
from watchdog.config import Config
from watchdog.domain import ActionKind, ProviderName
from watchdog.errors import TransitionError, WatchdogError
from watchdog.models import Authorization
from watchdog.planner import Planner
from watchdog.policy import Decision, Step
from watchdog.providers.base import ProviderAdapter
from watchdog.scan.actions import act
from watchdog.scan.confirm import confirm
from watchdog.scan.context import ScanContext
from watchdog.scan.early import claim_unsynced, early_read
from watchdog.scan.recovery import recover
from watchdog.scan.report import (
    PassReport,
    previous_pass_end,
    record_pass_end,
    record_pass_start,
)
from watchdog.scan.stages import alert_stage, expire
from watchdog.scan.sync import sync

log = logging.getLogger("watchdog.scan")

MAX_STEPS_PER_ROW = 6


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
        planner: Planner | None = None,
    ) -> None:
        """A scanner for ``worker``; ``planner`` is the configuration's (built from
        ``config`` when not given)."""
        self.ctx = ScanContext(
            engine=engine,
            config=config,
            adapters=adapters,
            clock=clock,
            worker=worker,
            sleep=sleep,
            dry_run=dry_run or config.policy.dry_run,
            planner=planner or Planner(config),
        )
        self._stopping = False

    # The dependencies live in the shared context; these keep them reachable (and the
    # adapters and dry-run switch replaceable) on the scanner itself.

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    @property
    def config(self) -> Config:
        return self.ctx.config

    @property
    def planner(self) -> Planner:
        return self.ctx.planner

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def worker(self) -> str:
        return self.ctx.worker

    @property
    def sleep(self) -> Callable[[float], Awaitable[None]]:
        return self.ctx.sleep

    @property
    def adapters(self) -> Mapping[ProviderName, ProviderAdapter]:
        return self.ctx.adapters

    @adapters.setter
    def adapters(self, value: Mapping[ProviderName, ProviderAdapter]) -> None:
        self.ctx.adapters = value

    @property
    def dry_run(self) -> bool:
        return self.ctx.dry_run

    @dry_run.setter
    def dry_run(self, value: bool) -> None:
        self.ctx.dry_run = value

    def stop(self) -> None:
        """Finish the rows in hand, claim no more."""
        self._stopping = True

    async def run_pass(self) -> PassReport:
        """Work every due row once (earliest deadline first) and record the pass.

        ``scheduler.concurrency`` rows are worked at once from a queue of claimed rows;
        a new batch is claimed as soon as the queue runs dry, not when the slowest row of
        the last batch is done.
        """
        ctx = self.ctx
        report = PassReport(started_at=ctx.clock.now())
        ctx.actions_this_pass = {}
        ctx.forget_pauses()
        ctx.committer.known.forget()
        ctx.last_pass_end = previous_pass_end(ctx.engine)
        abandoned = await ctx.committer.release_abandoned(ctx.worker)
        if abandoned:
            log.warning(
                "rows left leased by an earlier pass given back",
                extra={"action": "scan:lease:abandoned", "rows": abandoned},
            )
        pass_id = record_pass_start(ctx.engine, ctx.worker, report.started_at, ctx.dry_run)
        claimed = ClaimQueue(self, report)

        async def settle_failed(row: Authorization, exc: Exception) -> None:
            await self._row_failed(row, exc, report)

        ctx.on_settle_failure = settle_failed
        try:
            # Every row task finishes before the pass does (a failing row does not
            # leave the others running outside the pass).
            workers = ctx.config.scheduler.concurrency
            await asyncio.gather(
                *(self._work_queue(claimed, report) for _ in range(workers)),
                return_exceptions=True,
            )
            await claimed.close()
            if claimed.failure is not None:
                raise claimed.failure
            if not self._stopping:
                await self._early_reads(report)
        finally:
            await ctx.settle()
            await ctx.committer.aclose()
            report.finished_at = ctx.clock.now()
            record_pass_end(ctx.engine, pass_id, report)
            self._checkpoint(report)
        return report

    def _checkpoint(self, report: PassReport) -> None:
        """Anchor the audit chain outside the database after the pass (file, log, metrics).
        A refused or failed checkpoint is logged at ERROR and reported; it never fails the
        pass (the money work is done and recorded)."""
        assert report.finished_at is not None
        try:
            report.checkpoint = audit.write_checkpoint(self.ctx.engine, report.finished_at)
        except audit.CheckpointMismatch as exc:
            report.audit_problem = str(exc)
        except (OSError, WatchdogError) as exc:
            report.audit_problem = f"checkpoint not written: {exc}"
            log.exception("audit checkpoint not written",
                          extra={"action": "audit:checkpoint:error"})

    async def _early_reads(self, report: PassReport) -> None:
        """Once the due rows are done: read the status of up to ``batch_size`` newly
        registered rows (earliest deadline first), then work each as usual."""
        ctx = self.ctx
        rows = await claim_unsynced(ctx, ctx.clock.now(), ctx.config.scheduler.batch_size)
        if not rows:
            return
        queue = deque(rows)

        async def worker() -> None:
            while queue and not self._stopping:
                row = queue.popleft()
                try:
                    await early_read(ctx, row)
                except Exception as exc:  # noqa: BLE001 - one bad row must not end the pass
                    await self._row_failed(row, exc, report)
                    continue
                report.count("early_read")
                await self._process(row, report)

        workers = min(len(rows), ctx.config.scheduler.concurrency)
        await asyncio.gather(*(worker() for _ in range(workers)))
        for row in queue:  # stopping: give back what was not read
            await ctx.release(row)

    async def _work_queue(self, claimed: ClaimQueue, report: PassReport) -> None:
        while not self._stopping:
            row = await claimed.next()
            if row is None:
                return
            await self._process(row, report)

    # ------------------------------------------------------------------ per row

    async def _process(self, row: Authorization, report: PassReport) -> None:
        ctx = self.ctx
        try:
            for _ in range(MAX_STEPS_PER_ROW):
                now = ctx.clock.now()
                decision = ctx.decide(row, now)
                if decision.step is Step.WAIT:
                    await ctx.park(row, decision)
                    return
                report.count(decision.step.value)
                log.info(
                    "step",
                    extra={
                        "action": f"scan:{decision.step.value}",
                        "authorization_id": row.id,
                        "provider": row.provider,
                        "account": row.account,
                        "reason": decision.reason,
                    },
                )
                if not await self._execute(row, decision, now):
                    return
            await ctx.release(row)
        except Exception as exc:  # noqa: BLE001 - one bad row must not end the pass
            await self._row_failed(row, exc, report)

    async def _row_failed(self, row: Authorization, exc: Exception, report: PassReport) -> None:
        """Count and report a row's failure; the row waits for a later pass.

        Money is safe: an intent without an outcome stays in flight and recovery (a status
        read) resolves it on a later pass.
        """
        report.errors += 1
        try:
            if isinstance(exc, TransitionError):
                await self._audit_late_write(row, exc)
                return
            log.error(
                "row failed",
                exc_info=exc,
                extra={"action": "scan:row:error", "authorization_id": row.id},
            )
            await self.ctx.release(row)
        except Exception:  # the database is gone too: the lease runs out by itself
            log.exception(
                "row failure not recorded",
                extra={"action": "scan:row:error", "authorization_id": row.id},
            )

    async def _execute(self, row: Authorization, decision: Decision, now: dt.datetime) -> bool:
        """Carry out one step. False means the row was handed off (parked or released)."""
        ctx = self.ctx
        step = decision.step
        if step is Step.SYNC:
            await sync(ctx, row)
            return True
        if step in (Step.ALERT_APPROACHING, Step.ALERT_CRITICAL):
            await alert_stage(ctx, row, decision, now)
            return True
        if step is Step.EXPIRE:
            await expire(ctx, row, decision)
            return True
        if step is Step.RECOVER:
            return await recover(ctx, row)
        if step is Step.CONFIRM:
            return await confirm(ctx, row)
        kind = ActionKind.CAPTURE if step is Step.CAPTURE else ActionKind.CANCEL
        return await act(ctx, row, kind, decision)

    async def _audit_late_write(self, row: Authorization, exc: TransitionError) -> None:
        log.warning(
            "late write refused",
            extra={
                "action": "scan:write:refused",
                "authorization_id": row.id,
                "reason": exc.reason,
            },
        )
        await self.ctx.audit(
            row, "scan:write:refused", detail={"reason": exc.reason, "generation": row.generation}
        )


class ClaimQueue:
    """Rows claimed for this pass and not yet started.

    The next batch is claimed ahead, while half a pass's concurrency of rows is still
    waiting, so rows in flight never wait for a claim (measured: with a batch smaller
    than twice the concurrency, waiting for claims cost a sixth of the throughput).
    Claiming ahead never holds more waiting rows than ``concurrency`` (a claim tops the
    queue up to it, at most ``batch_size`` at once): a worker killed mid-pass strands at
    most what was in flight plus one concurrency's worth, and those only for one lease.
    A row seen earlier in the pass that comes due again is given back, not worked twice.
    """

    def __init__(self, scanner: Scanner, report: PassReport) -> None:
        self.scanner = scanner
        self.report = report
        self.rows: deque[Authorization] = deque()
        self.seen: set[int] = set()
        self.exhausted = False
        self.failure: BaseException | None = None
        self._claim_task: asyncio.Task[None] | None = None
        self._concurrency = scanner.ctx.config.scheduler.concurrency
        self._low_water = max(1, self._concurrency // 2)

    async def next(self) -> Authorization | None:
        """The next row to work, or None when nothing more is due (or the pass stops)."""
        while not self.scanner._stopping:
            if self.rows:
                row = self.rows.popleft()
                if len(self.rows) < self._low_water:
                    self._claim_ahead()
                return row
            if self.exhausted:
                return None
            self._claim_ahead()
            assert self._claim_task is not None
            await asyncio.shield(self._claim_task)
        return None

    async def close(self) -> None:
        """Wait for a claim under way and give back every row claimed but not started."""
        if self._claim_task is not None:
            await asyncio.wait([self._claim_task])
        ctx = self.scanner.ctx
        while self.rows:
            row = self.rows.popleft()
            self.report.claimed -= 1
            await ctx.release(row)

    def _claim_ahead(self) -> None:
        if self.exhausted or (self._claim_task is not None and not self._claim_task.done()):
            return
        self._claim_task = asyncio.create_task(self._claim())

    async def _claim(self) -> None:
        ctx = self.scanner.ctx
        limit = min(ctx.config.scheduler.batch_size, max(1, self._concurrency - len(self.rows)))
        try:
            rows = await ctx.committer.claim(
                ctx.worker, ctx.clock.now(), ctx.config.scheduler.lease, limit
            )
        except Exception as exc:  # noqa: BLE001 - the database is unreachable: end the pass
            self.failure = exc
            self.exhausted = True
            return
        fresh = [r for r in rows if r.id not in self.seen]
        for row in rows:
            if row.id in self.seen:
                await ctx.release(row)
        if not fresh:
            self.exhausted = True
            return
        self.report.claimed += len(fresh)
        self.seen.update(r.id for r in fresh)
        self.rows.extend(fresh)
