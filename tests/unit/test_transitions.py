"""The state machine table: reachability, final states, and the transitions the code makes."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from tests.support.planning import T0, snapshot
from watchdog.domain import FINAL_STATES, ProviderName, State
from watchdog.providers.base import Outcome, ProviderResult, ProviderSnapshot, ProviderState
from watchdog.reconcile import reconcile
from watchdog.transitions import (
    BOOKKEEPING,
    IN_FLIGHT,
    OPEN,
    TRANSITIONS,
    Event,
    in_order,
    is_legal,
    sources,
    targets,
)

S = State


def test_every_event_has_transitions() -> None:
    assert set(TRANSITIONS) == set(Event)
    assert all(TRANSITIONS[event] for event in Event)


def test_every_state_is_reachable_from_authorized() -> None:
    seen = {S.AUTHORIZED}
    frontier = [S.AUTHORIZED]
    while frontier:
        for target in targets(frontier.pop()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(State)


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
def test_a_final_state_is_only_kept(final: State) -> None:
    """Nothing leaves a final state; only bookkeeping (park, replan) meets one."""
    for event, pairs in TRANSITIONS.items():
        out = {(s, t) for s, t in pairs if s is final}
        assert all(t is final for _, t in out), event
        if out:
            assert event in BOOKKEEPING, event


def test_needs_attention_is_left_only_by_an_operator() -> None:
    leaving = {
        event
        for event, pairs in TRANSITIONS.items()
        for s, t in pairs
        if s is S.NEEDS_ATTENTION and t is not S.NEEDS_ATTENTION
    }
    assert leaving == {Event.RESOLVE}


def test_in_flight_is_entered_only_by_an_intent_from_an_open_state() -> None:
    entering = {
        (event, s)
        for event, pairs in TRANSITIONS.items()
        for s, t in pairs
        if t in IN_FLIGHT and s not in IN_FLIGHT
    }
    assert {event for event, _ in entering} == {Event.INTENT}
    assert {s for _, s in entering} == set(OPEN)


def test_money_moves_only_from_in_flight_or_confirming_or_a_provider_or_a_person() -> None:
    """captured / canceled are reached by our effect (outcome, confirmation), by what the
    provider reports (sync), or by an operator; never by an alert, hold, defer or expiry."""
    for target in (S.CAPTURED, S.CANCELED):
        events = {e for e, pairs in TRANSITIONS.items() for s, t in pairs if t is target and s != t}
        assert events <= {Event.SUCCEEDED, Event.CONFIRMED, Event.SYNC, Event.RESOLVE}, target
    # Our model never files a release we did not ask for as our cancel.
    assert sources(Event.SYNC, S.CANCELED) == frozenset()


def test_sources_and_is_legal_agree_with_the_table() -> None:
    for event, source, target in itertools.product(Event, State, State):
        assert is_legal(event, source, target) == (source in sources(event, target))


def test_in_order_is_declaration_order() -> None:
    assert in_order({S.PARTIALLY_CAPTURED, S.AUTHORIZED}) == (S.AUTHORIZED, S.PARTIALLY_CAPTURED)


# The transitions the scan makes, as the code makes them (event, from, to). The scan also
# refuses at run time any write whose (event, from, to) is not in the table
# (``RowWrite.transition``), so the integration suites check the same from the other side.
CODE_TRANSITIONS = [
    *((Event.INTENT, s, t) for s in OPEN for t in IN_FLIGHT),  # actions.commit_intent
    (Event.SUCCEEDED, S.CAPTURING, S.CAPTURED),  # outcome.record_outcome / effect_values
    (Event.SUCCEEDED, S.CAPTURING, S.PARTIALLY_CAPTURED),
    (Event.SUCCEEDED, S.CANCELING, S.CANCELED),
    (Event.SUCCEEDED, S.CANCELING, S.CAPTURED),  # cancel of the remainder
    (Event.PENDING, S.CAPTURING, S.CONFIRMING_CAPTURE),
    (Event.PENDING, S.CANCELING, S.CONFIRMING_CANCEL),
    (Event.UNKNOWN, S.CAPTURING, S.CAPTURING),
    (Event.UNKNOWN, S.CANCELING, S.CANCELING),
    *((Event.RETRYABLE, s, t) for s in IN_FLIGHT for t in OPEN),  # prior_state
    *((Event.REJECTED, s, S.NEEDS_ATTENTION) for s in IN_FLIGHT),
    (Event.CONFIRMED, S.CONFIRMING_CAPTURE, S.CAPTURED),  # confirm.confirm
    (Event.CONFIRMED, S.CONFIRMING_CAPTURE, S.PARTIALLY_CAPTURED),
    (Event.CONFIRMED, S.CONFIRMING_CANCEL, S.CANCELED),
    (Event.CONFIRMED, S.CONFIRMING_CANCEL, S.CAPTURED),
    *((Event.CONFIRM_FAILED, s, t) for s in (S.CONFIRMING_CAPTURE, S.CONFIRMING_CANCEL)
      for t in OPEN),
    (Event.CONFIRM_WAIT, S.CONFIRMING_CAPTURE, S.CONFIRMING_CAPTURE),
    (Event.CONFIRM_WAIT, S.CONFIRMING_CANCEL, S.CONFIRMING_CANCEL),
    *((Event.RECOVER, s, s) for s in IN_FLIGHT),  # recovery.recover
    *((Event.NEEDS_ATTENTION, s, S.NEEDS_ATTENTION)  # recovery.needs_attention
      for s in (*IN_FLIGHT, S.CONFIRMING_CAPTURE, S.CONFIRMING_CANCEL)),
    *((Event.EXPIRE, s, S.EXPIRED) for s in OPEN),  # stages.expire
    *((Event.ABANDON, s, S.EXPIRED) for s in IN_FLIGHT),  # outcome.outcome_too_late
    *((Event.ALERT, s, s) for s in OPEN),  # stages.alert_stage
    *((Event.HOLD, s, s) for s in OPEN),  # guards.hold
    *((Event.DEFER, s, s) for s in OPEN),  # guards.defer
    *((Event.UNKNOWN_ORDER, s, S.NEEDS_ATTENTION) for s in OPEN),  # early.early_read
    *((Event.SYNC, s, s) for s in OPEN),  # sync.status_into without a snapshot
    *((Event.PARK, s, s) for s in State if s not in IN_FLIGHT),  # context.park
    *((Event.REPLAN, s, s) for s in State),  # context.replan_into
    *((Event.RESOLVE, S.NEEDS_ATTENTION, t)  # service.resolve_attention
      for t in (S.AUTHORIZED, S.PARTIALLY_CAPTURED, S.CAPTURED, S.CANCELED, S.EXPIRED)),
    *((Event.INSTRUCT, s, s) for s in OPEN),  # service._instruct
]


@pytest.mark.parametrize(("event", "source", "target"), CODE_TRANSITIONS)
def test_every_transition_the_code_makes_is_in_the_table(
    event: Event, source: State, target: State
) -> None:
    assert is_legal(event, source, target)


def test_every_state_reconcile_gives_an_open_row_is_a_sync_transition() -> None:
    """``sync.reconcile_into`` applies ``reconcile``: whatever it answers for an open row
    (every provider state, with and without money captured, amounts shown or not) is in
    the table."""
    now = T0 + dt.timedelta(days=2)
    rows = [
        snapshot(),
        snapshot(state=S.PARTIALLY_CAPTURED, captured_amount=3_000, capture_count=1),
        snapshot(state=S.PARTIALLY_CAPTURED, captured_amount=0, capture_count=1),
    ]
    for row, state, captured, currency in itertools.product(
        rows, ProviderState, (None, 0, 3_000, 5_000, 10_000), ("JPY", "USD", None)
    ):
        answer = ProviderResult(
            Outcome.SUCCEEDED, "status", ProviderName.SMARTPAY,
            snapshot=ProviderSnapshot(state, state.value, captured_amount=captured,
                                      currency=currency),
        )
        new_state = reconcile(row, answer, now).new_state
        target = row.state if new_state is None else new_state
        assert is_legal(Event.SYNC, row.state, target), (row.state, state, captured, currency)


def test_the_action_status_column_keeps_its_strings_and_refuses_strangers() -> None:
    """ActionStatus is an enum on its column, stored as the same strings as before."""
    from sqlalchemy.dialects import sqlite

    from watchdog.domain import ActionStatus
    from watchdog.models import Action

    dialect = sqlite.dialect()
    status_type = Action.__table__.c.status.type  # type: ignore[attr-defined]
    assert status_type.process_bind_param(ActionStatus.UNKNOWN, dialect) == "unknown"
    assert type(status_type.process_bind_param("unknown", dialect)) is str
    assert status_type.process_result_value("retryable", dialect) is ActionStatus.RETRYABLE
    with pytest.raises(ValueError, match="sent"):
        status_type.process_bind_param("sent", dialect)
    # A compared value is taken as a plain string.
    compared = status_type.coerce_compared_value(None, "pend%")
    assert compared.process_bind_param("pend%", dialect) == "pend%"
    assert compared.process_bind_param(ActionStatus.PENDING, dialect) == "pending"


def test_a_write_names_its_transition_and_an_illegal_one_is_refused_before_sql() -> None:
    from watchdog.errors import TransitionError
    from watchdog.models import Authorization
    from watchdog.scan.writes import RowWrite

    row = Authorization(id=7, state=S.AUTHORIZED.value, generation=1)
    write = RowWrite(row=row, worker="w1", now=T0)
    with pytest.raises(TransitionError, match="expire may go to captured only from nowhere"):
        write.transition(Event.EXPIRE, {"state": S.CAPTURED.value})
    with pytest.raises(TransitionError, match="this step read it capturing"):
        write.transition(Event.SUCCEEDED, {"state": S.CAPTURED.value}, read=S.CAPTURING)
    assert row.state == S.AUTHORIZED and write.guard is None and not write.values

    # The guard is the table's from-states narrowed to the state read ...
    write.transition(Event.EXPIRE, {"state": S.EXPIRED.value, "updated_at": T0})
    assert write.guard == ("authorized",) and row.state == S.EXPIRED
    # ... or, for an intent, every from-state the table allows.
    intent = RowWrite(row=Authorization(id=8, state=S.PARTIALLY_CAPTURED.value), worker="w1",
                      now=T0 + dt.timedelta(seconds=1))
    intent.transition(Event.INTENT, {"state": S.CAPTURING.value}, any_source=True)
    assert intent.guard == ("authorized", "partially_captured")
