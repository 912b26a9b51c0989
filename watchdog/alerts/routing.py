"""Which sink gets what: triggers by severity, resolves and acks where the trigger went."""

from __future__ import annotations

from collections.abc import Iterable

from watchdog.alerts.alertmanager import AlertmanagerSink
from watchdog.alerts.base import Sink
from watchdog.alerts.log import LogSink
from watchdog.alerts.message import Event
from watchdog.alerts.outbox import AlertStatus
from watchdog.alerts.pagerduty import PagerDutySink
from watchdog.alerts.settings import LOG_SINK, AlertSettings, SinkSettings, SinkType
from watchdog.alerts.slack import SlackSink
from watchdog.alerts.webhook import WebhookSink


def event_for(status: str) -> Event:
    """What to tell the sinks about an alert in ``status``."""
    if status == AlertStatus.FIRING.value:
        return Event.TRIGGER
    if status == AlertStatus.ACKNOWLEDGED.value:
        return Event.ACKNOWLEDGE
    return Event.RESOLVE


def targets(
    settings: AlertSettings, event: Event, severity: str, earlier_sinks: Iterable[str]
) -> list[str]:
    """Sink names for one alert revision.

    A trigger goes to every sink whose ``min_severity`` it meets; a resolve or
    acknowledgement goes to the sinks that were told about the alert before (and
    to the log), so nobody hears "resolved" about something they never saw.
    """
    if event is Event.TRIGGER:
        return [s.name for s in settings.routed(severity)]
    known = {s.name for s in settings.sinks}
    names = {LOG_SINK} | {name for name in earlier_sinks if name in known}
    return sorted(names)


def build_sink(settings: SinkSettings, timeout: float) -> Sink:
    """The sink object for one configured sink."""
    if settings.type is SinkType.ALERTMANAGER:
        return AlertmanagerSink(settings, timeout)
    if settings.type is SinkType.PAGERDUTY:
        return PagerDutySink(settings, timeout)
    if settings.type is SinkType.SLACK:
        return SlackSink(settings, timeout)
    if settings.type is SinkType.WEBHOOK:
        return WebhookSink(settings, timeout)
    return LogSink(settings)


def build_sinks(settings: AlertSettings) -> dict[str, Sink]:
    """Every configured sink by name (the log sink included)."""
    timeout = settings.timeout.total_seconds()
    return {s.name: build_sink(s, timeout) for s in settings.sinks}
