"""Bearer tokens for the HTTP API: created once, stored as a SHA-256 hash, revocable.

A token is ``ew_`` + 32 random bytes (URL-safe base64). Only its hash is stored; the
secret is shown once, when it is created. Creating and revoking are audited under
``tokens:<name>:create`` / ``tokens:<name>:revoke`` without the secret.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from watchdog import audit
from watchdog.audit import AuditEvent
from watchdog.db import transaction
from watchdog.errors import WatchdogError
from watchdog.models import ApiToken

PREFIX = "ew_"
# Matched with fullmatch: "$" also matches before a final newline ("shop\n" passed).
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,48}")
_TOKEN = re.compile(r"ew_[A-Za-z0-9_\-]{43}")
LAST_USED_GRANULARITY = dt.timedelta(minutes=1)  # at most one write per token per minute


class Scope(enum.StrEnum):
    """What a token may do."""

    READ = "read"
    WRITE = "write"


class TokenError(WatchdogError):
    """A token could not be created or revoked; the message says why."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token, without its secret."""

    name: str
    scope: Scope
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def validate_name(name: str) -> str:
    """A token name usable in an audit actor (``api:<name>``) and event; or TokenError."""
    if not _NAME.fullmatch(name):
        raise TokenError(
            f"token name {name!r} must be 1-48 characters of letters, digits, _ . -"
        )
    return name


def create(engine: Engine, name: str, scope: Scope, actor: str, now: dt.datetime) -> str:
    """Store a new token and return its secret (the only time it exists in clear)."""
    validate_name(name)
    secret = PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction(engine) as session:
            session.add(ApiToken(name=name, scope=scope.value, token_hash=hash_token(secret),
                                 created_at=now))
            session.flush()
            audit.append(session, [AuditEvent(
                event=f"tokens:{name}:create", actor=actor, detail={"scope": scope.value},
            )], now)
    except IntegrityError:
        raise TokenError(
            f"a token named {name!r} already exists; revoke it or choose another name"
        ) from None
    return secret


def revoke(engine: Engine, name: str, actor: str, now: dt.datetime) -> None:
    """Revoke a token by name; the API refuses it from the next request on."""
    with transaction(engine) as session:
        result = session.execute(
            update(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now).returning(ApiToken.scope)
        ).scalar_one_or_none()
        if result is None:
            raise TokenError(f"no active token named {name!r} (see `expiry-watchdog tokens list`)")
        audit.append(session, [AuditEvent(
            event=f"tokens:{name}:revoke", actor=actor, detail={"scope": result},
        )], now)


def list_tokens(engine: Engine) -> list[TokenInfo]:
    """Every token ever created, oldest first (revoked ones included)."""
    with transaction(engine) as session:
        rows = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
        return [TokenInfo(r.name, Scope(r.scope), r.created_at, r.revoked_at, r.last_used_at)
                for r in rows]


def authenticate(engine: Engine, token: str, now: dt.datetime) -> TokenInfo | None:
    """The active token matching ``token``, or None. Nothing about why is returned."""
    if not _TOKEN.fullmatch(token):
        return None
    digest = hash_token(token)
    with transaction(engine) as session:
        row = session.execute(
            select(ApiToken).where(ApiToken.token_hash == digest)
        ).scalar_one_or_none()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        if row.revoked_at is not None:
            return None
        info = TokenInfo(row.name, Scope(row.scope), row.created_at, row.revoked_at,
                         row.last_used_at)
    if info.last_used_at is None or now - info.last_used_at >= LAST_USED_GRANULARITY:
        with transaction(engine) as session:
            session.execute(update(ApiToken).where(ApiToken.token_hash == digest)
                            .values(last_used_at=now))
    return info
