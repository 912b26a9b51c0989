"""Schema management through alembic: upgrade, downgrade, current, check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> AlembicConfig:
    """An alembic config pointing at the packaged migrations and at ``engine``.

    The engine travels in ``attributes``, never as ``sqlalchemy.url`` in the ini: alembic's
    ConfigParser reads ``%`` as interpolation, so a percent-escaped password (``S3cr%40t``)
    made it raise a ValueError quoting the whole URL, password included.
    """
    cfg = AlembicConfig(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", _ini_escaped(str(MIGRATIONS_DIR)))
    cfg.set_main_option("version_locations", _ini_escaped(str(MIGRATIONS_DIR / "versions")))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["engine"] = engine
    return cfg


def _ini_escaped(value: str) -> str:
    """``value`` as ConfigParser reads it back unchanged (``%`` doubled)."""
    return value.replace("%", "%%")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database forward to ``revision``. Migration 0006 keys the audit chain:
    for SQLite it creates the key file beside the database (``watchdog.anchor``)."""
    with engine.begin() as connection:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    _forget_audit_cache()


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database back to ``revision`` (``base`` empties it)."""
    with engine.begin() as connection:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
    _forget_audit_cache()


def _forget_audit_cache() -> None:
    """A migration may have created the audit key file or the re-key row."""
    from watchdog import audit

    audit.forget_cache()


def check(engine: Engine) -> None:
    """Raise if the models and the migrated schema disagree (alembic's ``check``)."""
    with engine.begin() as connection:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.check(cfg)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when unmigrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    """The newest revision shipped with this version of the watchdog."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def is_at_head(engine: Engine) -> bool:
    """True when the schema is exactly what this version expects."""
    return current_revision(engine) == head_revision(engine)
