"""Alembic environment: the URL (or a live connection) is handed in by ``watchdog.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from watchdog.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    if connection.dialect.name == "postgresql":
        # Never wait forever behind a long transaction of a running daemon.
        connection.exec_driver_sql("SET lock_timeout = '10s'")
        connection.exec_driver_sql("SET statement_timeout = '5min'")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection handed in, else the engine handed in (``watchdog.migrate``
    never writes the URL into the ini: a password must not pass through ConfigParser)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = config.attributes.get("engine")
    if engine is None:
        raise SystemExit("run migrations through `expiry-watchdog db upgrade`")
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `expiry-watchdog db upgrade`")
run_migrations_online()
