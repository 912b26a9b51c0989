"""Business calendars move an automatic action earlier, never later."""

from __future__ import annotations

import datetime as dt

import pytest

from watchdog.config import ConfigError, parse_config
from watchdog.domain import AuthorizationSnapshot, ProviderName, State
from watchdog.policy import timeline
from watchdog.providers import registry

RULES = registry.rules(ProviderName.CLEARPAY)


def _auth(authorized_at: dt.datetime) -> AuthorizationSnapshot:
    return AuthorizationSnapshot(1, ProviderName.CLEARPAY, "1", 1000, "GBP", authorized_at,
                                 State.AUTHORIZED)


def test_action_due_on_sunday_moves_to_friday() -> None:
    # Deadline Monday 2026-12-07 10:00 UTC; act_at (24h before) is Sunday 10:00.
    auth = _auth(dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC))
    plain = parse_config({}, {}).policy
    calendar = parse_config({"policy": {"avoid_weekends": True}}, {}).policy
    assert timeline(auth, RULES, plain).act_at.weekday() == 6
    moved = timeline(auth, RULES, calendar)
    assert moved.act_at == dt.datetime(2026, 12, 4, 10, tzinfo=dt.UTC)
    assert moved.alert_at <= moved.act_at
    assert moved.deadline == timeline(auth, RULES, plain).deadline


def test_holiday_in_the_local_calendar_moves_earlier() -> None:
    # act_at 2026-12-24 23:30 UTC is already the 25th in Tokyo.
    auth = _auth(dt.datetime(2026, 12, 12, 23, 30, tzinfo=dt.UTC))
    policy = parse_config({"display": {"timezone": "Asia/Tokyo"},
                           "policy": {"holidays": ["2026-12-25"]}}, {}).policy
    tl = timeline(auth, RULES, policy)
    assert tl.act_at == dt.datetime(2026, 12, 23, 23, 30, tzinfo=dt.UTC)


def test_bad_holiday_names_the_entry() -> None:
    with pytest.raises(ConfigError, match=r"providers\.flitt\.holidays\[1\]"):
        parse_config({"providers": {"flitt": {"holidays": ["2026-12-25", "Christmas"]}}}, {})
