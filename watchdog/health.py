"""Health facts read from the database: the watchdog's own heartbeat, provider error
rates, the Nagios-style ``check`` and the ``/healthz`` ``/readyz`` ``/metrics`` routes.

The alerts raised from these facts (``watchdog_stale``, ``provider_unhealthy``) are
``watchdog.alerts.health``'s; this module only reads and reports.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from watchdog import schema, workers
from watchdog.accounts import DEFAULT_ACCOUNT, label
from watchdog.alerts.outbox import AlertStatus, Severity
from watchdog.alerts.settings import AlertSettings, alert_settings_of
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import DEFAULT_LEASE, Config
from watchdog.db import transaction
from watchdog.durations import format_duration
from watchdog.metrics import CONTENT_TYPE, DEFAULT_METRICS, Metrics, render_metrics
from watchdog.models import Alert, AuditRow, Authorization, Pass
from watchdog.risk import open_states, read_risk

PROVIDER_EVENTS = ("scan:status:read", "scan:capture:outcome", "scan:cancel:outcome")
ERROR_OUTCOMES = ("retryable", "unknown")
AUDIT_SCAN_LIMIT = 50_000  # provider health looks at most this many recent audit rows
AT_RISK_WITHIN = dt.timedelta(hours=48)


# ---------------------------------------------------------------- heartbeat


def last_successful_pass(session: Session) -> dt.datetime | None:
    """When the last successful pass (any worker, daemon or timer) finished."""
    return session.scalar(select(func.max(Pass.finished_at)).where(Pass.ok.is_(True)))


def heartbeat_reference(session: Session) -> dt.datetime | None:
    """Since when the heartbeat counts: the last successful pass, else the first attempt
    (a watchdog that never succeeded is stale from its first try), else None (never ran)."""
    last = last_successful_pass(session)
    if last is not None:
        return last
    return session.scalar(select(func.min(Pass.started_at)))  # never succeeded: since the first try




@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """Calls and failures of one provider in the window."""

    provider: str
    calls: int
    errors: int

    @property
    def error_rate(self) -> float:
        """errors / calls (0 when there were no calls)."""
        return self.errors / self.calls if self.calls else 0.0


def provider_health(session: Session, since: dt.datetime) -> dict[str, ProviderHealth]:
    """Per provider: recent status reads and capture/cancel outcomes, and how many failed
    with no answer (retryable/unknown) — read from the audit trail."""
    top = session.scalar(select(func.max(AuditRow.id))) or 0
    # By merchant account too (issue 19): an outage of one account's credentials or host is
    # that account's alert (subject ``provider/account``; ``provider`` for ``default``).
    rows = session.execute(
        select(AuditRow.provider, Authorization.account, AuditRow.outcome, func.count())
        .select_from(AuditRow)
        .outerjoin(Authorization, Authorization.id == AuditRow.authorization_id)
        .where(AuditRow.id > top - AUDIT_SCAN_LIMIT, AuditRow.recorded_at >= since,
               AuditRow.event.in_(PROVIDER_EVENTS), AuditRow.provider.is_not(None))
        .group_by(AuditRow.provider, Authorization.account, AuditRow.outcome)
    ).all()
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    for name, account, outcome, n in rows:
        assert name is not None
        provider = label(name, account or DEFAULT_ACCOUNT)
        calls[provider] = calls.get(provider, 0) + n
        if outcome in ERROR_OUTCOMES:
            errors[provider] = errors.get(provider, 0) + n
    return {p: ProviderHealth(p, calls[p], errors.get(p, 0)) for p in calls}




# ---------------------------------------------------------------- Nagios check


class CheckCode(enum.IntEnum):
    """Nagios plugin exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass
class CheckResult:
    """One plugin answer: exit code, one status line with perfdata."""

    code: CheckCode
    problems: list[str] = field(default_factory=list)
    perf: dict[str, str] = field(default_factory=dict)
    summary: str = ""

    @property
    def line(self) -> str:
        """``WATCHDOG OK - 12 open, 0 critical | open=12 ...``."""
        text = "; ".join(self.problems) if self.problems else self.summary
        perf = " ".join(f"{k}={v}" for k, v in self.perf.items())
        return f"WATCHDOG {self.code.name} - {text}" + (f" | {perf}" if perf else "")


