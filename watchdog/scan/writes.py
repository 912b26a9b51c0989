"""What one step of a row writes, gathered before it is written.

No step of the scan opens a write transaction: each fills a ``RowWrite`` (the guarded
column values of the authorization, its audit events, the action it creates or updates,
the alerts it raises or resolves) and hands it to ``watchdog.scan.committer``, the one
writer, which writes many rows' ``RowWrite`` in one transaction. Each row's writes still
stand or fall together: if the row's guard (state, lease owner, generation) does not
hold, none of them is applied.

A write that touches the authorization names its transition (``RowWrite.transition``):
the event of ``watchdog.transitions`` and the state it goes to. The table's from-states
for that pair, narrowed to the state the step read, are the guard.

The row object sees its new values at once, so the step can go on planning from them;
``undo`` puts the old ones back when the write is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from watchdog.alerts.outbox import AUTHORIZATION_KINDS, AlertKind
from watchdog.audit import AuditEvent
from watchdog.domain import ActionKind, State
from watchdog.errors import TransitionError
from watchdog.models import Action, Authorization
from watchdog.transitions import Event, in_order, sources


@dataclass(eq=False)
class Intent:
    """A capture or cancel to commit before the provider is called.

    The action row (a retryable one with the same amount is reused, hence the same
    idempotency key) is chosen inside the committing transaction; ``event`` builds the
    intent's audit row once that action is known, and ``action`` holds it afterwards.
    """

    kind: ActionKind
    seq: int
    amount: int | None
    final: bool
    actor: str
    created_at: dt.datetime
    event: Callable[[Action], AuditEvent]
    action: Action | None = None


@dataclass(eq=False)
class RowWrite:
    """Everything one step of one authorization writes, applied all or nothing."""

    row: Authorization
    worker: str
    now: dt.datetime
    guard: tuple[str, ...] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)
    intent: Intent | None = None
    action_updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    alerts: list[Callable[[Session], None]] = field(default_factory=list)
    resolutions: list[tuple[tuple[AlertKind, ...], str]] = field(default_factory=list)
    release: bool = False
    _before: dict[str, Any] = field(default_factory=dict)

    def transition(
        self,
        event: Event,
        values: dict[str, Any],
        *,
        read: State | None = None,
        any_source: bool = False,
    ) -> None:
        """Make the table's ``event`` transition to ``values["state"]`` (or, without one,
        stay where the row is), setting ``values``.

        The guard is the table's from-states for (``event``, target). Unless
        ``any_source``, it is narrowed to the state the step read (``read``, by default
        the row's state as it stands in this write): the step computed ``values`` from
        that state (amounts, the prior open state, the plan). Under our lease no other
        worker changes the row, so the narrowing only refuses what the lease cannot
        fence (a change by hand); either way an illegal transition never reaches SQL.
        """
        current = State(self.row.state)
        target = State(values.get("state", current))
        allowed = sources(event, target)
        if not any_source:
            allowed = allowed & {read if read is not None else current}
        if current not in allowed:
            raise TransitionError(
                self.row.id,
                target.value,
                f"it is {current}; {event} may go to {target} only from "
                f"{', '.join(in_order(sources(event, target))) or 'nowhere'}"
                + (f" and this step read it {read}" if read is not None else ""),
            )
        self.update(in_order(allowed), values)

    def update(self, allowed: Sequence[State], values: dict[str, Any]) -> None:
        """Set columns, provided the row is in ``allowed`` (and still under our lease when
        written). A second update in the same write must fit the state the first one left."""
        if self.row.state not in {s.value for s in allowed}:
            raise TransitionError(
                self.row.id,
                str(values.get("state", self.row.state)),
                f"it is {self.row.state}, expected one of {', '.join(s.value for s in allowed)}",
            )
        if self.guard is None:
            self.guard = tuple(s.value for s in allowed)
        for key, value in values.items():
            if key not in self._before:
                self._before[key] = getattr(self.row, key)
            setattr(self.row, key, value)
        self.values.update(values)

    def update_action(self, idempotency_key: str, values: dict[str, Any]) -> None:
        """Set columns of the action with this key."""
        self.action_updates.append((idempotency_key, values))

    def resolve(self, reason: str, kinds: tuple[AlertKind, ...] = AUTHORIZATION_KINDS) -> None:
        """Resolve the row's firing alerts of ``kinds`` when this write is applied."""
        self.resolutions.append((kinds, reason))

    @property
    def target_state(self) -> str:
        """The state the row is in once written (for error messages)."""
        return str(self.values.get("state", self.row.state))

    def undo(self) -> None:
        """The write was refused: give the row object its old values back."""
        for key, value in self._before.items():
            setattr(self.row, key, value)
        self._before.clear()
