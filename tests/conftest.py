"""Shared fixtures: a migrated database on SQLite and on a real PostgreSQL server.

``db_url`` is parametrised over both backends, so every test that asks for a
database runs on both. The PostgreSQL server is started once per test session on
a temp dir (see tests/support/postgres.py) and each test gets a fresh database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.audit_key import TEST_AUDIT_KEY
from tests.support.postgres import PostgresServer
from watchdog import schema
from watchdog.clock import FrozenClock
from watchdog.config import Config, parse_config
from watchdog.db import make_engine

_counter = itertools.count()

# The audit chain's MAC key (watchdog.anchor): PostgreSQL has no file to keep one beside, and
# subprocesses inherit it. Tests of the key file itself remove it with monkeypatch.
os.environ.setdefault("WATCHDOG_AUDIT_KEY", TEST_AUDIT_KEY)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session."""
    with PostgresServer() as server:
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Levels by marker: a test that asks for the PostgreSQL server carries ``postgres``
    (the ``postgresql`` parameter of ``db_url`` is marked where it is declared)."""
    for item in items:
        if "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL on each backend (the PostgreSQL one marked ``postgres``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'watchdog.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"t{next(_counter)}"
    server.create_database(name)
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A database migrated to head by alembic (never create_all)."""
    eng = make_engine(db_url)
    schema.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    """Time that moves only when the test says so."""
    return FrozenClock(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
def config(db_url: str) -> Config:
    """Default configuration on the test database."""
    return parse_config({"database": {"url": db_url}}, environ={})
