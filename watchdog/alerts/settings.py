"""The ``[alerts]`` table: sinks, routing, sender timing, health thresholds.

Secrets (PagerDuty routing key, Slack webhook URL, webhook signing secret) come from
the environment or ``$CREDENTIALS_DIRECTORY``, never from the file. Every problem is
one ConfigError naming the key, e.g. ``alerts.sinks[1].url`` (``watchdog.config_tables``).

    [alerts]
    interval = "30s"          # how often the daemon's sender job runs
    timeout = "5s"            # per sink call
    resend_interval = "5m"    # re-post firing alerts to Alertmanager
    [[alerts.sinks]]
    type = "alertmanager"     # alertmanager | pagerduty | slack | webhook
    url = "http://127.0.0.1:9093"
    min_severity = "warning"  # warning | critical
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watchdog.alerts.outbox import Severity
from watchdog.config_tables import duration, only_keys, positive_integer, string
from watchdog.errors import ConfigError
from watchdog.secrets import Secret, read_secret

PAGERDUTY_URL = "https://events.pagerduty.com"
LOG_SINK = "log"
DEFAULT_SECRET_VARIABLES = {
    "pagerduty": "WATCHDOG_PAGERDUTY_ROUTING_KEY",
    "slack": "WATCHDOG_SLACK_WEBHOOK_URL",
    "webhook": "WATCHDOG_WEBHOOK_SECRET",
}
SEVERITY_RANK = {Severity.WARNING: 1, Severity.CRITICAL: 2}


class SinkType(enum.StrEnum):
    """Where an alert can go."""

    ALERTMANAGER = "alertmanager"
    PAGERDUTY = "pagerduty"
    SLACK = "slack"
    WEBHOOK = "webhook"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """One configured sink. ``secret`` is the routing key / webhook URL / signing secret."""

    name: str
    type: SinkType
    min_severity: Severity = Severity.WARNING
    url: str | None = None
    secret: Secret | None = None
    source: str = "expiry-watchdog"  # PagerDuty payload.source

    def accepts(self, severity: str) -> bool:
        """True when an alert of ``severity`` is routed to this sink."""
        return SEVERITY_RANK[Severity(severity)] >= SEVERITY_RANK[self.min_severity]


LOG_SINK_SETTINGS = SinkSettings(name=LOG_SINK, type=SinkType.LOG)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The validated ``[alerts]`` table. The log sink is always on."""

    sinks: tuple[SinkSettings, ...] = (LOG_SINK_SETTINGS,)
    interval: dt.timedelta = dt.timedelta(seconds=30)
    timeout: dt.timedelta = dt.timedelta(seconds=5)
    resend_interval: dt.timedelta = dt.timedelta(minutes=5)
    backoff: dt.timedelta = dt.timedelta(seconds=15)
    max_backoff: dt.timedelta = dt.timedelta(minutes=10)
    give_up_after: dt.timedelta = dt.timedelta(hours=24)
    claim: dt.timedelta = dt.timedelta(minutes=2)
    batch_size: int = 200
    stale_warning: dt.timedelta = dt.timedelta(minutes=15)
    stale_critical: dt.timedelta = dt.timedelta(hours=1)
    provider_window: dt.timedelta = dt.timedelta(minutes=15)
    provider_error_rate: float = 0.5
    provider_min_calls: int = 5

    def sink(self, name: str) -> SinkSettings | None:
        """The sink called ``name``, if configured."""
        return next((s for s in self.sinks if s.name == name), None)

    def routed(self, severity: str) -> list[SinkSettings]:
        """Sinks that take a trigger of ``severity``."""
        return [s for s in self.sinks if s.accepts(severity)]


_DURATIONS = (
    "interval", "timeout", "resend_interval", "backoff", "max_backoff", "give_up_after", "claim",
    "stale_warning", "stale_critical", "provider_window",
)
_TOP = {*_DURATIONS, "sinks", "batch_size", "provider_error_rate", "provider_min_calls"}
_SINK_KEYS = {"type", "name", "url", "min_severity", "secret_env", "source"}


