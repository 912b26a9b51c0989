"""The authorization state machine: every legal ``from -> to``, keyed by the event that
makes it. Pure data, no I/O.

A guarded write names its event and the state it goes to; ``sources`` gives the states it
may start from, and those are what the write's ``state IN (...)`` checks (scan writes
also require the state they read, see ``watchdog.scan.writes.RowWrite.transition``).
A step that does not change the state is a row ``s -> s`` of its event: it says in which
states that step happens at all. A new state is a few rows here, nothing else.

Final states (``captured``, ``canceled``, ``expired``) leave only by bookkeeping that
keeps them (``park``, ``replan``); ``needs_attention`` leaves only by an operator's
``resolve``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from watchdog.domain import State

A = State.AUTHORIZED
PC = State.PARTIALLY_CAPTURED
CAPTURING = State.CAPTURING
CANCELING = State.CANCELING
CONF_CAPTURE = State.CONFIRMING_CAPTURE
CONF_CANCEL = State.CONFIRMING_CANCEL
CAPTURED = State.CAPTURED
CANCELED = State.CANCELED
EXPIRED = State.EXPIRED
ATTENTION = State.NEEDS_ATTENTION

OPEN = (A, PC)
IN_FLIGHT = (CAPTURING, CANCELING)
CONFIRMING = (CONF_CAPTURE, CONF_CANCEL)
NOT_FINAL = tuple(s for s in State if not s.is_final)


class Event(enum.StrEnum):
    """What makes a transition: a scan step, an outcome, or a person."""

    CLAIM = "claim"  # a worker leases the row (no state condition in the claim itself)
    PARK = "park"  # nothing due: drop the lease, come back at the next instant
    REPLAN = "replan"  # store the deadline and next instant after another change
    SYNC = "sync"  # the provider's status read and reconciled
    ALERT = "alert"  # approaching / critical deadline alert
    HOLD = "hold"  # a guard rail held the action back (dry run, pause, amount limit)
    DEFER = "defer"  # cannot act now (not configured, status read failed)
    INTENT = "intent"  # in flight: the action row is committed before the call
    SUCCEEDED = "succeeded"  # outcome succeeded / already done (confirmed)
    PENDING = "pending"  # outcome accepted, not final: confirm by status polls
    UNKNOWN = "unknown"  # outcome unknown: stays in flight for recovery
    RETRYABLE = "retryable"  # nothing moved: open again, retried later
    REJECTED = "rejected"  # the provider refused: a human decides
    CONFIRMED = "confirmed"  # a pending effect is confirmed by the provider
    CONFIRM_FAILED = "confirm_failed"  # a pending effect failed: open again
    CONFIRM_WAIT = "confirm_wait"  # still pending: poll again
    RECOVER = "recover"  # in flight without an outcome: ask again later
    EXPIRE = "expire"  # the deadline guard passed with money open
    ABANDON = "abandon"  # the deadline guard passed before the action could finish
    NEEDS_ATTENTION = "needs_attention"  # hand the row to a human
    UNKNOWN_ORDER = "unknown_order"  # the early read: the provider does not know the order
    INSTRUCT = "instruct"  # the merchant / an operator gives an instruction
    RESOLVE = "resolve"  # an operator says what they found at the provider


def _stay(states: Iterable[State]) -> frozenset[tuple[State, State]]:
    return frozenset((s, s) for s in states)


def _moves(sources: Iterable[State], targets: Iterable[State]) -> frozenset[tuple[State, State]]:
    targets = tuple(targets)
    return frozenset((s, t) for s in sources for t in targets)


TRANSITIONS: Mapping[Event, frozenset[tuple[State, State]]] = {
    Event.CLAIM: _stay(NOT_FINAL),
    # Never in flight: the planner says RECOVER there, never WAIT. A row the same step made
    # final (a sync that found it captured) is parked as it is.
    Event.PARK: _stay(s for s in State if s not in IN_FLIGHT),
    Event.REPLAN: _stay(State),
    # ``reconcile``: open rows only (sync, the status read before an action, the early read,
    # expiry's last read, a failed confirmation's read once the row is open again).
    Event.SYNC: _stay(OPEN)
    | {(A, PC)}
    | _moves(OPEN, (CAPTURED, EXPIRED, ATTENTION)),
    Event.ALERT: _stay(OPEN),
    Event.HOLD: _stay(OPEN),
    Event.DEFER: _stay(OPEN),
    Event.INTENT: _moves(OPEN, IN_FLIGHT),
    # A cancel after a partial capture leaves the row captured.
    Event.SUCCEEDED: _moves([CAPTURING], (CAPTURED, PC))
    | _moves([CANCELING], (CANCELED, CAPTURED)),
    Event.PENDING: frozenset({(CAPTURING, CONF_CAPTURE), (CANCELING, CONF_CANCEL)}),
    Event.UNKNOWN: _stay(IN_FLIGHT),
    Event.RETRYABLE: _moves(IN_FLIGHT, OPEN),
    Event.REJECTED: _moves(IN_FLIGHT, [ATTENTION]),
    Event.CONFIRMED: _moves([CONF_CAPTURE], (CAPTURED, PC))
    | _moves([CONF_CANCEL], (CANCELED, CAPTURED)),
    Event.CONFIRM_FAILED: _moves(CONFIRMING, OPEN),
    Event.CONFIRM_WAIT: _stay(CONFIRMING),
    Event.RECOVER: _stay(IN_FLIGHT),
    Event.EXPIRE: _moves(OPEN, [EXPIRED]),
    Event.ABANDON: _moves(IN_FLIGHT, [EXPIRED]),
    Event.NEEDS_ATTENTION: _moves(IN_FLIGHT + CONFIRMING, [ATTENTION]),
    Event.UNKNOWN_ORDER: _moves(OPEN, [ATTENTION]),
    Event.INSTRUCT: _stay(OPEN),
    Event.RESOLVE: _moves([ATTENTION], (CAPTURED, CANCELED, EXPIRED, A, PC)),
}
"""Every legal transition, by event."""

BOOKKEEPING = frozenset({Event.CLAIM, Event.PARK, Event.REPLAN})
"""Events that never change the state; the only ones a final state may meet."""


def _by_target() -> dict[tuple[Event, State], frozenset[State]]:
    table: dict[tuple[Event, State], set[State]] = {}
    for event, pairs in TRANSITIONS.items():
        for source, target in pairs:
            table.setdefault((event, target), set()).add(source)
    return {key: frozenset(sources) for key, sources in table.items()}


_SOURCES = _by_target()


def sources(event: Event, target: State) -> frozenset[State]:
    """The states ``event`` may move a row from into ``target`` (empty: never legal)."""
    return _SOURCES.get((event, target), frozenset())


def starts(event: Event) -> frozenset[State]:
    """Every state ``event`` may start from, whatever it leads to."""
    return frozenset(s for s, _ in TRANSITIONS[event])


def is_legal(event: Event, source: State, target: State) -> bool:
    """Whether ``event`` may move a row from ``source`` to ``target``."""
    return (source, target) in TRANSITIONS[event]


def targets(source: State) -> frozenset[State]:
    """Every state a row in ``source`` can reach in one transition (itself included when
    some event keeps it there)."""
    return frozenset(t for pairs in TRANSITIONS.values() for s, t in pairs if s is source)


def in_order(states: Iterable[State]) -> tuple[State, ...]:
    """``states`` in declaration order (a stable guard, so statements cache)."""
    chosen = set(states)
    return tuple(s for s in State if s in chosen)
