"""Prometheus metrics on their own registry: database state read at scrape time, plus
in-process counters the scan, the provider adapters and the sender increment.

Series (all prefixed ``expiry_watchdog_``):

* ``open_authorizations{provider,currency,bucket}`` and
  ``money_at_risk_minor_units{provider,account,currency,bucket}`` — authorizations not yet
  final, by time left to the deadline (``overdue``, ``lt_6h``, ``lt_24h``, ``lt_48h``,
  ``lt_7d``, ``later``); money is the uncaptured amount in minor units, per merchant
  account (``account`` is the configured account name, ``default`` for a provider without
  ``accounts``): two accounts of one provider are two merchants, so a dashboard sums
  ``by (provider, currency)`` for the provider's total, never across currencies;
* ``authorizations{state}``; ``alerts_firing{kind,severity}``;
  ``alert_deliveries_pending{sink}``;
* ``last_successful_pass_timestamp_seconds`` (from the ``passes`` table, so timer mode
  counts too) — the dead-man's switch; ``database_up``;
* ``provider_requests_total{provider,operation,outcome}``,
  ``provider_request_duration_seconds{provider,operation}``,
  ``actions_total{provider,kind,outcome}`` (captures and cancels),
  ``pass_duration_seconds``, ``pass_steps_total{step}``, ``pass_errors_total``,
  ``alerts_sent_total{sink,outcome}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import time
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from watchdog import workers
from watchdog.accounts import DEFAULT_ACCOUNT
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import DEFAULT_LEASE
from watchdog.db import transaction
from watchdog.domain import FINAL_STATES, ProviderName, State
from watchdog.models import Alert, AlertDelivery, Authorization, Pass
from watchdog.providers.base import AuthRef, ProviderAdapter, ProviderResult, ProviderRules

if TYPE_CHECKING:
    from watchdog.scan import PassReport

log = logging.getLogger("watchdog.metrics")

PREFIX = "expiry_watchdog"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS: tuple[tuple[str, dt.timedelta | None], ...] = (
    ("lt_6h", dt.timedelta(hours=6)),
    ("lt_24h", dt.timedelta(hours=24)),
    ("lt_48h", dt.timedelta(hours=48)),
    ("lt_7d", dt.timedelta(days=7)),
    ("later", None),
)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 90, 120)
PASS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """In-process counters and histograms on a private registry (never the global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.provider_requests = Counter(
            f"{PREFIX}_provider_requests", "Provider calls by operation and outcome.",
            ["provider", "operation", "outcome"], registry=r)
        self.provider_latency = Histogram(
            f"{PREFIX}_provider_request_duration_seconds", "Provider call latency.",
            ["provider", "operation"], buckets=LATENCY_BUCKETS, registry=r)
        self.actions = Counter(
            f"{PREFIX}_actions", "Capture and cancel requests by outcome (did money move?).",
            ["provider", "kind", "outcome"], registry=r)
        # The same calls by merchant account (issue 19): a family of its own, so the
        # provider-level series keep their labels.
        self.account_requests = Counter(
            f"{PREFIX}_account_provider_requests",
            "Provider calls by merchant account, operation and outcome.",
            ["provider", "account", "operation", "outcome"], registry=r)
        self.pass_duration = Histogram(
            f"{PREFIX}_pass_duration_seconds", "Duration of scan passes in this process.",
            buckets=PASS_BUCKETS, registry=r)
        self.pass_steps = Counter(
            f"{PREFIX}_pass_steps", "Steps executed by scan passes.", ["step"], registry=r)
        self.pass_errors = Counter(
            f"{PREFIX}_pass_errors", "Rows that failed inside a pass.", registry=r)
        self.audit_last_id = Gauge(
            f"{PREFIX}_audit_checkpoint_last_id", "Audit chain checkpoint: id of the head row.",
            registry=r)
        self.audit_rows = Gauge(
            f"{PREFIX}_audit_checkpoint_rows", "Audit chain checkpoint: rows in the chain.",
            registry=r)
        self.audit_head_prefix = Gauge(
            f"{PREFIX}_audit_checkpoint_head_prefix",
            "Audit chain checkpoint: the head MAC's first 12 hex digits as an integer "
            "(the full MAC is in the checkpoint file and the pass's log line).", registry=r)
        self.audit_checkpoint_time = Gauge(
            f"{PREFIX}_audit_checkpoint_timestamp_seconds",
            "When the last audit checkpoint was written.", registry=r)
        self.audit_checkpoint_refused = Counter(
            f"{PREFIX}_audit_checkpoint_refused",
            "Checkpoints refused because the table no longer held the previous one.",
            registry=r)
        self.alerts_sent = Counter(
            f"{PREFIX}_alerts_sent", "Alert delivery attempts by sink and outcome.",
            ["sink", "outcome"], registry=r)

    def observe_pass(self, report: PassReport) -> None:
        """Record one finished pass (the scheduler calls this after ``run_pass``)."""
        if report.finished_at is not None:
            self.pass_duration.observe(
                max((report.finished_at - report.started_at).total_seconds(), 0.0))
        for step, count in report.steps.items():
            self.pass_steps.labels(step).inc(count)
        if report.errors:
            self.pass_errors.inc(report.errors)
        if report.checkpoint is not None:
            cp = report.checkpoint
            self.audit_last_id.set(cp.last_id)
            self.audit_rows.set(cp.rows)
            self.audit_head_prefix.set(int(cp.head[:12], 16))
            self.audit_checkpoint_time.set(dt.datetime.fromisoformat(cp.at).timestamp())
        if report.audit_problem is not None:
            self.audit_checkpoint_refused.inc()

    def alert_delivery(self, sink: str, outcome: str) -> None:
        """Count one delivery attempt."""
        self.alerts_sent.labels(sink, outcome).inc()

    def provider_call(self, provider: str, operation: str, outcome: str, seconds: float,
                      account: str = "default") -> None:
        """Count and time one provider call."""
        self.provider_requests.labels(provider, operation, outcome).inc()
        self.account_requests.labels(provider, account, operation, outcome).inc()
        self.provider_latency.labels(provider, operation).observe(seconds)
        if operation in ("capture", "cancel"):
            self.actions.labels(provider, operation, outcome).inc()


DEFAULT_METRICS = Metrics()


class MeteredAdapter:
    """Wraps a ProviderAdapter: times every call and counts outcomes (and exceptions)."""

    def __init__(self, inner: ProviderAdapter, metrics: Metrics = DEFAULT_METRICS,
                 account: str = "default") -> None:
        self.inner = inner
        self.metrics = metrics
        self.account = account

    @property
    def name(self) -> ProviderName:
        """The wrapped provider."""
        return self.inner.name

    @property
    def rules(self) -> ProviderRules:
        """The wrapped provider's rules."""
        return self.inner.rules

    async def _timed(self, operation: str, call: Awaitable[ProviderResult]) -> ProviderResult:
        started = time.perf_counter()
        try:
            result = await call
        except BaseException:
            self.metrics.provider_call(self.name.value, operation, "exception",
                                       time.perf_counter() - started, self.account)
            raise
        self.metrics.provider_call(self.name.value, operation, result.outcome.value,
                                   time.perf_counter() - started, self.account)
        return result

    async def status(self, ref: AuthRef) -> ProviderResult:
        """Timed ``status``."""
        return await self._timed("status", self.inner.status(ref))

    async def capture(self, ref: AuthRef, amount: int, idempotency_key: str, *,
                      final: bool) -> ProviderResult:
        """Timed ``capture``."""
        return await self._timed(
            "capture", self.inner.capture(ref, amount, idempotency_key, final=final))

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """Timed ``cancel``."""
        return await self._timed("cancel", self.inner.cancel(ref, idempotency_key))

    async def check(self) -> ProviderResult:
        """Timed ``check``."""
        return await self._timed("check", self.inner.check())


class DatabaseCollector(Collector):
    """Reads the state at scrape time: a few GROUP BY queries on indexed columns."""

    def __init__(self, engine: Engine, clock: Clock = SYSTEM_CLOCK,
                 lease: dt.timedelta = DEFAULT_LEASE) -> None:
        self.engine = engine
        self.clock = clock
        self.lease = lease

    def collect(self) -> Iterator[Metric]:
        """Yield the database-backed families; ``database_up`` 0 if the database fails."""
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 if the last scrape read the database.")
        try:
            families = list(self._families(self.clock.now()))
        except SQLAlchemyError as exc:
            log.warning("metrics scrape could not read the database",
                        extra={"action": "metrics:db_error", "error": str(exc).splitlines()[0]})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, now: dt.datetime) -> Iterator[Metric]:
        open_states = [s.value for s in State if s not in FINAL_STATES]
        whens = [(Authorization.deadline <= now, "overdue")]
        whens += [(Authorization.deadline <= now + lead, name)
                  for name, lead in BUCKETS if lead is not None]
        bucket = case(*whens, else_="later")
        with transaction(self.engine) as session:
            risk_rows = session.execute(
                select(Authorization.provider, Authorization.account, Authorization.currency,
                       bucket, func.count(),
                       func.sum(Authorization.amount - Authorization.captured_amount))
                .where(Authorization.state.in_(open_states))
                .group_by(Authorization.provider, Authorization.account,
                          Authorization.currency, bucket)
            ).all()
            state_rows = dict(session.execute(
                select(Authorization.state, func.count()).group_by(Authorization.state)
            ).all())
            alert_rows = session.execute(
                select(Alert.kind, Alert.severity, func.count())
                .where(Alert.status == "firing").group_by(Alert.kind, Alert.severity)
            ).all()
            pending_rows = session.execute(
                select(AlertDelivery.sink, func.count()).where(AlertDelivery.status == "pending")
                .group_by(AlertDelivery.sink)
            ).all()
            last_pass = session.scalar(
                select(func.max(Pass.finished_at)).where(Pass.ok.is_(True))
            )
            worker_rows = workers.status(session, now, self.lease)
        count = GaugeMetricFamily(
            f"{PREFIX}_open_authorizations",
            "Authorizations not yet captured, cancelled or expired, by time to deadline.",
            labels=["provider", "currency", "bucket"])
        money = GaugeMetricFamily(
            f"{PREFIX}_money_at_risk_minor_units",
            "Uncaptured amount of open authorizations in minor units, by merchant account "
            "and time to deadline.",
            labels=["provider", "account", "currency", "bucket"])
        # open_authorizations keeps its labels: the accounts' counts add up per provider.
        counts: dict[tuple[str, str, str], int] = {}
        for provider, account, currency, name, n, amount in risk_rows:
            key = (provider, currency, str(name))
            counts[key] = counts.get(key, 0) + n
            money.add_metric([provider, account or DEFAULT_ACCOUNT, currency, str(name)],
                             int(amount or 0))
        for labels, n in counts.items():
            count.add_metric(list(labels), n)
        yield count
        yield money
        states = GaugeMetricFamily(f"{PREFIX}_authorizations", "Authorizations by state.",
                                   labels=["state"])
        for state in State:
            states.add_metric([state.value], state_rows.get(state.value, 0))
        yield states
        firing = GaugeMetricFamily(f"{PREFIX}_alerts_firing",
                                   "Alerts firing (not acknowledged or resolved).",
                                   labels=["kind", "severity"])
        for kind, severity, n in alert_rows:
            firing.add_metric([kind, severity], n)
        yield firing
        pending = GaugeMetricFamily(f"{PREFIX}_alert_deliveries_pending",
                                    "Alert deliveries waiting for (another) attempt.",
                                    labels=["sink"])
        for sink, n in pending_rows:
            pending.add_metric([sink], n)
        yield pending
        yield from _worker_families(worker_rows)
        if last_pass is not None:
            heartbeat = GaugeMetricFamily(
                f"{PREFIX}_last_successful_pass_timestamp_seconds",
                "Unix time when the last successful scan pass finished (any worker).")
            heartbeat.add_metric([], last_pass.timestamp())
            yield heartbeat


