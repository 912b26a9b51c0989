"""Operator switches stored in the database, so every instance obeys them at once:
pause (globally or per provider) and approvals of captures above ``max_capture_amount``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from watchdog import audit
from watchdog.accounts import account_problem, parse_target
from watchdog.audit import AuditEvent
from watchdog.db import transaction
from watchdog.domain import ProviderName
from watchdog.models import Control
from watchdog.text import printable

GLOBAL = "*"


@dataclass(frozen=True, slots=True)
class Pause:
    """Who paused what, when, and why."""

    scope: str  # "*", a provider name, or "<provider>/<account>" (one merchant account)
    reason: str
    actor: str
    since: dt.datetime


def _pause_key(scope: str) -> str:
    return f"pause:{scope}"


def _approval_key(authorization_id: int) -> str:
    return f"approve:{authorization_id}"


def pauses(session: Session) -> dict[str, Pause]:
    """Every pause in force, by scope."""
    rows = session.scalars(select(Control).where(Control.key.like("pause:%")))
    return {
        row.key.split(":", 1)[1]: Pause(
            row.key.split(":", 1)[1], json.loads(row.value)["reason"], row.actor, row.updated_at
        )
        for row in rows
    }


def pause_for(
    all_pauses: dict[str, Pause], provider: ProviderName | str, account: str | None = None
) -> Pause | None:
    """The pause that stops money moving for ``provider`` (and its ``account``), if any:
    all providers, the whole provider, or that one account."""
    found = all_pauses.get(GLOBAL) or all_pauses.get(str(provider))
    if found is None and account is not None:
        found = all_pauses.get(f"{provider}/{account}")
    return found


def _audit_provider(scope: str) -> str | None:
    return None if scope == GLOBAL else scope.partition("/")[0]


def pause(engine: Engine, scope: str, reason: str, actor: str, now: dt.datetime) -> None:
    """Stop moving money (globally or for one provider); planning and alerting go on."""
    _check_scope(scope)
    if not reason.strip():
        raise ValueError("--reason is required: say why money movement is paused")
    printable("--reason", reason)
    with transaction(engine) as session:
        row = session.get(Control, _pause_key(scope))
        value = json.dumps({"reason": reason})
        if row is None:
            session.add(Control(key=_pause_key(scope), value=value, actor=actor, updated_at=now))
        else:
            row.value, row.actor, row.updated_at = value, actor, now
        audit.append(
            session,
            [
                AuditEvent(
                    event="operator:pause:set",
                    actor=actor,
                    provider=_audit_provider(scope),
                    detail={"scope": scope, "reason": reason},
                )
            ],
            now,
        )


def resume(engine: Engine, scope: str, actor: str, now: dt.datetime) -> bool:
    """Lift a pause; False if there was none for ``scope``."""
    _check_scope(scope)
    with transaction(engine) as session:
        deleted = session.execute(delete(Control).where(Control.key == _pause_key(scope)))
        if not deleted.rowcount:  # type: ignore[attr-defined]
            return False
        audit.append(
            session,
            [
                AuditEvent(
                    event="operator:pause:lift",
                    actor=actor,
                    provider=_audit_provider(scope),
                    detail={"scope": scope},
                )
            ],
            now,
        )
    return True


def approve(
    engine: Engine, authorization_id: int, actor: str, now: dt.datetime, note: str = ""
) -> None:
    """Allow an automatic capture above ``max_capture_amount`` for one authorization."""
    from watchdog import store

    printable("--note", note)
    with transaction(engine) as session:
        row = store.get(session, authorization_id)
        key = _approval_key(authorization_id)
        value = json.dumps({"note": note})
        existing = session.get(Control, key)
        if existing is None:
            session.add(Control(key=key, value=value, actor=actor, updated_at=now))
        audit.append(
            session,
            [
                audit.about(
                    row,
                    "operator:capture:approve",
                    actor,
                    amount=row.amount,
                    detail={"note": note},
                )
            ],
            now,
        )
        # Let the next pass act at once instead of waiting for the held row's retry time.
        row.not_before = None
        row.next_action_at = now


def is_approved(session: Session, authorization_id: int) -> bool:
    """Has an operator approved an above-limit capture for this authorization?"""
    return session.get(Control, _approval_key(authorization_id)) is not None


def _check_scope(scope: str) -> None:
    provider, account = parse_target(scope)
    if scope != GLOBAL and provider not in {p.value for p in ProviderName}:
        raise ValueError(
            f"--provider: {provider!r} is not one of {', '.join(p.value for p in ProviderName)}"
        )
    if account is not None and account_problem(account) is not None:
        raise ValueError(f"--account: {account_problem(account)}")


def scope_of(provider: str, account: str | None) -> str:
    """The pause scope of ``--provider`` and ``--account`` (``flitt/ge-shop``)."""
    if account is None:
        return provider
    if provider == GLOBAL:
        raise ValueError("--account: needs --provider (an account is one provider's)")
    return f"{provider}/{account}"
