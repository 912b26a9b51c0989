"""PostgreSQL least privilege: migrations as the owner role, the daemon and API as a runtime
role that may only read and append the audit trail.

The role that owns ``audit_log`` can disable its triggers, alter or truncate it; so the
runtime role must not own it (it must not have run the migrations). ``grant_runtime`` gives
the runtime role what the service needs and no more: read/write on the working tables,
``SELECT, INSERT`` on ``audit_log``, ``SELECT`` on ``alembic_version``, the sequences, and
the same on tables later migrations create (default privileges of the owner).

``db upgrade`` connects with ``$WATCHDOG_DATABASE_OWNER_URL`` when it is set and then grants
the runtime privileges to the user of the configured ``database.url``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from watchdog.errors import WatchdogError

OWNER_URL_VARIABLE = "WATCHDOG_DATABASE_OWNER_URL"
APPEND_ONLY = ("audit_log",)
READ_ONLY = ("alembic_version",)


class RoleError(WatchdogError):
    """The runtime role cannot be given least privilege as asked."""


def owner_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The migration owner's URL, when migrations must not run as the runtime role."""
    env = os.environ if environ is None else environ
    return env.get(OWNER_URL_VARIABLE) or None


def runtime_role(database_url: str) -> str | None:
    """The user the service connects as (None for SQLite or a URL without one)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.username


def grant_runtime(owner: Engine, role: str) -> list[str]:
    """Give ``role`` the runtime privileges on ``owner``'s schema; return the statements run.
    RoleError when ``role`` owns ``audit_log`` (then no grant can take its power away)."""
    if owner.dialect.name != "postgresql":
        raise RoleError("roles exist on PostgreSQL only; SQLite relies on file permissions")
    quote = owner.dialect.identifier_preparer.quote
    who = quote(role)
    with owner.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                              {"r": role}).scalar()
        if not exists:
            raise RoleError(f"runtime role {role!r} does not exist: CREATE ROLE {who} LOGIN")
        audit_owner = conn.execute(text(
            "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = 'audit_log'")).scalar()
        if audit_owner == role:
            raise RoleError(
                f"runtime role {role!r} owns audit_log (it ran the migrations), so it could "
                "disable the append-only trigger: run migrations as a separate owner role "
                f"(${OWNER_URL_VARIABLE}) and ALTER TABLE ... OWNER TO that role")
        schema = quote(str(conn.execute(text("SELECT current_schema()")).scalar_one()))
        statements = [
            f"GRANT USAGE ON SCHEMA {schema} TO {who}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {who}",
            *(f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {t} FROM {who}"
              for t in APPEND_ONLY),
            *(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {t} FROM {who}"
              for t in READ_ONLY),
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {who}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE "
            f"ON TABLES TO {who}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE "
            f"ON SEQUENCES TO {who}",
        ]
        for statement in statements:
            conn.execute(text(statement))
    return statements
