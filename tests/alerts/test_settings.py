"""The ``[alerts]`` and ``[metrics]`` tables: defaults, routing, and errors naming the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from watchdog.alerts.message import Event
from watchdog.alerts.routing import targets
from watchdog.alerts.settings import parse_alert_settings
from watchdog.config import MetricsSettings, parse_metrics_settings
from watchdog.errors import ConfigError

ENV = {"WATCHDOG_PAGERDUTY_ROUTING_KEY": "key", "WATCHDOG_SLACK_WEBHOOK_URL": "https://hooks/x",
       "WATCHDOG_WEBHOOK_SECRET": "s"}


def test_defaults_have_the_log_sink_only() -> None:
    settings = parse_alert_settings({}, environ={})
    assert [s.name for s in settings.sinks] == ["log"]
    assert settings.resend_interval == dt.timedelta(minutes=5)
    assert parse_metrics_settings({}) == MetricsSettings("127.0.0.1", 9787, True)


def test_routing_by_severity_and_resolves_where_triggers_went() -> None:
    settings = parse_alert_settings({"sinks": [
        {"type": "pagerduty", "min_severity": "critical"},
        {"type": "slack"},
        {"type": "alertmanager", "url": "http://am:9093/"},
    ]}, environ=ENV)
    assert settings.sink("pagerduty") is not None
    assert (settings.sink("pagerduty") or settings.sinks[0]).url == "https://events.pagerduty.com"
    assert (settings.sink("alertmanager") or settings.sinks[0]).url == "http://am:9093"
    assert targets(settings, Event.TRIGGER, "warning", []) == ["log", "slack", "alertmanager"]
    assert targets(settings, Event.TRIGGER, "critical", []) == [
        "log", "pagerduty", "slack", "alertmanager"]
    assert targets(settings, Event.RESOLVE, "critical", ["slack", "gone"]) == ["log", "slack"]


def test_secret_from_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "WATCHDOG_PAGERDUTY_ROUTING_KEY").write_text("from-file\n")
    settings = parse_alert_settings({"sinks": [{"type": "pagerduty"}]},
                                    environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    secret = (settings.sink("pagerduty") or settings.sinks[0]).secret
    assert secret is not None and secret.reveal() == "from-file"
    assert "from-file" not in repr(settings)


@pytest.mark.parametrize(("table", "message"), [
    ({"sinks": [{"type": "slack"}, {"type": "webhook", "url": "ftp://x"}]},
     "alerts.sinks[1].url: 'ftp://x' is not an http(s) URL"),
    ({"sinks": [{"type": "webhook"}]}, "alerts.sinks[0].url: required for a webhook sink"),
    ({"sinks": [{"type": "sms"}]}, "alerts.sinks[0].type: 'sms' is not one of"),
    ({"sinks": [{"type": "slack", "min_severity": "info"}]},
     "alerts.sinks[0].min_severity: 'info' is not one of warning, critical"),
    ({"sinks": [{"type": "slack", "url": "https://hooks/x"}]},
     "alerts.sinks[0].url: a Slack webhook URL is a secret"),
    ({"sinks": [{"type": "slack"}, {"type": "slack"}]}, "alerts.sinks[1].name: 'slack' is used"),
    ({"sinks": [{"type": "slack", "colour": "red"}]}, "alerts.sinks[0].colour: unknown key"),
    ({"timeout": "soon"}, "alerts.timeout: 'soon' is not a duration"),
    ({"timeout": 5}, "alerts.timeout: write durations as strings"),
    ({"provider_error_rate": 2}, "alerts.provider_error_rate: must be a number in (0, 1]"),
    ({"stale_warning": "2h"}, "alerts.stale_warning: must not exceed alerts.stale_critical"),
    ({"sinks": {"type": "slack"}}, "alerts.sinks: must be an array of tables"),
])
def test_errors_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_alert_settings(table, environ=ENV)
    assert str(info.value).startswith(message)


def test_missing_secret_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"alerts.sinks\[0\]: WATCHDOG_WEBHOOK_SECRET is not set"):
        parse_alert_settings({"sinks": [{"type": "webhook", "url": "http://h"}]}, environ={})
    with pytest.raises(ConfigError, match=r"alerts.sinks\[0\]: PD_OTHER is not set"):
        parse_alert_settings({"sinks": [{"type": "pagerduty", "secret_env": "PD_OTHER"}]},
                             environ=ENV)


def test_metrics_errors() -> None:
    with pytest.raises(ConfigError, match=r"metrics\.port: must be an integer between 0 and 65535"):
        parse_metrics_settings({"port": 70000})
    with pytest.raises(ConfigError, match=r"metrics\.bind: unknown key"):
        parse_metrics_settings({"bind": "x"})
