"""What a worker learns about its rows when it claims them, so group writes need not ask.

Claiming a batch also reads the batch's actions and which rows have alerts open (two
queries per batch instead of two per group write). While the lease is ours no other
worker writes these rows' actions or raises their alerts, so the worker keeps the
facts current from its own committed writes. A fact that is stale anyway (an operator
edited the database by hand) costs a row, never money: the unique idempotency key
refuses a duplicate intent, and that row waits for the next pass, which reads afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from watchdog.alerts.outbox import AUTHORIZATION_KINDS, AlertStatus, dedup_key
from watchdog.domain import ActionStatus
from watchdog.models import Action, Alert, Installation
from watchdog.scan.writes import RowWrite

ACTIONS = cast(Table, Action.__table__)
ALERTS = cast(Table, Alert.__table__)


@dataclass
class ActionFacts:
    """One action row as far as choosing the next intent's attempt and key needs."""

    kind: str
    seq: int
    attempt: int
    status: ActionStatus
    amount: int | None
    final: bool
    idempotency_key: str
    sends: int
    recoveries: int


class KnownRows:
    """The actions and open alerts of the rows this worker claimed in this pass."""

    def __init__(self) -> None:
        self._actions: dict[int, dict[str, ActionFacts]] = {}
        self._alerting: set[int] = set()
        self._installation: str | None = None

    def forget(self) -> None:
        """A new pass: nothing is known until claimed."""
        self._actions.clear()
        self._alerting.clear()
        self._installation = None

    def installation(self, session: Session) -> str:
        """This database's installation id (the prefix of every idempotency key), read once
        per pass: it never changes, and reading it per group write was a query each."""
        if self._installation is None:
            self._installation = str(session.connection().execute(
                select(Installation.id).limit(1)).scalar_one())
        return self._installation

    def load(self, session: Session, authorization_ids: Sequence[int]) -> None:
        """Read the actions and open alerts of freshly claimed rows."""
        if not authorization_ids:
            return
        for row_id in authorization_ids:
            self._actions[row_id] = {}
        for found in session.execute(
            select(
                ACTIONS.c.authorization_id,
                ACTIONS.c.kind,
                ACTIONS.c.seq,
                ACTIONS.c.attempt,
                ACTIONS.c.status,
                ACTIONS.c.amount,
                ACTIONS.c.final,
                ACTIONS.c.idempotency_key,
                ACTIONS.c.sends,
                ACTIONS.c.recoveries,
            ).where(ACTIONS.c.authorization_id.in_(list(authorization_ids)))
        ):
            self._actions[found.authorization_id][found.idempotency_key] = facts_of(found)
        keys = [
            dedup_key(kind, row_id) for row_id in authorization_ids for kind in AUTHORIZATION_KINDS
        ]
        self._alerting.update(
            row_id
            for (row_id,) in session.execute(
                select(ALERTS.c.authorization_id).where(
                    ALERTS.c.dedup_key.in_(keys),
                    ALERTS.c.status.in_([AlertStatus.FIRING.value, AlertStatus.ACKNOWLEDGED.value]),
                )
            )
            if row_id is not None
        )

    def actions_of(self, authorization_id: int) -> list[ActionFacts] | None:
        """The row's actions, or None when the row was not claimed in this pass."""
        known = self._actions.get(authorization_id)
        return None if known is None else list(known.values())

    def may_have_alerts(self, authorization_id: int) -> bool:
        """False only when the row is known to have no alert open."""
        return authorization_id not in self._actions or authorization_id in self._alerting

    def alert_raised(self, authorization_id: int) -> None:
        """An alert about the row was (or is about to be) raised."""
        self._alerting.add(authorization_id)

    def committed(self, writes: Iterable[RowWrite]) -> None:
        """Keep the facts current with writes that were committed."""
        for write in writes:
            row_id = write.row.id
            if write.alerts:
                self._alerting.add(row_id)
            known = self._actions.get(row_id)
            if known is None:
                continue
            if write.intent is not None and write.intent.action is not None:
                action = write.intent.action
                known[action.idempotency_key] = facts_of(action)
            for key, values in write.action_updates:
                facts = known.get(key)
                if facts is None:
                    continue
                for name in ("status", "sends", "recoveries"):
                    if name in values:
                        setattr(facts, name, values[name])


def facts_of(action: Any) -> ActionFacts:
    """The facts of an action row or object."""
    return ActionFacts(
        kind=action.kind,
        seq=action.seq,
        attempt=action.attempt,
        status=action.status,
        amount=action.amount,
        final=action.final,
        idempotency_key=action.idempotency_key,
        sends=action.sends,
        recoveries=action.recoveries,
    )