def _worker_families(rows: list[workers.WorkerStatus]) -> Iterator[Metric]:
    """Each worker's last heartbeat and the rows it holds; the stalled ones holding rows."""
    beat = GaugeMetricFamily(
        f"{PREFIX}_worker_heartbeat_timestamp_seconds",
        "Unix time of each worker's last heartbeat (renewed every third of a lease).",
        labels=["worker"])
    held = GaugeMetricFamily(
        f"{PREFIX}_worker_rows_held", "Authorizations leased to each worker right now.",
        labels=["worker"])
    for row in rows:
        if row.heartbeat_at is not None:
            beat.add_metric([row.worker], row.heartbeat_at.timestamp())
        held.add_metric([row.worker], row.held)
    stalled = [row for row in rows if row.stalled and row.held]
    stalled_workers = GaugeMetricFamily(
        f"{PREFIX}_stalled_workers",
        "Workers holding rows without a heartbeat within one lease (their rows are free to "
        "claim once the lease ran out; a live worker's next pass takes them).")
    stalled_workers.add_metric([], len(stalled))
    stalled_rows = GaugeMetricFamily(
        f"{PREFIX}_rows_held_by_stalled_workers",
        "Authorizations leased to workers that stopped heartbeating.")
    stalled_rows.add_metric([], sum(row.held for row in stalled))
    yield from (beat, held, stalled_workers, stalled_rows)


