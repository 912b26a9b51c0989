"""``watchdog_stale`` and ``provider_unhealthy``: raised from the database, resolved when clear."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from tests.support.alerts import Receiver, deliver
from watchdog import audit
from watchdog.alerts.health import evaluate_providers, evaluate_staleness
from watchdog.alerts.outbox import Severity
from watchdog.alerts.settings import parse_alert_settings
from watchdog.audit import AuditEvent
from watchdog.clock import FrozenClock
from watchdog.db import transaction
from watchdog.models import Alert

from .test_check import _pass

SETTINGS = parse_alert_settings({}, environ={})


def _alert(engine: Engine, kind: str) -> Alert | None:
    with transaction(engine) as session:
        return session.scalars(select(Alert).where(Alert.kind == kind)).one_or_none()


def test_watchdog_stale_warns_escalates_and_resolves(engine: Engine, clock: FrozenClock,
                                                     receiver: Receiver) -> None:
    assert evaluate_staleness(engine, SETTINGS, clock) is None  # nothing ever ran: no opinion
    _pass(engine, clock.now())
    clock.advance(dt.timedelta(minutes=15))
    assert evaluate_staleness(engine, SETTINGS, clock) is None  # exactly at the threshold
    clock.advance(dt.timedelta(seconds=1))
    assert evaluate_staleness(engine, SETTINGS, clock) is Severity.WARNING
    alert = _alert(engine, "watchdog_stale")
    assert alert is not None
    assert alert.dedup_key == "expiry-watchdog:watchdog_stale:provider:watchdog"
    assert alert.severity == "warning" and alert.revision == 1
    evaluate_staleness(engine, SETTINGS, clock)  # same condition: no new revision
    assert (_alert(engine, "watchdog_stale") or alert).revision == 1

    clock.advance(dt.timedelta(minutes=45))
    assert evaluate_staleness(engine, SETTINGS, clock) is Severity.CRITICAL
    settings = parse_alert_settings({"sinks": [{"type": "webhook", "url": f"{receiver.url}/h"}]},
                                    environ={"WATCHDOG_WEBHOOK_SECRET": "s3cr3t"})
    deliver(engine, settings, clock)
    (hook,) = receiver.at("/h")
    assert hook.json()["severity"] == "critical"
    assert "no successful scan pass" in hook.json()["summary"]

    _pass(engine, clock.now())
    assert evaluate_staleness(engine, SETTINGS, clock) is None
    resolved = _alert(engine, "watchdog_stale")
    assert resolved is not None and resolved.status == "resolved"
    deliver(engine, settings, clock)
    assert receiver.at("/h")[-1].json()["event"] == "resolve"


def test_failed_passes_only_count_from_the_first_try(engine: Engine, clock: FrozenClock) -> None:
    _pass(engine, clock.now(), ok=False)
    clock.advance(dt.timedelta(hours=2))
    assert evaluate_staleness(engine, SETTINGS, clock) is Severity.CRITICAL


def _calls(engine: Engine, clock: FrozenClock, provider: str, outcomes: list[str]) -> None:
    with transaction(engine) as session:
        audit.append(session, [
            AuditEvent(event="scan:status:read", actor="w1", authorization_id=n,
                       provider=provider, outcome=outcome)
            for n, outcome in enumerate(outcomes)
        ], clock.now())


def test_provider_unhealthy_from_recent_audit_rows(engine: Engine, clock: FrozenClock) -> None:
    _calls(engine, clock, "flitt", ["retryable", "unknown", "retryable", "succeeded"])
    _calls(engine, clock, "smartpay", ["retryable"] * 2 + ["succeeded"] * 8)
    assert evaluate_providers(engine, SETTINGS, clock) == {}  # flitt: under provider_min_calls
    _calls(engine, clock, "flitt", ["unknown"])
    assert evaluate_providers(engine, SETTINGS, clock) == {"flitt": Severity.WARNING}
    alert = _alert(engine, "provider_unhealthy")
    assert alert is not None
    assert alert.dedup_key == "expiry-watchdog:provider_unhealthy:provider:flitt"
    assert "4 of 5 calls failed" in alert.summary

    clock.advance(dt.timedelta(minutes=16))  # the failures left the window
    _calls(engine, clock, "flitt", ["succeeded"] * 5)
    assert evaluate_providers(engine, SETTINGS, clock) == {}
    resolved = _alert(engine, "provider_unhealthy")
    assert resolved is not None and resolved.status == "resolved"

    _calls(engine, clock, "clearpay", ["retryable"] * 5)
    assert evaluate_providers(engine, SETTINGS, clock) == {"clearpay": Severity.CRITICAL}