def nagios_check(engine: Engine, clock: Clock, warning_stale: dt.timedelta,
                 critical_stale: dt.timedelta, config: Config) -> CheckResult:
    """Evaluate the state for ``expiry-watchdog check``; UNKNOWN if the database is unusable.

    The authorizations are judged with ``clock`` and ``config``'s leads (``watchdog.risk``),
    not through the alerts the scanner raised; firing alerts and the pass heartbeat are
    judged too, so the answer is never better than either line of defence says. Workers
    holding rows without a heartbeat within ``config.scheduler.lease`` are named.
    """
    try:
        if not schema.is_at_head(engine):
            return CheckResult(CheckCode.UNKNOWN, [
                "database schema is not at this version's head; run expiry-watchdog db upgrade"])
        return _check(engine, clock.now(), warning_stale, critical_stale, config)
    except Exception as exc:  # noqa: BLE001 - the plugin answers UNKNOWN, never a traceback
        return CheckResult(CheckCode.UNKNOWN, [f"database unreachable: {_why(exc, engine)}"])


def _why(exc: BaseException, engine: Engine) -> str:
    """A database failure as one sentence naming host and port, without the password."""
    from watchdog.dberrors import describe
    from watchdog.logs import scrub

    return scrub(describe(exc, engine.url))


def _check(engine: Engine, now: dt.datetime, warning_stale: dt.timedelta,
           critical_stale: dt.timedelta, config: Config) -> CheckResult:
    with transaction(engine) as session:
        open_count = session.scalar(select(func.count()).where(
            Authorization.state.in_(open_states()))) or 0
        at_risk = session.scalar(select(func.count()).where(
            Authorization.state.in_(open_states()),
            Authorization.deadline <= now + AT_RISK_WITHIN)) or 0
        risk = read_risk(session, now, config)
        firing = dict(session.execute(
            select(Alert.severity, func.count()).where(Alert.status == AlertStatus.FIRING.value)
            .group_by(Alert.severity)).all())
        last = last_successful_pass(session)
        worker_rows = workers.status(session, now, config.scheduler.lease)
    stalled = [w for w in worker_rows if w.stalled and w.held]
    critical = firing.get(Severity.CRITICAL.value, 0)
    warning = firing.get(Severity.WARNING.value, 0)
    age = (now - last) if last is not None else None
    result = CheckResult(CheckCode.OK, summary=f"{open_count} open, {critical} critical")
    crit = risk.critical()
    warn = risk.warning()
    if critical:
        crit.append(f"{critical} critical alerts firing")
    if age is None:
        crit.append("no successful scan pass recorded")
    elif age > critical_stale:
        crit.append(f"last successful pass {format_duration(age)} ago")
    elif age > warning_stale:
        warn.append(f"last successful pass {format_duration(age)} ago")
    if warning:
        warn.append(f"{warning} warning alerts firing")
    for worker in stalled:
        since = (f"no heartbeat for {format_duration(now - worker.heartbeat_at)}"
                 if worker.heartbeat_at is not None else "no heartbeat row")
        warn.append(f"worker {worker.worker} holds {worker.held} rows with {since}")
    if crit:
        result.code, result.problems = CheckCode.CRITICAL, crit + warn
    elif warn:
        result.code, result.problems = CheckCode.WARNING, warn
    age_text = f"{int(age.total_seconds())}s" if age is not None else "U"
    result.perf = {
        "open": str(open_count), "at_risk": str(at_risk), "critical": str(critical),
        "warning": str(warning), "needs_attention": str(risk.needs_attention),
        "past_deadline": str(risk.past_deadline.count),
        "critical_window": str(risk.critical_window.count),
        "alert_window": str(risk.alert_window.count), "confirming": str(risk.confirming.count),
        "expired_unacked": str(risk.expired_unacknowledged.count),
        "last_pass_age": f"{age_text};{int(warning_stale.total_seconds())};"
                         f"{int(critical_stale.total_seconds())}",
        "workers": str(sum(1 for w in worker_rows if not w.stalled)),
        "stalled_workers": str(len(stalled)),
        "rows_held_by_stalled": str(sum(w.held for w in stalled)),
    }
    return result


