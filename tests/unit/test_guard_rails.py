"""Guard rails: each one decides (``check``) and explains (``describe``) from the same
situation, and a rail registered in ``GUARD_RAILS`` is both asked by the scan's decision
and listed by ``explain``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.support.planning import POLICY, T0
from watchdog import guard_rails
from watchdog.controls import GLOBAL, Pause
from watchdog.domain import ActionKind, ProviderName
from watchdog.guard_rails import GUARD_RAILS, GuardRail, Hold, Situation


def situation(**overrides: Any) -> Situation:
    """A Clearpay authorization #7 in GBP with no guard rail in force, with ``overrides``."""
    base = Situation(
        authorization_id=7, provider=ProviderName.CLEARPAY, currency="GBP", policy=POLICY,
        global_policy=POLICY, dry_run=False, pauses={}, actions_this_pass={},
        approved=lambda: False,
    )
    return replace(base, **overrides)


def test_nothing_in_force_lets_the_action_go_and_explains_none() -> None:
    s = situation()
    assert guard_rails.first_hold(s, ActionKind.CAPTURE, 5000) is None
    assert guard_rails.descriptions(s) == []
    assert guard_rails.remedies(s) == []


def test_dry_run_would_act_and_says_nothing_moves() -> None:
    for s in (situation(dry_run=True), situation(policy=replace(POLICY, dry_run=True))):
        assert guard_rails.first_hold(s, ActionKind.CAPTURE, 5000) == Hold(
            "would", "dry run: would capture 5000", True)
        assert guard_rails.descriptions(s) == ["dry_run is on: nothing will move"]


def test_a_pause_holds_and_names_who_and_how_to_resume() -> None:
    pause = Pause(scope=GLOBAL, reason="month-end", actor="cli:bob", since=T0)
    s = situation(pauses={GLOBAL: pause})
    assert guard_rails.first_hold(s, ActionKind.CANCEL, None) == Hold(
        "held", "all providers paused by cli:bob: month-end", True)
    assert guard_rails.descriptions(s) == [
        f"PAUSED (*) by cli:bob since {T0.isoformat()}: month-end"]
    assert guard_rails.remedies(s) == ["`expiry-watchdog resume --provider *` lets money move"]


def test_dry_run_wins_over_a_pause_and_explain_lists_the_pause_first() -> None:
    pause = Pause(scope="clearpay", reason="incident", actor="cli:bob", since=T0)
    s = situation(dry_run=True, pauses={"clearpay": pause})
    held = guard_rails.first_hold(s, ActionKind.CAPTURE, 100)
    assert held is not None and held.event == "would"
    assert [line.split(" ")[0] for line in guard_rails.descriptions(s)] == ["PAUSED", "dry_run"]


def test_budgets_defer_at_exactly_the_budget() -> None:
    global_budget = situation(global_policy=replace(POLICY, max_actions_per_pass=3))
    assert guard_rails.first_hold(
        replace(global_budget, actions_this_pass={"clearpay": 1, "flitt": 1}),
        ActionKind.CAPTURE, 1) is None
    assert guard_rails.first_hold(
        replace(global_budget, actions_this_pass={"clearpay": 2, "flitt": 1}),
        ActionKind.CAPTURE, 1) == Hold("deferred", "action budget of 3 per pass used up", False)
    provider_budget = situation(policy=replace(POLICY, max_actions_per_pass=2),
                                actions_this_pass={"clearpay": 2})
    assert guard_rails.first_hold(provider_budget, ActionKind.CANCEL, None) == Hold(
        "deferred", "clearpay action budget of 2 used up", False)
    assert guard_rails.descriptions(provider_budget) == ["max_actions_per_pass 2"]


def test_capture_limit_holds_above_the_limit_until_approved() -> None:
    s = situation(policy=replace(POLICY, max_capture_amount=10_000))
    assert guard_rails.first_hold(s, ActionKind.CAPTURE, 10_000) is None
    held = guard_rails.first_hold(s, ActionKind.CAPTURE, 10_001)
    assert held is not None and held.event == "held" and "expiry-watchdog approve 7" in held.reason
    assert guard_rails.first_hold(s, ActionKind.CANCEL, None) is None
    assert guard_rails.descriptions(s) == [
        "max_capture_amount 10000: a larger capture waits for `expiry-watchdog approve 7`"]
    approved = replace(s, approved=lambda: True)
    assert guard_rails.first_hold(approved, ActionKind.CAPTURE, 10_001) is None
    assert guard_rails.descriptions(approved) == [
        "max_capture_amount 10000: approved for this authorization"]


def test_the_approval_is_read_only_when_a_capture_is_over_the_limit() -> None:
    reads: list[int] = []

    def approved() -> bool:
        reads.append(1)
        return False

    s = situation(policy=replace(POLICY, max_capture_amount=10_000), approved=approved)
    guard_rails.first_hold(s, ActionKind.CAPTURE, 9_000)
    guard_rails.first_hold(s, ActionKind.CANCEL, None)
    assert reads == []
    guard_rails.first_hold(s, ActionKind.CAPTURE, 11_000)
    assert reads == [1]


class QuietHours(GuardRail):
    """A rail defined by the test: no capture before 09:00 UTC on T0's day."""

    name = "quiet_hours"

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
        if kind is ActionKind.CAPTURE and self.now.hour < 9:
            return Hold("held", "quiet hours until 09:00", True)
        return None

    def describe(self, s: Situation) -> str | None:
        return "quiet_hours 00:00-09:00 UTC"

    def remedy(self, s: Situation) -> str | None:
        return "wait for 09:00"


@pytest.fixture
def quiet_hours() -> Iterator[QuietHours]:
    """``QuietHours`` registered in ``GUARD_RAILS`` for the test, and removed after it."""
    rail = QuietHours(T0.replace(hour=8))
    GUARD_RAILS.append(rail)
    try:
        yield rail
    finally:
        GUARD_RAILS.remove(rail)


def test_a_new_rail_registered_in_the_list_decides_and_explains(quiet_hours: QuietHours) -> None:
    s = situation()
    assert guard_rails.first_hold(s, ActionKind.CAPTURE, 5000) == Hold(
        "held", "quiet hours until 09:00", True)
    assert guard_rails.first_hold(s, ActionKind.CANCEL, None) is None
    assert guard_rails.descriptions(s) == ["quiet_hours 00:00-09:00 UTC"]
    assert guard_rails.remedies(s) == ["wait for 09:00"]
    quiet_hours.now = T0.replace(hour=9)
    assert guard_rails.first_hold(s, ActionKind.CAPTURE, 5000) is None


def test_a_new_rail_comes_after_the_built_in_ones(quiet_hours: QuietHours) -> None:
    s = situation(dry_run=True)
    held = guard_rails.first_hold(s, ActionKind.CAPTURE, 5000)
    assert held is not None and held.event == "would"
    assert guard_rails.descriptions(s) == [
        "dry_run is on: nothing will move", "quiet_hours 00:00-09:00 UTC"]


def test_a_rail_that_decides_without_explaining_cannot_be_built() -> None:
    class Silent(GuardRail):
        def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
            return None

    with pytest.raises(TypeError, match="describe"):
        Silent()  # type: ignore[abstract]
