"""Free text refuses control and format characters; Slack text is escaped (issue 17)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from watchdog import tokens
from watchdog.alerts.message import Event, Notification
from watchdog.alerts.slack import message_body
from watchdog.errors import ValidationError, WatchdogError
from watchdog.registration import validate_record
from watchdog.text import printable, visible

HOSTILE = ["cart\x1b[2J", "cart\nno action needed", "cart\r", "cart\u202egnp.exe",
           "cart\u2028line", "cart\u200b", "cart\x00", "cart\x7f", "cart\u0085"]


def _record(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"provider": "clearpay", "order_id": "ord-1", "amount": 10_000,
                               "currency": "AUD", "authorized_at": "2026-11-20T11:00:00+00:00"}
    body.update(overrides)
    return body


@pytest.mark.parametrize("reference", HOSTILE)
def test_a_reference_with_a_control_or_format_character_is_refused(reference: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_record(_record(reference=reference))
    assert caught.value.field == "reference"
    assert "control or format character U+" in caught.value.reason
    assert reference not in str(caught.value)


def test_printable_text_passes_unchanged() -> None:
    text = "Café 注文 #42 — ok"
    assert validate_record(_record(reference=text)).reference == text
    assert printable("--note", text) == text


@pytest.mark.parametrize("name", ["shop\n", "shop\r\n", "shop\x1b", "sh op", ""])
def test_token_names_must_match_whole(name: str) -> None:
    with pytest.raises(WatchdogError):
        tokens.validate_name(name)


def test_a_token_with_a_trailing_newline_does_not_authenticate(tmp_path: object) -> None:
    from pathlib import Path

    from watchdog import schema
    from watchdog.db import make_engine

    engine = make_engine(f"sqlite:///{Path(str(tmp_path)) / 'w.db'}")
    schema.upgrade(engine)
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    secret = tokens.create(engine, "shop", tokens.Scope.READ, "test", now)
    assert tokens.authenticate(engine, secret, now) is not None
    assert tokens.authenticate(engine, secret + "\n", now) is None
    engine.dispose()


def test_visible_shows_escapes_instead_of_driving_the_terminal() -> None:
    assert visible("a\x1b[2Jb\n") == "a\\u001b[2Jb\\u000a"
    assert visible("plain") == "plain"


def _note(summary: str, reference: str) -> Notification:
    at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    return Notification(
        event=Event.TRIGGER, dedup_key="k<!here>", kind="authorization_at_risk",
        severity="critical", status="firing", summary=summary, revision=1, authorization_id=7,
        provider="clearpay", created_at=at, updated_at=at, resolved_at=None, delivery_id=1,
        details={"reference": reference, "provider": "clearpay", "order_id": "ord-1"},
    )


def test_slack_text_cannot_mention_the_channel_or_forge_a_link() -> None:
    body = message_body(_note("<!channel> capture failed <https://evil.example|Dashboard>",
                              "<!everyone> & <https://evil.example|ok>"),
                        dt.datetime(2026, 11, 20, 1, tzinfo=dt.UTC))
    text = json.dumps(body)
    for forged in ("<!channel>", "<!everyone>", "<https://evil.example", "<!here>"):
        assert forged not in text
    assert "&lt;!channel&gt;" in body["text"]
    assert "&amp; &lt;https://evil.example|ok&gt;" in text


def test_operator_reasons_and_notes_refuse_control_characters(tmp_path: object) -> None:
    from pathlib import Path

    from watchdog import controls, schema, service
    from watchdog.alerts.ack import acknowledge
    from watchdog.config import parse_config
    from watchdog.db import make_engine
    from watchdog.domain import State

    url = f"sqlite:///{Path(str(tmp_path)) / 'w.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    config = parse_config({"database": {"url": url}}, environ={})
    attempts = {
        "--reason": lambda: controls.pause(engine, controls.GLOBAL, "x\x1b[2J", "cli:t", now),
        "--note": lambda: controls.approve(engine, 1, "cli:t", now, "ok\nforged"),
    }
    for field, attempt in attempts.items():
        with pytest.raises(ValidationError) as caught:
            attempt()
        assert caught.value.field == field
    with pytest.raises(ValidationError):
        acknowledge(engine, 1, "seen\u202e", "cli:t")
    with pytest.raises(ValidationError):
        service.resolve_attention(engine, config, 1, State.CAPTURED, "cli:t", "done\x07", None)
    engine.dispose()
