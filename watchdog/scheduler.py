"""The daemon: APScheduler ticks, our authorizations table is the queue.

APScheduler 3.x's AsyncIOScheduler runs one ``scan`` job (coalesced, one instance at a
time, explicit misfire grace). After each pass the job is moved to the earliest instant
there is work (a row's ``next_action_at``, or the instant a dead worker's row comes
free), but no sooner than ``MIN_SLEEP`` and no later than ``scan_interval``: a
confirmation poll due in 30 s or a crashed worker's rows get a pass when they are due,
not at the next tick. SIGTERM/SIGINT stop claiming new rows, let the pass in hand
finish, then exit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from watchdog import store, systemd
from watchdog.alerts.sender import sender_tick
from watchdog.api.server import embedded_api
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import Config
from watchdog.health import make_metrics_app
from watchdog.metrics import DEFAULT_METRICS, MetricsServer
from watchdog.runtime import require_schema, scanner_runtime

log = logging.getLogger("watchdog.daemon")

MIN_SLEEP = dt.timedelta(seconds=2)
"""The shortest wait between passes (bounded by ``scan_interval``): a row coming due
every instant must not make the daemon spin."""


def next_wake(
    now: dt.datetime,
    work_at: dt.datetime | None,
    scan_interval: dt.timedelta,
    min_sleep: dt.timedelta = MIN_SLEEP,
) -> dt.datetime:
    """When the next pass should start: at ``work_at``, clipped to
    [now + min(min_sleep, scan_interval), now + scan_interval]."""
    earliest = now + min(min_sleep, scan_interval)
    latest = now + scan_interval
    if work_at is None:
        return latest
    return min(max(work_at, earliest), latest)


class Daemon:
    """One long-running worker process."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        clock: Clock = SYSTEM_CLOCK,
        max_passes: int | None = None,
        dry_run: bool = False,
    ) -> None:
        self.dry_run = dry_run
        self.config = config
        self.engine = engine
        self.clock = clock
        self.max_passes = max_passes
        self.passes = 0
        self.last_ok: dt.datetime | None = None
        self.in_pass = False
        self._done = asyncio.Event()
        self._pass_lock = asyncio.Lock()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or ``max_passes``); return the exit code."""
        require_schema(self.engine)
        loop = asyncio.get_running_loop()
        async with (
            scanner_runtime(self.config, self.engine, self.clock, dry_run=self.dry_run) as runtime,
            embedded_api(self.engine, self.config, self.clock),
        ):
            scanner = runtime.scanner

            def request_stop(signame: str) -> None:
                log.info("stopping", extra={"action": "daemon:stop", "signal": signame})
                systemd.notify("STOPPING=1")
                scanner.stop()
                self._done.set()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, request_stop, sig.name)

            async def tick() -> None:
                async with self._pass_lock:
                    if self._done.is_set():
                        return
                    self.in_pass = True
                    try:
                        report = await scanner.run_pass()
                    except OperationalError as exc:
                        log.warning(
                            "database unavailable; will retry next tick",
                            extra={
                                "action": "daemon:db_unavailable",
                                "error": str(exc).splitlines()[0],
                            },
                        )
                        self.engine.dispose()
                        systemd.notify("STATUS=database unavailable; retrying every tick")
                        return
                    finally:
                        self.in_pass = False
                    DEFAULT_METRICS.observe_pass(report)
                    self.passes += 1
                    self.last_ok = self.clock.now()
                    # `systemctl status` shows the latest one as "Status:".
                    systemd.notify(f"STATUS=pass {self.passes} at {self.last_ok:%H:%M:%S} UTC: "
                                   f"{report.summary()}")
                    log.info(
                        report.summary(),
                        extra={
                            "action": "scan:pass",
                            "claimed": report.claimed,
                            "errors": report.errors,
                            **report.log_fields(),
                        },
                    )
                    if self.max_passes is not None and self.passes >= self.max_passes:
                        self._done.set()
                        return
                    self._wake_for_next_work(scheduler)

            scheduler = AsyncIOScheduler(timezone=dt.UTC)
            interval = self.config.scheduler.scan_interval.total_seconds()
            scheduler.add_job(
                tick,
                IntervalTrigger(seconds=interval, timezone=dt.UTC),
                id="scan",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(self.config.scheduler.misfire_grace.total_seconds()),
                next_run_time=dt.datetime.now(dt.UTC),
            )
            # Alerts: their own job, so a sink that is down never delays a pass.
            notify_client = httpx.AsyncClient()

            async def notify() -> None:
                await sender_tick(self.engine, self.config.alerts, notify_client, self.clock)

            scheduler.add_job(
                notify, IntervalTrigger(seconds=self.config.alerts.interval.total_seconds(),
                                        timezone=dt.UTC),
                id="notify", coalesce=True, max_instances=1, misfire_grace_time=60,
                next_run_time=dt.datetime.now(dt.UTC),
            )
            # /metrics /healthz /readyz ride on the API; without the API, serve them alone.
            metrics_server: MetricsServer | None = None
            if self.config.metrics.enabled and not self.config.api.enabled:
                metrics_server = MetricsServer(
                    make_metrics_app(self.engine, self.config, self.clock),
                    self.config.metrics.host, self.config.metrics.port,
                )
                try:
                    await metrics_server.start()
                except OSError:  # a busy port must not stop the money work
                    log.exception("metrics endpoint not served",
                                  extra={"action": "daemon:metrics_unavailable"})
                    metrics_server = None
            heartbeat = systemd.watchdog_interval()
            if heartbeat:
                scheduler.add_job(
                    self._heartbeat,
                    IntervalTrigger(seconds=heartbeat),
                    id="heartbeat",
                    coalesce=True,
                    max_instances=1,
                )
            scheduler.start()
            systemd.notify(f"READY=1\nSTATUS=started; a pass every {interval:g}s")
            log.info("started", extra={"action": "daemon:start", "scan_interval": interval})
            try:
                await self._done.wait()
                try:
                    await asyncio.wait_for(
                        self._pass_lock.acquire(),
                        self.config.scheduler.stop_timeout.total_seconds(),
                    )
                except TimeoutError:
                    log.warning(
                        "pass did not finish within stop_timeout; in-flight intents "
                        "will be recovered on the next start",
                        extra={"action": "daemon:stop_timeout"},
                    )
            finally:
                scheduler.shutdown(wait=False)
                if metrics_server is not None:
                    await metrics_server.stop()
                await notify_client.aclose()
        return 0

    def _wake_for_next_work(self, scheduler: AsyncIOScheduler) -> None:
        """Move the scan job to the earliest instant there is work (``next_wake``)."""
        settings = self.config.scheduler
        try:
            with Session(self.engine) as session:
                work_at = store.next_work_at(session, settings.lease)
        except OperationalError:
            return  # the tick after scan_interval tries again
        now = self.clock.now()
        wake = next_wake(now, work_at, settings.scan_interval)
        # APScheduler runs on the wall clock; the injected clock only says how long to wait.
        scheduler.modify_job("scan", next_run_time=dt.datetime.now(dt.UTC) + (wake - now))
        log.debug(
            "next pass",
            extra={"action": "daemon:wake", "at": wake.isoformat(),
                   "work_at": work_at.isoformat() if work_at else None},
        )

    async def _heartbeat(self) -> None:
        """Tell systemd we are alive while passes keep succeeding or one is in hand.

        A pass in hand counts: a long one (a slow provider, a big backlog) is work, not a
        hang; its provider calls are bounded by their timeouts, and this job runs on the
        same event loop, so a process that is frozen or stuck in a blocking call sends
        nothing either way. Measured in a booted systemd (tests/deploy/
        test_systemd_container.py): without this, a pass longer than 3 x scan_interval
        had the daemon killed by WatchdogSec= in the middle of its captures.
        """
        interval = self.config.scheduler.scan_interval * 3
        if (self.in_pass or self.last_ok is None
                or self.clock.now() - self.last_ok <= interval):
            systemd.notify("WATCHDOG=1")