def render_metrics(engine: Engine, metrics: Metrics = DEFAULT_METRICS,
                   clock: Clock = SYSTEM_CLOCK,
                   lease: dt.timedelta = DEFAULT_LEASE) -> bytes:
    """The exposition text: database state plus this process's counters."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine, clock, lease))
    return generate_latest(registry) + generate_latest(metrics.registry)


class _QuietServer:
    """uvicorn without its own signal handling (the daemon owns SIGTERM/SIGINT)."""

    @staticmethod
    def build(app: Any, host: str, port: int) -> Any:
        import contextlib

        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                     access_log=False, lifespan="off"))


class MetricsServer:
    """Serves ``watchdog.health.make_metrics_app`` on ``[metrics] host:port`` in the daemon loop.

        server = MetricsServer(app, "127.0.0.1", 9787)
        await server.start()      # OSError when the port is taken
        ...
        await server.stop()
    """

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.host, self.requested_port = host, port
        self._server = _QuietServer.build(app, host, port)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._socket is None:
            return self.requested_port
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Bind (OSError if the port is taken), then serve in a task."""
        self._socket = socket.create_server((self.host, self.requested_port), reuse_port=False)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        await asyncio.sleep(0)  # connections wait in the listen backlog until it accepts

    async def stop(self) -> None:
        """Stop serving and wait for the server task."""
        self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
