"""Migrations are the schema: models and migrations agree, and downgrade works, on both databases."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from watchdog import migrate
from watchdog.db import make_engine


def test_upgrade_check_downgrade_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        migrate.check(engine)  # raises if models and migrations disagree
        assert migrate.is_at_head(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"authorizations", "actions", "audit_log", "alerts", "alert_deliveries",
                "api_tokens", "controls", "passes"} <= tables
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        assert "authorizations" not in set(inspect(engine).get_table_names())
        migrate.upgrade(engine)
        assert migrate.is_at_head(engine)
    finally:
        engine.dispose()


def test_the_fast_schema_check_knows_the_newest_migration(tmp_path: object) -> None:
    from watchdog import schema

    engine = make_engine("sqlite://")
    try:
        assert migrate.head_revision(engine) == schema.HEAD_REVISION
        assert schema.current_revision(engine) is None
        migrate.upgrade(engine)
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
        migrate.upgrade(engine)
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
        migrate.upgrade(engine)
        with engine.connect() as conn:
            ids.append(conn.execute(text("SELECT id FROM installation")).scalars().all())
        engine.dispose()
    assert all(len(found) == 1 and len(found[0]) == 12 for found in ids)
    assert ids[0] != ids[1]
