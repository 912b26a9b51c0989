"""The Planner gives the answers of the pure policy functions under one configuration's
provider rules (with the configured window) and per-provider policy."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tests.support.planning import T0, snapshot
from watchdog import policy
from watchdog.config import parse_config
from watchdog.domain import DeadlineSource, InstructionKind, OnDeadline, ProviderName
from watchdog.planner import Planner, Replan
from watchdog.providers import registry

CONFIG = parse_config({
    "policy": {"on_deadline": "capture"},
    "providers": {"smartpay": {"window": "5d", "on_deadline": "cancel"}},
}, environ={})
PLANNER = Planner(CONFIG)


def test_rules_carry_the_configured_window() -> None:
    assert PLANNER.rules(ProviderName.SMARTPAY).window == dt.timedelta(days=5)
    assert PLANNER.rules(ProviderName.SMARTPAY) == registry.rules(
        ProviderName.SMARTPAY, CONFIG.providers[ProviderName.SMARTPAY])
    assert PLANNER.rules(ProviderName.CLEARPAY) == registry.rules(
        ProviderName.CLEARPAY, CONFIG.providers[ProviderName.CLEARPAY])


def test_policy_is_the_providers() -> None:
    assert PLANNER.policy(ProviderName.SMARTPAY).on_deadline is OnDeadline.CANCEL
    assert PLANNER.policy(ProviderName.CLEARPAY) == CONFIG.policy_for(ProviderName.CLEARPAY)


def test_timeline_decision_and_replan_match_the_policy_functions() -> None:
    auth = snapshot()
    rules = registry.rules(ProviderName.SMARTPAY, CONFIG.providers[ProviderName.SMARTPAY])
    settings = CONFIG.policy_for(ProviderName.SMARTPAY)
    tl = policy.timeline(auth, rules, settings)
    assert PLANNER.timeline(auth) == tl
    assert tl.deadline == T0 + dt.timedelta(days=5)
    for now in (T0, tl.alert_at, tl.act_at, tl.guard_at - dt.timedelta(seconds=1), tl.guard_at):
        decision = PLANNER.decide(auth, now)
        assert decision == policy.plan(auth, rules, settings, now)
        assert PLANNER.replan(auth, now) == Replan(
            tl.deadline, DeadlineSource.PROVIDER_WINDOW, decision.next_action_at)


def test_replan_columns_are_what_the_store_writes() -> None:
    replan = PLANNER.replan(snapshot(), T0)
    assert replan.columns() == {
        "deadline": T0 + dt.timedelta(days=5),
        "deadline_source": "provider_window",
        "next_action_at": replan.next_action_at,
    }


def test_amounts_and_on_deadline_under_the_providers_rules() -> None:
    auth = snapshot(captured_amount=4000, capture_count=1)
    rules = PLANNER.rules(ProviderName.SMARTPAY)
    assert PLANNER.open_amount(auth) == policy.open_amount(auth, rules)
    assert PLANNER.capture_target(auth) == policy.capture_target(auth, rules)
    assert PLANNER.on_deadline(auth) is OnDeadline.CANCEL
    instructed = dataclasses.replace(auth, instruction=InstructionKind.CAPTURE_AT_DEADLINE)
    assert PLANNER.on_deadline(instructed) is OnDeadline.CAPTURE
