"""The planner at its boundaries: each transition at -1 s, exactly, and +1 s; deadlines; instructions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.planning import POLICY, SECOND, T0, rules, snapshot
from watchdog.domain import (
    AlertStage,
    AuthorizationSnapshot,
    DeadlineSource,
    InstructionKind,
    OnDeadline,
    ProviderName,
    State,
)
from watchdog.errors import InstructionError
from watchdog.policy import (
    Step,
    capture_target,
    deadline_of,
    open_amount,
    plan,
    timeline,
    validate_instruction,
)

SMARTPAY = rules(ProviderName.SMARTPAY)
DEADLINE = T0 + dt.timedelta(days=7)
TL = timeline(snapshot(), SMARTPAY, POLICY)


def test_timeline_of_a_smartpay_authorization() -> None:
    assert TL.deadline == DEADLINE
    assert TL.deadline_source is DeadlineSource.PROVIDER_WINDOW
    assert TL.alert_at == DEADLINE - dt.timedelta(hours=48)
    assert TL.act_at == DEADLINE - dt.timedelta(hours=24)
    assert TL.critical_at == DEADLINE - dt.timedelta(hours=6)
    assert TL.guard_at == DEADLINE - dt.timedelta(minutes=15)


# ------------------------------------------------------------------ alert_at


def test_alert_only_authorization_waits_until_alert_at() -> None:
    auth = snapshot(on_deadline=OnDeadline.ALERT)
    decision = plan(auth, SMARTPAY, POLICY, TL.alert_at - SECOND)
    assert decision.step is Step.WAIT
    assert decision.next_action_at == TL.alert_at


@pytest.mark.parametrize("offset", [0, 1])
def test_alert_only_authorization_alerts_from_alert_at(offset: int) -> None:
    auth = snapshot(on_deadline=OnDeadline.ALERT)
    now = TL.alert_at + offset * SECOND
    decision = plan(auth, SMARTPAY, POLICY, now)
    assert decision.step is Step.ALERT_APPROACHING
    assert decision.next_action_at == now


@pytest.mark.parametrize("offset", [0, 1])
def test_automatic_capture_syncs_instead_of_alerting_at_alert_at(offset: int) -> None:
    now = TL.alert_at + offset * SECOND
    decision = plan(snapshot(), SMARTPAY, POLICY, now)
    assert decision.step is Step.SYNC
    assert decision.next_action_at == now


def test_synced_automatic_capture_waits_for_act_at_after_alert_at() -> None:
    auth = snapshot(last_synced_at=TL.alert_at)
    decision = plan(auth, SMARTPAY, POLICY, TL.alert_at + SECOND)
    assert decision.step is Step.WAIT
    assert decision.next_action_at == TL.act_at


# ------------------------------------------------------------------ act_at (capture_lead)


def _synced(**overrides: Any) -> AuthorizationSnapshot:
    values: dict[str, Any] = {"last_synced_at": TL.alert_at, "alert_stage": AlertStage.APPROACHING}
    return snapshot(**(values | overrides))


def test_capture_waits_one_second_before_act_at() -> None:
    decision = plan(_synced(), SMARTPAY, POLICY, TL.act_at - SECOND)
    assert decision.step is Step.WAIT
    assert decision.next_action_at == TL.act_at


@pytest.mark.parametrize("offset", [0, 1])
def test_capture_at_and_after_act_at(offset: int) -> None:
    now = TL.act_at + offset * SECOND
    decision = plan(_synced(), SMARTPAY, POLICY, now)
    assert decision.step is Step.CAPTURE
    assert decision.amount == 10_000
    assert decision.final is True
    assert decision.next_action_at == now


@pytest.mark.parametrize(("offset", "step"), [(-1, Step.WAIT), (0, Step.CANCEL), (1, Step.CANCEL)])
def test_cancel_policy_at_act_at(offset: int, step: Step) -> None:
    auth = _synced(on_deadline=OnDeadline.CANCEL)
    decision = plan(auth, SMARTPAY, POLICY, TL.act_at + offset * SECOND)
    assert decision.step is step


def test_capture_amount_below_authorized_captures_only_that() -> None:
    decision = plan(_synced(capture_amount=6_000), SMARTPAY, POLICY, TL.act_at)
    assert (decision.step, decision.amount) == (Step.CAPTURE, 6_000)


# ------------------------------------------------------------------ critical_at


def _alerted(**overrides: Any) -> AuthorizationSnapshot:
    return _synced(**({"on_deadline": OnDeadline.ALERT} | overrides))


def test_critical_alert_waits_one_second_before_critical_at() -> None:
    decision = plan(_alerted(), SMARTPAY, POLICY, TL.critical_at - SECOND)
    assert decision.step is Step.WAIT
    assert decision.next_action_at == TL.critical_at


@pytest.mark.parametrize("offset", [0, 1])
def test_critical_alert_at_and_after_critical_at(offset: int) -> None:
    now = TL.critical_at + offset * SECOND
    decision = plan(_alerted(), SMARTPAY, POLICY, now)
    assert decision.step is Step.ALERT_CRITICAL


def test_after_critical_alert_the_next_look_is_the_guard() -> None:
    auth = _alerted(alert_stage=AlertStage.CRITICAL)
    decision = plan(auth, SMARTPAY, POLICY, TL.critical_at + SECOND)
    assert decision.step is Step.WAIT
    assert decision.next_action_at == TL.guard_at


# ------------------------------------------------------------------ guard_at and the deadline


def test_capture_still_allowed_one_second_before_the_guard() -> None:
    decision = plan(snapshot(), SMARTPAY, POLICY, TL.guard_at - SECOND)
    assert decision.step is Step.CAPTURE


@pytest.mark.parametrize(
    "now",
    [TL.guard_at, TL.guard_at + SECOND, DEADLINE - SECOND, DEADLINE, DEADLINE + SECOND,
     DEADLINE + dt.timedelta(days=30)],
)
@pytest.mark.parametrize(
    "instruction", [None, InstructionKind.CAPTURE_NOW, InstructionKind.CANCEL_NOW]
)
def test_nothing_is_sent_at_or_after_the_guard(
    now: dt.datetime, instruction: InstructionKind | None
) -> None:
    auth = snapshot(instruction=instruction, instruction_amount=10_000)
    decision = plan(auth, SMARTPAY, POLICY, now)
    assert decision.step is Step.EXPIRE
    assert decision.amount is None


@pytest.mark.parametrize("state", [State.CAPTURED, State.CANCELED, State.EXPIRED])
def test_final_states_have_nothing_to_do(state: State) -> None:
    decision = plan(snapshot(state=state), SMARTPAY, POLICY, TL.act_at)
    assert decision.step is Step.WAIT
    assert decision.next_action_at is None


@pytest.mark.parametrize("state", [State.CAPTURING, State.CANCELING])
def test_in_flight_states_recover_now(state: State) -> None:
    decision = plan(snapshot(state=state), SMARTPAY, POLICY, T0 + SECOND)
    assert decision.step is Step.RECOVER
    assert decision.next_action_at == T0 + SECOND


def test_needs_attention_waits_for_a_human_until_the_deadline() -> None:
    auth = snapshot(state=State.NEEDS_ATTENTION)
    assert plan(auth, SMARTPAY, POLICY, DEADLINE - SECOND).next_action_at == DEADLINE
    after = plan(auth, SMARTPAY, POLICY, DEADLINE)
    assert (after.step, after.next_action_at) == (Step.WAIT, None)


# ------------------------------------------------------------------ instructions and retries


def test_capture_now_runs_immediately_for_the_instructed_amount() -> None:
    auth = snapshot(instruction=InstructionKind.CAPTURE_NOW, instruction_amount=4_000)
    decision = plan(auth, SMARTPAY, POLICY, T0 + SECOND)
    assert (decision.step, decision.amount, decision.final) == (Step.CAPTURE, 4_000, False)


def test_capture_now_is_clipped_to_the_provider_open_amount() -> None:
    auth = snapshot(instruction=InstructionKind.CAPTURE_NOW, instruction_amount=9_000,
                    provider_open_amount=5_000)
    decision = plan(auth, SMARTPAY, POLICY, T0 + SECOND)
    assert (decision.step, decision.amount) == (Step.CAPTURE, 5_000)


def test_retry_waits_for_not_before() -> None:
    not_before = T0 + dt.timedelta(minutes=5)
    auth = snapshot(instruction=InstructionKind.CANCEL_NOW, not_before=not_before)
    waiting = plan(auth, SMARTPAY, POLICY, not_before - SECOND)
    assert (waiting.step, waiting.next_action_at) == (Step.WAIT, not_before)
    assert plan(auth, SMARTPAY, POLICY, not_before).step is Step.CANCEL


def test_capture_at_deadline_amount_is_what_is_still_wanted_after_a_partial_capture() -> None:
    """Regression: "ready to capture N" is N more (validated against and defaulting to the
    open amount); the planner used to subtract what was already captured from it, capturing
    400 of the 700 the merchant asked for and then releasing the other 300."""
    auth = snapshot(
        state=State.PARTIALLY_CAPTURED, amount=1_000, captured_amount=300, capture_count=1,
        instruction=InstructionKind.CAPTURE_AT_DEADLINE, instruction_amount=700,
        last_synced_at=TL.alert_at, alert_stage=AlertStage.APPROACHING,
    )
    validate_instruction(auth, SMARTPAY, InstructionKind.CAPTURE_AT_DEADLINE, 700, final=False)
    assert capture_target(auth, SMARTPAY) == 700
    decision = plan(auth, SMARTPAY, POLICY, TL.act_at)
    assert (decision.step, decision.amount) == (Step.CAPTURE, 700)


def test_captured_everything_wanted_then_releases_the_remainder() -> None:
    auth = snapshot(state=State.PARTIALLY_CAPTURED, captured_amount=6_000, capture_count=1,
                    capture_amount=6_000, last_synced_at=TL.alert_at,
                    alert_stage=AlertStage.APPROACHING)
    assert plan(auth, SMARTPAY, POLICY, TL.act_at).step is Step.CANCEL


def test_clearpay_minimum_capture_is_respected() -> None:
    clearpay = rules(ProviderName.CLEARPAY)
    auth = snapshot(provider=ProviderName.CLEARPAY, currency="GBP", amount=5_000,
                    capture_amount=50, last_synced_at=T0 + dt.timedelta(days=11),
                    alert_stage=AlertStage.APPROACHING)
    tl = timeline(auth, clearpay, POLICY)
    decision = plan(auth, clearpay, POLICY, tl.act_at)
    assert decision.step is not Step.CAPTURE


# ------------------------------------------------------------------ open amount


@pytest.mark.parametrize("provider", [ProviderName.JPMMPS, ProviderName.FLITT])
def test_single_capture_providers_have_nothing_open_after_the_first_capture(
    provider: ProviderName,
) -> None:
    auth = snapshot(provider=provider, state=State.PARTIALLY_CAPTURED, captured_amount=100,
                    capture_count=1, provider_open_amount=9_900)
    assert open_amount(auth, rules(provider)) == 0
    assert capture_target(auth, rules(provider)) == 0


@pytest.mark.parametrize(
    ("captured", "provider_open", "expected"),
    [(0, None, 10_000), (2_500, None, 7_500), (2_500, 5_000, 5_000), (0, 12_000, 10_000),
     (0, -5, 0), (10_000, None, 0)],
)
def test_open_amount_is_the_smaller_of_remaining_and_provider_open(
    captured: int, provider_open: int | None, expected: int
) -> None:
    auth = snapshot(captured_amount=captured, capture_count=1 if captured else 0,
                    provider_open_amount=provider_open)
    assert open_amount(auth, SMARTPAY) == expected


# ------------------------------------------------------------------ deadline_of


def test_deadline_is_the_earliest_candidate() -> None:
    early = T0 + dt.timedelta(days=3)
    later = T0 + dt.timedelta(days=6)
    assert deadline_of(snapshot(expires_at=early, provider_expires_at=later), SMARTPAY) == (
        early, DeadlineSource.EXPLICIT)
    assert deadline_of(snapshot(expires_at=later, provider_expires_at=early), SMARTPAY) == (
        early, DeadlineSource.PROVIDER_REPORTED)
    beyond = T0 + dt.timedelta(days=9)
    assert deadline_of(snapshot(expires_at=beyond, provider_expires_at=beyond), SMARTPAY) == (
        DEADLINE, DeadlineSource.PROVIDER_WINDOW)


def test_a_tie_prefers_the_provider_then_the_explicit_expiry() -> None:
    assert deadline_of(snapshot(expires_at=DEADLINE, provider_expires_at=DEADLINE), SMARTPAY) == (
        DEADLINE, DeadlineSource.PROVIDER_REPORTED)
    assert deadline_of(snapshot(expires_at=DEADLINE), SMARTPAY) == (
        DEADLINE, DeadlineSource.EXPLICIT)


def test_the_provider_rules_window_sets_the_computed_deadline() -> None:
    five_days = rules(ProviderName.JPMMPS, window=dt.timedelta(days=4, hours=12))
    auth = snapshot(provider=ProviderName.JPMMPS)
    assert deadline_of(auth, five_days)[0] == T0 + dt.timedelta(days=4, hours=12)


# ------------------------------------------------------------------ time zones and DST

BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")
# 2026-03-28T01:30:00+01:00 is 00:30 UTC; Europe switches to summer time on 2026-03-29.
INSTANT = dt.datetime(2026, 3, 28, 0, 30, tzinfo=dt.UTC)
SPELLINGS = [
    INSTANT,
    dt.datetime(2026, 3, 28, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    dt.datetime(2026, 3, 28, 1, 30, tzinfo=BERLIN),
    dt.datetime(2026, 3, 28, 0, 30, tzinfo=LONDON),
    dt.datetime(2026, 3, 28, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))),
    dt.datetime(2026, 3, 27, 20, 30, tzinfo=ZoneInfo("America/New_York")),
]


@pytest.mark.parametrize("provider", list(ProviderName))
@pytest.mark.parametrize("authorized_at", SPELLINGS, ids=lambda d: d.isoformat() + str(d.tzinfo))
def test_offsets_and_dst_do_not_shift_the_deadline(
    provider: ProviderName, authorized_at: dt.datetime
) -> None:
    """Regression: with a DST zone attached, ``authorized_at + window`` was wall-clock
    arithmetic, so a 7-day window across the spring change was 6 days 23 hours."""
    assert authorized_at == INSTANT
    deadline, _ = deadline_of(snapshot(provider=provider, authorized_at=authorized_at),
                              rules(provider))
    window = rules(provider).window
    assert deadline == INSTANT + window
    assert deadline.utcoffset() == dt.timedelta(0)
    assert (deadline - INSTANT).total_seconds() == window.days * 86_400


@pytest.mark.parametrize("local", [
    dt.datetime(2026, 3, 28, 1, 30, tzinfo=LONDON),   # spring forward inside the window
    dt.datetime(2026, 10, 24, 1, 30, tzinfo=LONDON),  # fall back inside the window
])
def test_a_window_across_a_dst_change_is_exactly_n_times_24_hours(local: dt.datetime) -> None:
    deadline, _ = deadline_of(snapshot(authorized_at=local), SMARTPAY)
    assert deadline.timestamp() - local.timestamp() == 7 * 24 * 3600


def test_plan_is_the_same_whatever_the_offsets_of_its_inputs() -> None:
    now_utc = INSTANT + dt.timedelta(days=6, hours=1)
    expected = plan(snapshot(authorized_at=INSTANT), SMARTPAY, POLICY, now_utc)
    for spelling in SPELLINGS:
        for now in (now_utc, now_utc.astimezone(BERLIN), now_utc.astimezone(LONDON)):
            got = plan(snapshot(authorized_at=spelling), SMARTPAY, POLICY, now)
            assert got == expected


def test_explicit_expiry_in_another_zone_is_returned_in_utc() -> None:
    expires = dt.datetime(2026, 3, 30, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    deadline, source = deadline_of(snapshot(authorized_at=INSTANT, expires_at=expires), SMARTPAY)
    assert source is DeadlineSource.EXPLICIT
    assert deadline == expires
    assert deadline.utcoffset() == dt.timedelta(0)


def test_a_naive_instant_is_refused() -> None:
    naive = dt.datetime(2026, 3, 28, 1, 30)  # naive: the point of the test
    with pytest.raises(ValueError, match="authorized_at"):
        deadline_of(snapshot(authorized_at=naive), SMARTPAY)


# ------------------------------------------------------------------ validate_instruction


@pytest.mark.parametrize("provider", [ProviderName.JPMMPS, ProviderName.FLITT])
def test_single_capture_provider_refuses_a_partial_capture_without_final(
    provider: ProviderName,
) -> None:
    auth = snapshot(provider=provider, currency="GBP")
    with pytest.raises(InstructionError, match="final=true"):
        validate_instruction(auth, rules(provider), InstructionKind.CAPTURE_NOW, 4_000, final=False)
    validate_instruction(auth, rules(provider), InstructionKind.CAPTURE_NOW, 4_000, final=True)
    validate_instruction(auth, rules(provider), InstructionKind.CAPTURE_NOW, 10_000, final=False)


@pytest.mark.parametrize(("amount", "final", "refused"), [
    (9_950, False, True),  # leaves 0.50 open: below Clearpay's 1.00 minimum, never capturable
    (9_900, False, False),  # leaves exactly the minimum
    (9_950, True, False),  # final: the remainder is released on purpose
    (10_000, False, False),
])
def test_clearpay_refuses_a_remainder_below_its_minimum_capture(
    amount: int, final: bool, refused: bool,
) -> None:
    auth = snapshot(provider=ProviderName.CLEARPAY, currency="GBP")
    clearpay = rules(ProviderName.CLEARPAY)
    if refused:
        with pytest.raises(InstructionError, match="below clearpay's minimum capture 100"):
            validate_instruction(auth, clearpay, InstructionKind.CAPTURE_NOW, amount, final=final)
    else:
        validate_instruction(auth, clearpay, InstructionKind.CAPTURE_NOW, amount, final=final)


def test_multi_capture_provider_accepts_a_partial_capture_without_final() -> None:
    validate_instruction(snapshot(), SMARTPAY, InstructionKind.CAPTURE_NOW, 4_000, final=False)


@pytest.mark.parametrize("kind", [InstructionKind.CAPTURE_NOW, InstructionKind.CAPTURE_AT_DEADLINE])
def test_amount_above_the_open_amount_is_refused(kind: InstructionKind) -> None:
    auth = snapshot(state=State.PARTIALLY_CAPTURED, captured_amount=3_000, capture_count=1)
    with pytest.raises(InstructionError, match="exceeds the open amount 7000"):
        validate_instruction(auth, SMARTPAY, kind, 7_001, final=True)
    validate_instruction(auth, SMARTPAY, kind, 7_000, final=True)


def test_provider_open_amount_bounds_an_instruction() -> None:
    auth = snapshot(provider_open_amount=2_000)
    with pytest.raises(InstructionError, match="exceeds"):
        validate_instruction(auth, SMARTPAY, InstructionKind.CAPTURE_NOW, 2_001, final=True)


@pytest.mark.parametrize("amount", [0, -1, -10_000])
def test_non_positive_amount_is_refused(amount: int) -> None:
    with pytest.raises(InstructionError, match="positive"):
        validate_instruction(snapshot(), SMARTPAY, InstructionKind.CAPTURE_NOW, amount, final=True)


def test_second_capture_on_a_single_capture_provider_is_refused() -> None:
    auth = snapshot(provider=ProviderName.FLITT, state=State.PARTIALLY_CAPTURED,
                    captured_amount=100, capture_count=1)
    with pytest.raises(InstructionError):
        validate_instruction(auth, rules(ProviderName.FLITT), InstructionKind.CAPTURE_NOW, None,
                             final=True)


def test_below_the_provider_minimum_is_refused() -> None:
    auth = snapshot(provider=ProviderName.CLEARPAY, currency="GBP")
    with pytest.raises(InstructionError, match="minimum"):
        validate_instruction(auth, rules(ProviderName.CLEARPAY), InstructionKind.CAPTURE_NOW, 99,
                             final=True)


@pytest.mark.parametrize("state", sorted(set(State) - {State.AUTHORIZED, State.PARTIALLY_CAPTURED}))
@pytest.mark.parametrize("kind", list(InstructionKind))
def test_instructions_on_states_that_are_not_open_are_refused(
    state: State, kind: InstructionKind
) -> None:
    with pytest.raises(InstructionError, match=f"is {state}"):
        validate_instruction(snapshot(state=state), SMARTPAY, kind, 1_000, final=True)


def test_cancel_needs_no_amount() -> None:
    validate_instruction(snapshot(), SMARTPAY, InstructionKind.CANCEL_NOW, None, final=False)


def test_default_amount_is_the_open_amount() -> None:
    auth = replace(snapshot(), provider_open_amount=2_000)
    validate_instruction(auth, SMARTPAY, InstructionKind.CAPTURE_NOW, None, final=False)