# ---------------------------------------------------------------- liveness and readiness


def readiness(
    engine: Engine, clock: Clock, max_pass_age: dt.timedelta
) -> tuple[bool, dict[str, Any]]:
    """Database reachable, schema at head, a successful pass within ``max_pass_age``."""
    checks: dict[str, Any] = {}
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - "not ready", with the reason, never a 500
        checks["database"] = f"unreachable: {_why(exc, engine)}"
        return False, checks
    try:
        at_head = schema.is_at_head(engine)
    except Exception as exc:  # noqa: BLE001 - an unreadable version table is "not at head"
        checks["schema"] = f"unreadable: {_why(exc, engine)}"
        return False, checks
    checks["schema"] = "ok" if at_head else "not at head; run expiry-watchdog db upgrade"
    if not at_head:
        return False, checks
    try:
        with transaction(engine) as session:
            last = last_successful_pass(session)
    except Exception as exc:  # noqa: BLE001 - the heartbeat is unreadable: not ready
        checks["heartbeat"] = f"unreadable: {_why(exc, engine)}"
        return False, checks
    if last is None:
        checks["heartbeat"] = "no successful pass yet"
        return False, checks
    age = clock.now() - last
    checks["heartbeat_age_seconds"] = int(age.total_seconds())
    checks["heartbeat"] = "ok" if age <= max_pass_age else (
        f"stale: last successful pass {format_duration(age)} ago")
    return age <= max_pass_age, checks


def build_router(engine: Engine, settings: AlertSettings | None = None,
                 clock: Clock = SYSTEM_CLOCK, metrics: Metrics = DEFAULT_METRICS,
                 lease: dt.timedelta = DEFAULT_LEASE, *,
                 require_token: bool = False) -> APIRouter:
    """``/metrics``, ``/healthz`` (alive) and ``/readyz`` for mounting in the API app.

    ``lease`` tells a stalled worker (no heartbeat within it) from a live one. With
    ``require_token`` (``[metrics] require_token``), ``/metrics`` answers only a request
    bearing an active API token (read scope is enough); the probes stay open.
    """
    max_age = (settings or AlertSettings()).stale_critical
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        if require_token and not _bearer_ok(engine, request, clock):
            return Response('{"errors":[{"field":"authorization","reason":"a valid bearer '
                            'token is required"}]}', status_code=401,
                            media_type="application/json",
                            headers={"WWW-Authenticate": "Bearer"})
        return Response(render_metrics(engine, metrics, clock, lease), media_type=CONTENT_TYPE)

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/readyz")
    def readyz() -> Response:
        ready, checks = readiness(engine, clock, max_age)
        body = json.dumps({"status": "ready" if ready else "not ready", "checks": checks})
        return Response(body, status_code=200 if ready else 503, media_type="application/json")

    return router


def _bearer_ok(engine: Engine, request: Request, clock: Clock) -> bool:
    """True when the request carries an active API token."""
    from watchdog import tokens

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return tokens.authenticate(engine, token.strip(), clock.now()) is not None


def metrics_token_required(config: Any) -> bool:
    """``[metrics] require_token`` of a Config (False when it has none)."""
    return bool(getattr(getattr(config, "metrics", None), "require_token", False))


def make_metrics_app(engine: Engine, config: Any, clock: Clock = SYSTEM_CLOCK,
                     metrics: Metrics = DEFAULT_METRICS) -> FastAPI:
    """A standalone ASGI app with the three routes (the daemon serves it on ``[metrics]``)."""
    app = FastAPI(title="expiry-watchdog metrics", docs_url=None, redoc_url=None,
                  openapi_url=None)
    lease = config.scheduler.lease if config is not None else DEFAULT_LEASE
    app.include_router(build_router(engine, alert_settings_of(config), clock, metrics, lease,
                                    require_token=metrics_token_required(config)))
    return app