def parse_alert_settings(
    table: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> AlertSettings:
    """Validate the ``[alerts]`` table; raise ConfigError naming the offending key."""
    env = os.environ if environ is None else environ
    if not isinstance(table, Mapping):
        raise ConfigError(f"alerts: must be a table, got {type(table).__name__}")
    only_keys(table, _TOP, "alerts")
    base = AlertSettings()
    values: dict[str, Any] = {
        key: duration(table, key, "alerts", getattr(base, key), example="30s")
        for key in _DURATIONS
    }
    for key in ("interval", "timeout", "backoff", "max_backoff", "claim"):
        if values[key] <= dt.timedelta(0):
            raise ConfigError(f"alerts.{key}: must be positive")
    if values["stale_warning"] > values["stale_critical"]:
        raise ConfigError("alerts.stale_warning: must not exceed alerts.stale_critical")
    values["batch_size"] = positive_integer(table, "batch_size", "alerts", base.batch_size)
    values["provider_min_calls"] = positive_integer(
        table, "provider_min_calls", "alerts", base.provider_min_calls)
    rate = table.get("provider_error_rate", base.provider_error_rate)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise ConfigError("alerts.provider_error_rate: must be a number in (0, 1]")
    values["provider_error_rate"] = float(rate)
    raw_sinks = table.get("sinks", [])
    if not isinstance(raw_sinks, list):
        raise ConfigError("alerts.sinks: must be an array of tables ([[alerts.sinks]])")
    sinks = [LOG_SINK_SETTINGS]
    for index, raw in enumerate(raw_sinks):
        sink = _sink(raw, f"alerts.sinks[{index}]", env)
        if any(s.name == sink.name for s in sinks):
            raise ConfigError(
                f"alerts.sinks[{index}].name: {sink.name!r} is used twice; give each sink a "
                "unique name"
            )
        sinks.append(sink)
    return AlertSettings(sinks=tuple(sinks), **values)


def alert_settings_of(config: Any) -> AlertSettings:
    """The alert settings of a Config: its ``alerts`` field, else parsed from the raw TOML."""
    settings = getattr(config, "alerts", None)
    if isinstance(settings, AlertSettings):
        return settings
    raw = getattr(config, "raw", {}) or {}
    return parse_alert_settings(raw.get("alerts", {}))


def _sink(raw: Any, where: str, env: Mapping[str, str]) -> SinkSettings:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    only_keys(raw, _SINK_KEYS, where)
    kind = raw.get("type")
    try:
        sink_type = SinkType(str(kind))
    except ValueError:
        raise ConfigError(
            f"{where}.type: {kind!r} is not one of alertmanager, pagerduty, slack, webhook"
        ) from None
    if sink_type is SinkType.LOG:
        raise ConfigError(f"{where}.type: the log sink is always on; do not configure it")
    name = raw.get("name", sink_type.value)
    if not isinstance(name, str) or not name or len(name) > 40 or ":" in name:
        raise ConfigError(f"{where}.name: must be a non-empty string of at most 40 characters "
                          "without ':'")
    severity = raw.get("min_severity", "warning")
    try:
        min_severity = Severity(severity)
    except ValueError:
        raise ConfigError(
            f"{where}.min_severity: {severity!r} is not one of warning, critical"
        ) from None
    url = raw.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}.url: {url!r} is not an http(s) URL")
    if sink_type in (SinkType.ALERTMANAGER, SinkType.WEBHOOK) and url is None:
        raise ConfigError(f"{where}.url: required for a {sink_type} sink")
    if sink_type is SinkType.SLACK and url is not None:
        raise ConfigError(f"{where}.url: a Slack webhook URL is a secret; put it in "
                          f"${DEFAULT_SECRET_VARIABLES['slack']} instead of the file")
    if sink_type is SinkType.PAGERDUTY and url is None:
        url = PAGERDUTY_URL
    source = string(raw, "source", where, "expiry-watchdog")
    secret: Secret | None = None
    if sink_type.value in DEFAULT_SECRET_VARIABLES:
        variable = raw.get("secret_env", DEFAULT_SECRET_VARIABLES[sink_type.value])
        if not isinstance(variable, str) or not variable:
            raise ConfigError(f"{where}.secret_env: must name an environment variable")
        secret = read_secret(variable, env)
        if not secret:
            raise ConfigError(
                f"{where}: {variable} is not set; put it in the environment or in "
                f"$CREDENTIALS_DIRECTORY/{variable}"
            )
        if sink_type is SinkType.SLACK and not secret.reveal().startswith(("http://", "https://")):
            raise ConfigError(f"{where}: {variable} is not an http(s) URL")
    elif "secret_env" in raw:
        raise ConfigError(f"{where}.secret_env: a {sink_type} sink takes no secret")
    return SinkSettings(
        name=name, type=sink_type, min_severity=min_severity,
        url=url.rstrip("/") if url else None, secret=secret, source=source,
    )


__all__ = [
    "LOG_SINK", "AlertSettings", "SinkSettings", "SinkType", "alert_settings_of",
    "parse_alert_settings",
]
