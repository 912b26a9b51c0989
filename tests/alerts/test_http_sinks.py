"""PagerDuty, Slack and the signed webhook against a loopback receiver: exact payloads,
routing by severity, de-duplication, acknowledgement, and a sink that is down."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, select

from tests.support.alerts import Deadline, Receiver, deliver, deliveries
from tests.support.postgres import free_port
from watchdog.alerts.outbox import AlertKind, Severity, raise_alert
from watchdog.alerts.settings import AlertSettings, parse_alert_settings
from watchdog.alerts.webhook import verify
from watchdog.cli.common import Ctx
from watchdog.cli.oncall import ack
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.models import Alert, AuditRow

ROUTING_KEY = "R0UT1NGKEY-abcdef"
HOOK_SECRET = "hook-secret-123"


def _settings(receiver: Receiver, *, hook_url: str | None = None) -> AlertSettings:
    return parse_alert_settings({
        "sinks": [
            {"type": "pagerduty", "url": f"{receiver.url}/pd", "min_severity": "critical"},
            {"type": "slack"},
            {"type": "webhook", "name": "hook", "url": hook_url or f"{receiver.url}/hook"},
        ],
    }, environ={
        "WATCHDOG_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "WATCHDOG_SLACK_WEBHOOK_URL": f"{receiver.url}/slack/T000/B000/XXXX",
        "WATCHDOG_WEBHOOK_SECRET": HOOK_SECRET,
    })


def _audit_events(engine: Engine, prefix: str) -> list[AuditRow]:
    with transaction(engine) as session:
        return list(session.scalars(
            select(AuditRow).where(AuditRow.event.startswith(prefix)).order_by(AuditRow.id)))


def test_pagerduty_slack_webhook_payloads_through_the_timeline(
    engine: Engine, tokyo_config: Config, clock: FrozenClock, receiver: Receiver,
) -> None:
    settings = _settings(receiver)
    deadline = Deadline(engine, tokyo_config, clock)
    approaching = f"expiry-watchdog:deadline_approaching:authorization:{deadline.id}"
    critical = f"expiry-watchdog:deadline_critical:authorization:{deadline.id}"

    deadline.scan()
    deliver(engine, settings, clock)
    assert receiver.at("/pd/v2/enqueue") == []  # warning does not page
    (slack,) = receiver.at("/slack/T000/B000/XXXX")
    body = slack.json()
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(":warning: *WARNING* clearpay order ORD-1")
    assert [b["type"] for b in body["blocks"]] == ["section", "section", "context"]
    assert "Deadline" in body["blocks"][1]["text"]["text"]
    assert approaching in body["blocks"][2]["elements"][0]["text"]

    (hook,) = receiver.at("/hook")
    assert verify(HOOK_SECRET, hook.body, hook.headers["x-watchdog-signature"])
    assert hook.headers["x-watchdog-signature"].startswith("sha256=")
    assert hook.headers["x-watchdog-event"] == "trigger"
    payload = hook.json()
    assert payload["dedup_key"] == approaching
    assert payload["event"] == "trigger" and payload["severity"] == "warning"
    details = payload["details"]
    assert details["authorization_id"] == deadline.id
    assert details["provider"] == "clearpay" and details["order_id"] == "ORD-1"
    assert details["reference"] == "REF-77"
    assert details["amount_minor"] == 1820 and details["currency"] == "GBP"
    assert details["amount_display"] == "18.20 GBP"
    assert details["deadline_utc"] == deadline.expires_at.isoformat()
    assert details["deadline_local"].endswith("+09:00")
    assert details["tried"] and details["next_steps"]

    # Another pass and another round: nothing new (de-duplicated by the alert's key).
    deadline.scan()
    deliver(engine, settings, clock)
    assert len(receiver.requests) == 2

    deadline.go_critical()
    deliver(engine, settings, clock)
    (pd_trigger,) = receiver.at("/pd/v2/enqueue")
    event = pd_trigger.json()
    assert set(event) == {"routing_key", "event_action", "dedup_key", "payload", "client"}
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == critical
    assert set(event["payload"]) >= {"summary", "source", "severity", "custom_details"}
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["source"] == "expiry-watchdog"
    assert event["payload"]["custom_details"]["order_id"] == "ORD-1"
    hooks = [r.json() for r in receiver.at("/hook")]
    assert sorted((h["event"], h["dedup_key"]) for h in hooks[1:]) == [
        ("resolve", approaching), ("trigger", critical)]

    deadline.capture()
    deliver(engine, settings, clock)
    pd = [r.json() for r in receiver.at("/pd/v2/enqueue")]
    assert pd[1] == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": critical}
    slack_texts = [r.json()["text"] for r in receiver.at("/slack/T000/B000/XXXX")]
    assert sum(t.startswith(":white_check_mark: *RESOLVED*") for t in slack_texts) == 2

    sent = _audit_events(engine, "notify:")
    assert {r.event for r in sent} == {"notify:pagerduty:sent", "notify:slack:sent",
                                       "notify:hook:sent", "notify:log:sent"}
    for row in sent:  # no secret in the audit trail
        assert ROUTING_KEY not in row.detail and "XXXX" not in row.detail
        assert HOOK_SECRET not in row.detail
    with transaction(engine) as session:
        assert all(a.notified_revision == a.revision for a in session.scalars(select(Alert)))


def test_ack_silences_and_tells_pagerduty_until_escalation(
    engine: Engine, config: Config, clock: FrozenClock, receiver: Receiver, tmp_path: Path,
) -> None:
    settings = _settings(receiver)
    deadline = Deadline(engine, config, clock)
    deadline.go_critical()
    deliver(engine, settings, clock)
    config_file = tmp_path / "watchdog.toml"
    config_file.write_text(f'[database]\nurl = "{config.database_url}"\n')

    result = CliRunner().invoke(ack, [str(deadline.id), "--note", "calling the merchant"],
                                obj=Ctx(str(config_file), False))
    assert result.exit_code == 0, result.output
    assert "acknowledged deadline_critical (critical)" in result.output
    (row,) = _audit_events(engine, "alert:deadline_critical:ack")
    assert row.actor.startswith("cli:")
    assert json.loads(row.detail)["note"] == "calling the merchant"

    deliver(engine, settings, clock)
    pd = [r.json() for r in receiver.at("/pd/v2/enqueue")]
    assert pd[-1] == {"routing_key": ROUTING_KEY, "event_action": "acknowledge",
                      "dedup_key": f"expiry-watchdog:deadline_critical:authorization:{deadline.id}"}
    before = len(receiver.requests)

    # Still acknowledged: the same condition at the same severity notifies nobody.
    with transaction(engine) as session:
        alert = raise_alert(session, AlertKind.DEADLINE_CRITICAL, Severity.CRITICAL, "again", {},
                            clock.now(), "test", authorization_id=deadline.id,
                            provider="clearpay")
        assert alert.status == "acknowledged"
    deliver(engine, settings, clock)
    assert len(receiver.requests) == before

    # A second ack has nothing to do.
    again = CliRunner().invoke(ack, [str(deadline.id), "--note", "again"],
                               obj=Ctx(str(config_file), False))
    assert again.exit_code == 1
    assert "nothing to acknowledge" in again.output


def test_escalation_after_ack_notifies_again(
    engine: Engine, clock: FrozenClock, receiver: Receiver,
) -> None:
    from watchdog.alerts.ack import acknowledge

    settings = _settings(receiver)
    with transaction(engine) as session:
        raise_alert(session, AlertKind.ACTION_FAILED, Severity.WARNING, "capture declined",
                    {"provider": "flitt"}, clock.now(), "test", authorization_id=7,
                    provider="flitt")
    deliver(engine, settings, clock)
    acknowledge(engine, 7, "looking", "cli:tester", clock)
    deliver(engine, settings, clock)
    assert receiver.at("/pd/v2/enqueue") == []
    with transaction(engine) as session:
        raise_alert(session, AlertKind.ACTION_FAILED, Severity.CRITICAL, "capture rejected",
                    {"provider": "flitt"}, clock.now(), "test", authorization_id=7,
                    provider="flitt")
    deliver(engine, settings, clock)
    (page,) = receiver.at("/pd/v2/enqueue")
    assert page.json()["event_action"] == "trigger"
    assert page.json()["payload"]["severity"] == "critical"


def test_sink_down_never_blocks_and_catches_up(
    engine: Engine, config: Config, clock: FrozenClock, receiver: Receiver,
) -> None:
    port = free_port()  # nothing listens here yet
    settings = _settings(receiver, hook_url=f"http://127.0.0.1:{port}/hook")
    deadline = Deadline(engine, config, clock)

    started = time.monotonic()
    report = deadline.scan()
    assert report.errors == 0
    outcome = deliver(engine, settings, clock)
    assert time.monotonic() - started < 5
    assert outcome.failed == 1 and outcome.sent == 2  # slack + log got it
    (pending,) = deliveries(engine, "hook")
    assert pending.status == "pending" and pending.attempts == 1
    assert pending.next_attempt_at == clock.now() + dt.timedelta(seconds=15)
    assert "ConnectError" in (pending.last_error or "")
    (failed,) = _audit_events(engine, "notify:hook:failed")
    assert failed.outcome == "retry"

    # Passes go on while the sink is down; the alert is not re-queued, nor sent early.
    deadline.scan()
    assert deliver(engine, settings, clock).failed == 0

    down_again = deliver(engine, settings, _later(clock, 15))
    assert down_again.failed == 1
    (pending,) = deliveries(engine, "hook")
    assert pending.next_attempt_at == clock.now() + dt.timedelta(seconds=30)  # backoff doubled

    came_back = Receiver(port=port)
    try:
        result = deliver(engine, settings, _later(clock, 30))
        assert result.sent == 1
        (hook,) = came_back.at("/hook")
        assert hook.json()["dedup_key"].endswith(f"authorization:{deadline.id}")
    finally:
        came_back.close()
    (done,) = deliveries(engine, "hook")
    assert done.status == "sent" and done.attempts == 3
    with transaction(engine) as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.notified_revision == alert.revision


def test_hanging_sink_costs_one_timeout(engine: Engine, clock: FrozenClock,
                                        receiver: Receiver) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        settings = parse_alert_settings({"timeout": "1s", "sinks": [
            {"type": "webhook", "url": f"http://127.0.0.1:{listener.getsockname()[1]}/x"},
            {"type": "webhook", "name": "ok", "url": f"{receiver.url}/ok"},
        ]}, environ={"WATCHDOG_WEBHOOK_SECRET": HOOK_SECRET})
        with transaction(engine) as session:
            for n in range(3):
                raise_alert(session, AlertKind.NEEDS_ATTENTION, Severity.CRITICAL, f"n{n}", {},
                            clock.now(), "test", authorization_id=n + 1)
        started = time.monotonic()
        report = deliver(engine, settings, clock)
        assert time.monotonic() - started < 4  # in parallel, each bounded by the timeout
        assert report.failed == 3 and report.sent == 6
        assert len(receiver.at("/ok")) == 3
    finally:
        listener.close()


def test_client_error_gives_up_without_retry(engine: Engine, clock: FrozenClock,
                                             receiver: Receiver) -> None:
    receiver.status = 400
    settings = _settings(receiver)
    with transaction(engine) as session:
        raise_alert(session, AlertKind.NEEDS_ATTENTION, Severity.CRITICAL, "x", {}, clock.now(),
                    "test", authorization_id=1)
    report = deliver(engine, settings, clock)
    assert report.gave_up == 3 and report.sent == 1
    (pd,) = deliveries(engine, "pagerduty")
    assert pd.status == "failed" and "HTTP 400" in (pd.last_error or "")
    (row,) = _audit_events(engine, "notify:pagerduty:failed")
    assert row.outcome == "gave_up"


def _later(clock: FrozenClock, seconds: int) -> FrozenClock:
    clock.advance(dt.timedelta(seconds=seconds))
    return clock

