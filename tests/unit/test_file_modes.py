"""Files the watchdog creates are private to its user (issue 17)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from watchdog import schema
from watchdog.anchor import Checkpoint, read_checkpoint, write_checkpoint_file
from watchdog.db import make_engine
from watchdog.demo import _write_config
from watchdog.private import write_private


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022 umask, under which SQLite alone would create 0644 files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "watchdog.db"
    engine = make_engine(f"sqlite:///{db}")
    schema.upgrade(engine)
    with engine.connect() as connection:
        connection.execute(text("SELECT count(*) FROM authorizations"))
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()
        assert {p.name: _mode(p) for p in (db, wal, shm)} == {
            db.name: 0o600, wal.name: 0o600, shm.name: 0o600}
    engine.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch(mode=0o640)
    db.chmod(0o640)
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o640


def test_the_demo_config_is_0600(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"smartpay": "http://127.0.0.1:1"})
    assert _mode(path) == 0o600
    assert "[providers.smartpay]" in path.read_text()


def test_write_private_narrows_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert _mode(path) == 0o600
    assert path.read_text() == "new"


def test_the_audit_checkpoint_file_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "audit-checkpoint.json"
    checkpoint = Checkpoint(last_id=3, rows=3, head="ab" * 32, at="2030-01-01T00:00:00+00:00")
    write_checkpoint_file(path, checkpoint)
    assert _mode(path) == 0o600
    assert read_checkpoint(path) == checkpoint
