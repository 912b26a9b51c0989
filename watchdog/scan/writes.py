"""What one step of a row writes, gathered before it is written.

A step used to open a transaction, write, and commit. Now it fills a ``RowWrite``: the
guarded column values of the authorization, its audit events, the action it creates or
updates, the alerts it raises or resolves. ``watchdog.scan.committer`` writes many rows'
``RowWrite`` in one transaction, and each row's writes still stand or fall together:
if the row's guard (state, lease owner, generation) does not hold, none of them is applied.

The row object sees its new values at once, so the step can go on planning from them;
``undo`` puts the old ones back when the write is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from watchdog.alerting import AUTHORIZATION_KINDS, AlertKind
from watchdog.audit import AuditEvent
from watchdog.domain import ActionKind, State
from watchdog.errors import TransitionError
from watchdog.models import Action, Authorization


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
