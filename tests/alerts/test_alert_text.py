"""What a human reads in an alert: amounts in major units with the currency for every kind that
carries money and every currency exponent (JPY 0, EUR 2, KWD 3), machine fields in minor units
named so, the absolute deadline in UTC and the display zone, and a countdown recomputed each
time the alert is sent, never frozen at the moment it was written."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.support.alerts import Deadline, Receiver, deliver
from watchdog.alerts.settings import AlertSettings, parse_alert_settings
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.models import Alert

SLACK = "/slack/T000/B000/XXXX"


def _settings(receiver: Receiver) -> AlertSettings:
    return parse_alert_settings({
        "sinks": [
            {"type": "pagerduty", "url": f"{receiver.url}/pd", "min_severity": "warning"},
            {"type": "slack"},
            {"type": "webhook", "name": "hook", "url": f"{receiver.url}/hook"},
            {"type": "alertmanager", "url": f"{receiver.url}/am"},
        ],
    }, environ={
        "WATCHDOG_PAGERDUTY_ROUTING_KEY": "rk-1",
        "WATCHDOG_SLACK_WEBHOOK_URL": f"{receiver.url}{SLACK}",
        "WATCHDOG_WEBHOOK_SECRET": "s3cret",
    })


def _texts(receiver: Receiver, start: int) -> dict[str, list[Any]]:
    """Every human text each sink got from request ``start`` on, and the webhook details."""
    out: dict[str, list[Any]] = {"slack": [], "pd": [], "hook": [], "am": [], "details": []}
    for req in receiver.requests[start:]:
        body = req.json()
        if req.path == SLACK:
            out["slack"] += [body["text"], body["blocks"][1]["text"]["text"]]
        elif req.path == "/pd/v2/enqueue" and "payload" in body:
            out["pd"] += [body["payload"]["summary"],
                          body["payload"]["custom_details"]["description"]]
        elif req.path == "/hook" and body["event"] == "trigger":
            out["hook"] += [body["summary"], body["description"]]
            out["details"].append(body["details"])
        elif req.path == "/am/api/v2/alerts":
            out["am"] += [a["annotations"]["summary"] for a in body if "endsAt" not in a]
    return out


@pytest.mark.parametrize(("currency", "minor", "shown"), [
    ("JPY", 5000, "5000 JPY"), ("EUR", 9900, "99.00 EUR"), ("KWD", 12500, "12.500 KWD"),
])
def test_every_money_alert_shows_major_units_with_currency(
    engine: Engine, tokyo_config: Config, clock: FrozenClock, receiver: Receiver,
    currency: str, minor: int, shown: str,
) -> None:
    settings = _settings(receiver)
    deadline = Deadline(engine, tokyo_config, clock, amount=minor, currency=currency)
    utc = f"{deadline.expires_at:%Y-%m-%d %H:%M} UTC"
    tokyo = f"{deadline.expires_at.astimezone(tokyo_config.zone):%Y-%m-%d %H:%M} JST Asia/Tokyo"
    for stage, step in [("deadline_approaching", deadline.scan),
                        ("deadline_critical", deadline.go_critical),
                        ("authorization_expired", deadline.go_expired)]:
        start = len(receiver.requests)
        step()
        deliver(engine, settings, clock)
        got = _texts(receiver, start)
        for sink in ("slack", "pd", "hook", "am"):
            assert got[sink], f"{stage}: {sink} got nothing"
            for text in got[sink]:
                assert shown in text, f"{stage} {sink}: {text!r}"
                if currency != "JPY":  # minor units shown as if they were major
                    assert f"{minor} {currency}" not in text, f"{stage} {sink}: {text!r}"
        summary = got["hook"][0]
        assert utc in summary and tokyo in summary, summary
        (details,) = got["details"]
        assert details["amount_minor"] == minor and details["open_amount_minor"] == minor
        assert details["captured_amount_minor"] == 0 and "amount" not in details
        assert details["amount_display"] == shown and details["currency"] == currency
        assert details["display_zone"] == "Asia/Tokyo"


def _countdown(text: str) -> str:
    match = re.search(r"deadline (in \d+h\d\dm|passed \d+h\d\dm ago)", text)
    assert match, text
    return match.group(1)


def test_countdown_is_recomputed_when_the_alert_is_sent_again(
    engine: Engine, config: Config, clock: FrozenClock, receiver: Receiver,
) -> None:
    settings = _settings(receiver)
    deadline = Deadline(engine, config, clock, amount=9900, currency="EUR")
    deadline.scan()
    deliver(engine, settings, clock)
    first = _texts(receiver, 0)
    assert _countdown(first["am"][0]) == "in 47h00m"
    assert _countdown(first["slack"][0]) == "in 47h00m"
    assert "deadline in" not in deadline_summary(engine), "the stored summary has no countdown"

    start = len(receiver.requests)
    clock.advance(dt.timedelta(minutes=44))  # past resend_interval: Alertmanager gets a re-post
    deliver(engine, settings, clock)
    again = _texts(receiver, start)
    assert [_countdown(t) for t in again["am"]] == ["in 46h16m"]


def deadline_summary(engine: Engine) -> str:
    with transaction(engine) as session:
        return session.scalars(select(Alert.summary)).one()
