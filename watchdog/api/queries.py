"""Reads the service layer does not offer: a filtered, cursor-paginated list; record views."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from watchdog import service, store
from watchdog.db import transaction
from watchdog.domain import ProviderName, State
from watchdog.errors import ValidationError
from watchdog.models import Authorization
from watchdog.planner import Planner

MAX_ID = 2**63 - 1
_CURSOR_PREFIX = "a:"


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that resumes after ``last_id``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor resumes after; ValidationError('cursor') if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise ValidationError("cursor", "is not a cursor this API returned") from None
    digits = raw.removeprefix(_CURSOR_PREFIX)
    if not raw.startswith(_CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 19:
        raise ValidationError("cursor", "is not a cursor this API returned")
    value = int(digits)
    if value > MAX_ID:
        raise ValidationError("cursor", "is not a cursor this API returned")
    return value


@dataclass(frozen=True, slots=True)
class Page:
    """One page of authorizations and the cursor to the next, if any."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def list_authorizations(
    engine: Engine, *, provider: ProviderName | None, state: State | None,
    due_before: dt.datetime | None, after_id: int, limit: int, account: str | None = None,
) -> Page:
    """Authorizations ordered by id, after ``after_id``, filtered."""
    stmt = select(Authorization).where(Authorization.id > after_id)
    if provider is not None:
        stmt = stmt.where(Authorization.provider == provider.value)
    if account is not None:
        stmt = stmt.where(Authorization.account == account)
    if state is not None:
        stmt = stmt.where(Authorization.state == state.value)
    if due_before is not None:
        stmt = stmt.where(Authorization.next_action_at.is_not(None),
                          Authorization.next_action_at <= due_before)
    stmt = stmt.order_by(Authorization.id).limit(limit + 1)
    with transaction(engine) as session:
        rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[service.authorization_dict(r) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )


def record_view(planner: Planner, row: Authorization) -> dict[str, Any]:
    """An authorization with its planned timeline (the register/get answer)."""
    tl = planner.timeline(store.snapshot(row))
    return {
        "authorization": service.authorization_dict(row),
        "timeline": {
            "alert_at": tl.alert_at.isoformat(), "act_at": tl.act_at.isoformat(),
            "critical_at": tl.critical_at.isoformat(), "guard_at": tl.guard_at.isoformat(),
            "deadline": tl.deadline.isoformat(), "deadline_source": tl.deadline_source.value,
        },
    }


def get_record(engine: Engine, planner: Planner, authorization_id: int) -> dict[str, Any]:
    """One authorization's record view, or NotFoundError."""
    with transaction(engine) as session:
        row = store.get(session, authorization_id)
    return record_view(planner, row)


def current_state(engine: Engine, authorization_id: int) -> State | None:
    """The row's state now (None if it does not exist)."""
    with transaction(engine) as session:
        value = session.execute(
            select(Authorization.state).where(Authorization.id == authorization_id)
        ).scalar_one_or_none()
    return State(value) if value is not None else None
