"""Engines and transactions: SQLite (embedded default, WAL) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000

T = TypeVar("T")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine tuned for the watchdog's short write transactions.

    SQLite gets WAL (the daemon and the CLI share the file), a busy timeout, and
    ``BEGIN IMMEDIATE`` so two writers queue instead of failing with "database is locked".
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    """True on PostgreSQL (``SKIP LOCKED``, advisory locks, triggers)."""
    return engine.dialect.name == "postgresql"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (we pass snapshots, not live rows)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One short transaction: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


class TransactionRunner:
    """Runs a function in one transaction from the event loop, holding the loop up as
    little as the database allows.

    PostgreSQL goes through SQLAlchemy's asyncio driver: while the server answers, the
    loop goes on serving provider calls (a blocking round trip per statement held it up
    a third of the time, measured). SQLite is a local file: its statements run on the
    loop's thread (on a worker thread every statement waited for the GIL; measured four
    times slower). The asyncio engine is made on first use and closed by ``aclose``.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._async_engine: Any = None

    async def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one transaction: committed when it returns, rolled back
        when it raises."""
        if not is_postgres(self.engine):
            with transaction(self.engine) as session:
                return work(session)
        from sqlalchemy.ext.asyncio import AsyncSession

        if self._async_engine is None:
            from sqlalchemy.ext.asyncio import create_async_engine

            self._async_engine = create_async_engine(
                self.engine.url.render_as_string(hide_password=False),
                # No ping per checkout (a round trip per group write): a connection that
                # died fails its statement, the pool drops every connection, and the
                # rows are written again one by one on new ones.
                pool_pre_ping=False,
                pool_size=2,
                max_overflow=2,
            )
        async with (
            AsyncSession(self._async_engine, expire_on_commit=False) as async_session,
            async_session.begin(),
        ):
            return await async_session.run_sync(work)

    async def aclose(self) -> None:
        """Close the asyncio engine's connections (a later ``run`` opens new ones)."""
        if self._async_engine is not None:
            engine, self._async_engine = self._async_engine, None
            await engine.dispose()
