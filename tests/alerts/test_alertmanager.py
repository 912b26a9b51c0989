"""Against a real Prometheus Alertmanager: one alert, escalated, then resolved."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from tests.support.alertmanager import AlertmanagerServer
from tests.support.alerts import Deadline, deliver
from watchdog.alerts.settings import parse_alert_settings
from watchdog.clock import FrozenClock
from watchdog.config import Config

pytestmark = pytest.mark.slow  # a real Alertmanager process per test


def test_deadline_alert_escalates_and_resolves_in_alertmanager(
    engine: Engine, tokyo_config: Config, past_clock: FrozenClock,
    alertmanager: AlertmanagerServer,
) -> None:
    settings = parse_alert_settings(
        {"sinks": [{"type": "alertmanager", "url": alertmanager.url}]}, environ={})
    deadline = Deadline(engine, tokyo_config, past_clock)

    deadline.scan()
    report = deliver(engine, settings, past_clock)
    assert report.sent == 2  # alertmanager + log
    alerts = alertmanager.alerts()
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert["labels"] == {
        "alertname": "deadline_approaching", "severity": "warning",
        "dedup_key": f"expiry-watchdog:deadline_approaching:authorization:{deadline.id}",
        "provider": "clearpay", "authorization_id": str(deadline.id),
        "service": "expiry-watchdog",
    }
    annotations = alert["annotations"]
    assert annotations["order_id"] == "ORD-1"
    assert annotations["reference"] == "REF-77"
    assert "GBP" in annotations["amount_display"]
    assert annotations["deadline_local"].endswith("+09:00")
    assert "capture or cancel" in annotations["next_steps"]
    assert f"Authorization {deadline.id}" in annotations["description"]

    # Delivering again sends nothing new: one alert per (kind, authorization).
    assert deliver(engine, settings, past_clock).sent == 0
    assert len(alertmanager.alerts()) == 1

    deadline.go_critical()
    deliver(engine, settings, past_clock)
    alerts = alertmanager.alerts()
    assert [(a["labels"]["alertname"], a["labels"]["severity"]) for a in alerts] == [
        ("deadline_critical", "critical")]

    # Firing alerts are re-posted so Alertmanager does not time them out.
    past_clock.advance(dt.timedelta(minutes=6))
    assert deliver(engine, settings, past_clock).reposted == 1

    deadline.capture()
    assert deadline.fake.ledger == [("capture", "ORD-1", 1820)]
    deliver(engine, settings, past_clock)
    assert alertmanager.alerts() == []
    past_clock.advance(dt.timedelta(minutes=6))
    assert deliver(engine, settings, past_clock).reposted == 0
