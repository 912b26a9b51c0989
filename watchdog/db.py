"""Engines and transactions: SQLite (embedded default, WAL) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from watchdog.private import touch_private

SQLITE_BUSY_TIMEOUT_MS = 30_000

T = TypeVar("T")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine tuned for the watchdog's short write transactions.

    SQLite gets WAL (the daemon and the CLI share the file), a busy timeout, and
    ``BEGIN IMMEDIATE`` so two writers queue instead of failing with "database is locked".
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_private_database(parsed.database)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def _create_private_database(database: str | None) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask, 0644); its
    WAL and SHM files then get the same mode. In-memory and URI databases are left alone."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir():  # a missing directory is reported by SQLite on first use
        touch_private(path)


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

    PostgreSQL: on a thread of the runner's own (two, with their own small pool), so
    while the server answers the loop goes on serving provider calls (a blocking round
    trip per statement held it up a third of the time, measured), and so that a
    transaction holding the audit chain's advisory lock never needs the loop to finish.
    It used to run on the loop through SQLAlchemy's asyncio driver: then a synchronous
    audit write on the loop's thread (a recovery check, an alert) waiting for that lock
    blocked the loop the lock holder needed to reach its COMMIT, and the worker hung
    (two connections of one process waiting on each other, invisible to PostgreSQL's
    deadlock detector). Off the loop, every wait is one the server sees.

    SQLite is a local file: its statements run on the loop's thread (on a worker thread
    every statement waited for the GIL; measured four times slower), and its writers
    queue on the database's own lock with nothing else to wait for.
    """

    THREADS = 2  # a claim ahead and a group write at the same time

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor: ThreadPoolExecutor | None = None
        self._thread_engine: Engine | None = None

    async def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one transaction: committed when it returns, rolled back
        when it raises."""
        if not is_postgres(self.engine):
            with transaction(self.engine) as session:
                return work(session)
        if self._executor is None:
            self._thread_engine = create_engine(
                self.engine.url,
                # No ping per checkout (a round trip per group write): a connection that
                # died fails its statement, the pool drops every connection, and the
                # rows are written again one by one on new ones.
                pool_pre_ping=False,
                pool_size=self.THREADS,
                max_overflow=self.THREADS,
            )
            self._executor = ThreadPoolExecutor(self.THREADS, thread_name_prefix="watchdog-db")
        engine = self._thread_engine
        assert engine is not None

        def in_transaction() -> T:
            with transaction(engine) as session:
                return work(session)

        return await asyncio.get_running_loop().run_in_executor(self._executor, in_transaction)

    async def aclose(self) -> None:
        """Finish the transactions under way and close the runner's connections (a later
        ``run`` opens new ones)."""
        executor, self._executor = self._executor, None
        engine, self._thread_engine = self._thread_engine, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
        if engine is not None:
            engine.dispose()
