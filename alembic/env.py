"""Alembic environment. ``watchdog.schema`` hands in a live connection (or an engine); the
``alembic`` command run from a checkout (``alembic.ini`` at the repository root) gets the
database of the watchdog's own configuration, as ``expiry-watchdog`` would open it."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

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


def _configured_engine() -> tuple[Engine, str]:
    """The engine on the configured database ($WATCHDOG_DATABASE_URL, else database.url of
    $WATCHDOG_CONFIG or ./watchdog.toml) and its URL (to redact it from any error). The URL
    is never written into the ini: a password must not pass through ConfigParser."""
    from watchdog.config import load_config
    from watchdog.errors import WatchdogError
    from watchdog.service import open_engine

    try:
        watchdog_config = load_config(None)
        return open_engine(watchdog_config), watchdog_config.database_url
    except WatchdogError as exc:
        raise SystemExit(f"error: {exc}") from None


def run_migrations_online() -> None:
    """Run against the connection handed in, else the engine handed in, else (the
    ``alembic`` command) the configured database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = config.attributes.get("engine")
    if engine is not None:
        with engine.connect() as conn:
            _run(conn)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine, url = _configured_engine()
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            from watchdog.dberrors import describe

            raise SystemExit(f"error: {describe(exc, url)}") from None
        with conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `alembic upgrade` online "
                     "or `expiry-watchdog db upgrade`")
run_migrations_online()
