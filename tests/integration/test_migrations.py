"""Migrations are the schema: models and migrations agree, and downgrade works, on both databases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tests.support.deploy import REPO, clean_env, run
from tests.support.postgres import free_port
from watchdog import schema
from watchdog.db import make_engine


def test_upgrade_check_downgrade_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        schema.upgrade(engine)
        schema.check(engine)  # raises if models and migrations disagree
        assert schema.is_at_head(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"authorizations", "actions", "audit_log", "alerts", "alert_deliveries",
                "api_tokens", "controls", "passes"} <= tables
        schema.downgrade(engine, "base")
        assert schema.current_revision(engine) is None
        assert "authorizations" not in set(inspect(engine).get_table_names())
        schema.upgrade(engine)
        assert schema.is_at_head(engine)
    finally:
        engine.dispose()


def test_the_fast_schema_check_knows_the_newest_migration(tmp_path: object) -> None:
    engine = make_engine("sqlite://")
    try:
        assert schema.head_revision(engine) == schema.HEAD_REVISION
        assert schema.current_revision(engine) is None
        schema.upgrade(engine)
        assert schema.is_at_head(engine)
    finally:
        engine.dispose()


def test_partial_indexes_keep_their_where_clause(db_url: str) -> None:
    """The models leave the WHERE out (it would load both dialect packages at import);
    the migrated database must still have every partial index with its WHERE."""
    import re

    from sqlalchemy import text

    from watchdog.models import PARTIAL_INDEXES

    engine = make_engine(db_url)
    try:
        schema.upgrade(engine)
        query = ("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
                 if engine.dialect.name == "sqlite"
                 else "SELECT indexdef FROM pg_indexes WHERE indexname = :name")
        with engine.connect() as conn:
            for name, where in PARTIAL_INDEXES.items():
                ddl = conn.execute(text(query), {"name": name}).scalar_one()
                assert " WHERE " in ddl.upper(), (name, ddl)
                for word in set(re.findall(r"[a-z_]+", where)) - {"in", "is", "not", "null"}:
                    assert word in ddl, (name, word, ddl)
    finally:
        engine.dispose()


def test_each_new_database_gets_its_own_installation_id(tmp_path: Path) -> None:
    ids = []
    for name in ("one", "two"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        schema.upgrade(engine)
        with engine.connect() as conn:
            ids.append(conn.execute(text("SELECT id FROM installation")).scalars().all())
        engine.dispose()
    assert all(len(found) == 1 and len(found[0]) == 12 for found in ids)
    assert ids[0] != ids[1]


@pytest.mark.slow
def test_alembic_command_works_from_the_checkout(tmp_path: Path) -> None:
    """`alembic upgrade head` and `alembic check`, the real command of this venv run from the
    repository root (alembic.ini there), migrate the configured database: the URL comes from
    the watchdog's own $WATCHDOG_DATABASE_URL, as `expiry-watchdog db upgrade` takes it."""
    alembic = Path(sys.executable).parent / "alembic"
    database = tmp_path / "checkout.db"
    env = clean_env(WATCHDOG_DATABASE_URL=f"sqlite:///{database}")
    upgraded = run([alembic, "upgrade", "head"], cwd=REPO, env=env, timeout=120)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    engine = make_engine(f"sqlite:///{database}")
    try:
        assert schema.current_revision(engine) == schema.HEAD_REVISION
    finally:
        engine.dispose()
    checked = run([alembic, "check"], cwd=REPO, env=env, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr

    # A database it cannot reach is one sentence, and the password is never printed.
    env["WATCHDOG_DATABASE_URL"] = f"postgresql+psycopg://svc:S3cr%40t@127.0.0.1:{free_port()}/w"
    refused = run([alembic, "current"], cwd=REPO, env=env, timeout=120)
    assert refused.returncode != 0
    assert "cannot use the database at 127.0.0.1:" in refused.stderr, refused.stderr
    for spelling in ("S3cr%40t", "S3cr@t"):
        assert spelling not in refused.stdout + refused.stderr
