"""Properties of the planner over generated authorizations, policies and instants (hypothesis)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from hypothesis import assume, given
from hypothesis import strategies as st

from tests.support.planning import T0, rules
from watchdog.config import PolicySettings
from watchdog.domain import (
    AlertStage,
    AuthorizationSnapshot,
    InstructionKind,
    OnDeadline,
    ProviderName,
    State,
)
from watchdog.policy import Decision, Step, deadline_of, open_amount, plan, timeline

MINUTE = 60
HOUR = 3600
ACTS = (Step.CAPTURE, Step.CANCEL)
OPEN = (State.AUTHORIZED, State.PARTIALLY_CAPTURED)
ZONES = [dt.UTC, ZoneInfo("Europe/London"), ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo"),
         ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe"),
         dt.timezone(dt.timedelta(hours=9)), dt.timezone(dt.timedelta(hours=-3, minutes=-30))]


@st.composite
def policies(draw: st.DrawFn) -> PolicySettings:
    """Policies that config validation accepts: alert >= capture > safety, critical <= alert."""
    safety = draw(st.integers(0, 2 * HOUR))
    capture = draw(st.integers(safety + 1, 5 * 24 * HOUR))
    alert = draw(st.integers(capture, 6 * 24 * HOUR))
    critical = draw(st.integers(0, alert))
    return PolicySettings(
        alert_lead=dt.timedelta(seconds=alert), capture_lead=dt.timedelta(seconds=capture),
        critical_lead=dt.timedelta(seconds=critical), safety_margin=dt.timedelta(seconds=safety),
        on_deadline=draw(st.sampled_from(OnDeadline)),
    )


def _instant(draw: st.DrawFn, low: int, high: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=draw(st.integers(low, high)))


@st.composite
def cases(
    draw: st.DrawFn, states: tuple[State, ...] = tuple(State)
) -> tuple[AuthorizationSnapshot, PolicySettings, dt.datetime]:
    """An authorization, a policy and a ``now`` somewhere around its life."""
    provider = draw(st.sampled_from(ProviderName))
    open_ = [x for x in states if x in OPEN]
    state = draw(st.sampled_from(states) | st.sampled_from(open_ or states))
    amount = draw(st.integers(1, 10**7))
    captured = 0
    if state is State.PARTIALLY_CAPTURED:
        captured = draw(st.integers(1, amount))
    elif state not in (State.AUTHORIZED,):
        captured = draw(st.integers(0, amount))
    capture_count = draw(st.integers(1, 3)) if captured else 0
    window = rules(provider).window
    span = int(window.total_seconds())
    instruction = draw(st.none() | st.sampled_from(InstructionKind))
    auth = AuthorizationSnapshot(
        id=1, provider=provider, order_id="o-1", amount=amount, currency="EUR",
        authorized_at=T0.astimezone(draw(st.sampled_from(ZONES))), state=state,
        captured_amount=captured, capture_count=capture_count,
        expires_at=draw(st.none() | st.builds(lambda s: T0 + dt.timedelta(seconds=s),
                                              st.integers(MINUTE, 2 * span))),
        provider_expires_at=draw(st.none() | st.builds(lambda s: T0 + dt.timedelta(seconds=s),
                                                       st.integers(MINUTE, 2 * span))),
        provider_open_amount=draw(st.none() | st.integers(0, amount)),
        on_deadline=draw(st.none() | st.sampled_from(OnDeadline)),
        capture_amount=draw(st.none() | st.integers(1, amount)),
        instruction=instruction,
        instruction_amount=draw(st.none() | st.integers(1, amount)) if instruction else None,
        instruction_final=draw(st.booleans()),
        alert_stage=draw(st.sampled_from(AlertStage)),
        not_before=draw(st.none() | st.none() | st.builds(lambda s: T0 + dt.timedelta(seconds=s),
                                              st.integers(0, 2 * span))),
    )
    policy = draw(policies())
    tl = timeline(auth, rules(provider), policy)
    if draw(st.booleans()):
        now = _instant(draw, -HOUR, span + 2 * 24 * HOUR)
    else:  # close to (often exactly at, or one second off) an instant where plans change
        anchor = draw(st.sampled_from(
            [tl.alert_at, tl.act_at, tl.critical_at, tl.guard_at, tl.deadline]))
        offset = draw(st.sampled_from([-1, 0, 1]) | st.integers(-2 * HOUR, 2 * HOUR))
        now = anchor + dt.timedelta(seconds=offset)
    now = now.astimezone(draw(st.sampled_from(ZONES)))
    synced = draw(st.none() | st.integers(0, 10 * span))
    if synced is not None:
        last = max(T0, now - dt.timedelta(seconds=synced))
        auth = _replace(auth, last_synced_at=min(last, now))
    return auth, policy, now


def _replace(auth: AuthorizationSnapshot, **changes: object) -> AuthorizationSnapshot:
    return replace(auth, **changes)  # type: ignore[arg-type]


def _replace_decision(decision: Decision, **changes: object) -> Decision:
    return replace(decision, **changes)  # type: ignore[arg-type]



@given(cases())
def test_never_acts_at_or_after_the_guard(
    case: tuple[AuthorizationSnapshot, PolicySettings, dt.datetime],
) -> None:
    auth, policy, now = case
    rules_ = rules(auth.provider)
    decision = plan(auth, rules_, policy, now)
    tl = timeline(auth, rules_, policy)
    if decision.step in ACTS:
        assert now < tl.guard_at
        assert now < tl.deadline
    if now >= tl.deadline:
        assert decision.step not in ACTS


@given(cases())
def test_capture_never_exceeds_the_open_amount(
    case: tuple[AuthorizationSnapshot, PolicySettings, dt.datetime],
) -> None:
    auth, policy, now = case
    rules_ = rules(auth.provider)
    decision = plan(auth, rules_, policy, now)
    if decision.step is Step.CAPTURE:
        assert decision.amount is not None
        assert 0 < decision.amount <= open_amount(auth, rules_)
        assert auth.captured_amount + decision.amount <= auth.amount
        if auth.provider_open_amount is not None:
            assert decision.amount <= auth.provider_open_amount
        if not rules_.multiple_captures:
            assert auth.capture_count == 0
    else:
        assert decision.amount is None


@given(cases(states=OPEN), st.integers(1, 20 * 24 * HOUR))
def test_open_authorization_is_looked_at_no_later_than_its_alert_time(
    case: tuple[AuthorizationSnapshot, PolicySettings, dt.datetime], before: int,
) -> None:
    auth, policy, _ = case
    rules_ = rules(auth.provider)
    tl = timeline(auth, rules_, policy)
    now = tl.alert_at - dt.timedelta(seconds=before)
    if auth.last_synced_at is not None and auth.last_synced_at > now:
        auth = _replace(auth, last_synced_at=now)
    decision = plan(auth, rules_, policy, now)
    assert decision.next_action_at is not None
    assert decision.next_action_at <= tl.alert_at


@given(cases(states=OPEN))
def test_open_authorization_always_has_a_next_action(
    case: tuple[AuthorizationSnapshot, PolicySettings, dt.datetime],
) -> None:
    auth, policy, now = case
    decision = plan(auth, rules(auth.provider), policy, now)
    assert decision.next_action_at is not None


@given(cases())
def test_next_action_is_never_in_the_past_and_now_only_for_immediate_steps(
    case: tuple[AuthorizationSnapshot, PolicySettings, dt.datetime],
) -> None:
    auth, policy, now = case
    decision = plan(auth, rules(auth.provider), policy, now)
    if decision.next_action_at is None:
        assert decision.step is Step.WAIT
        return
    assert decision.next_action_at >= now
    if decision.step is not Step.WAIT:
        assert decision.next_action_at == now
    else:
        assert decision.next_action_at > now


@given(cases(states=OPEN), st.floats(0.0, 1.0, exclude_max=True))
def test_nothing_becomes_due_before_next_action_at(
    case: tuple[AuthorizationSnapshot, PolicySettings, dt.datetime], fraction: float,
) -> None:
    """A scan that skips a row until ``next_action_at`` misses nothing in between."""
    auth, policy, now = case
    rules_ = rules(auth.provider)
    decision = plan(auth, rules_, policy, now)
    assume(decision.step is Step.WAIT and decision.next_action_at is not None)
    gap = decision.next_action_at - now
    later = now + dt.timedelta(microseconds=int(gap / dt.timedelta(microseconds=1) * fraction))
    for instant in (later, decision.next_action_at - dt.timedelta(microseconds=1)):
        if instant >= now:
            assert plan(auth, rules_, policy, instant).step is Step.WAIT


@given(cases(), st.sampled_from(ZONES), st.sampled_from(ZONES))
def test_offsets_of_the_inputs_do_not_change_the_decision(
    case: tuple[AuthorizationSnapshot, PolicySettings, dt.datetime],
    zone_auth: dt.tzinfo, zone_now: dt.tzinfo,
) -> None:
    auth, policy, now = case
    rules_ = rules(auth.provider)
    moved = _replace(
        auth, authorized_at=auth.authorized_at.astimezone(zone_auth),
        expires_at=auth.expires_at.astimezone(zone_auth) if auth.expires_at else None,
    )
    assert deadline_of(moved, rules_) == deadline_of(auth, rules_)
    # Compared in UTC: PEP 495 makes == across zones False for an ambiguous wall time.
    assert _in_utc(plan(moved, rules_, policy, now.astimezone(zone_now))) == _in_utc(
        plan(auth, rules_, policy, now))


def _in_utc(decision: Decision) -> Decision:
    at = decision.next_action_at
    return _replace_decision(decision, next_action_at=at.astimezone(dt.UTC) if at else None)


@given(st.sampled_from(ProviderName), st.sampled_from(ZONES),
       st.integers(0, 3 * 365 * 24 * HOUR))
def test_window_deadline_is_exactly_the_window_in_absolute_time(
    provider: ProviderName, zone: dt.tzinfo, seconds: int
) -> None:
    authorized_at = (T0 + dt.timedelta(seconds=seconds)).astimezone(zone)
    auth = AuthorizationSnapshot(
        id=1, provider=provider, order_id="o-1", amount=100, currency="EUR",
        authorized_at=authorized_at, state=State.AUTHORIZED,
    )
    deadline, _ = deadline_of(auth, rules(provider))
    assert deadline.timestamp() - authorized_at.timestamp() == rules(provider).window.total_seconds()
    assert deadline.utcoffset() == dt.timedelta(0)
