"""The database schema: where its alembic migrations are, migrating up, down and checking,
and whether the database is at the revision this version expects.

The migrations are the repository's top-level ``alembic/`` (``alembic.ini`` beside it, so
``alembic upgrade head`` works from a checkout). A wheel carries a copy as
``watchdog/_alembic`` (``setup.py`` puts it there at build time), so a pip-installed daemon
migrates with ``expiry-watchdog db upgrade``. ``current_revision`` and ``is_at_head`` never
load alembic, so a timer's ``scan`` starts fast; tests hold ``HEAD_REVISION`` to the scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from watchdog.errors import WatchdogError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

HEAD_REVISION = "0008"

_PACKAGE = Path(__file__).resolve().parent
PACKAGED_MIGRATIONS = _PACKAGE / "_alembic"  # in an installed wheel
CHECKOUT_MIGRATIONS = _PACKAGE.parent / "alembic"  # in a checkout (or an editable install)


class MigrationsMissing(WatchdogError):
    """This installation has no alembic migration scripts; reinstall expiry-watchdog."""


def migrations_dir() -> Path:
    """The directory of ``env.py`` and ``versions/``: the wheel's copy, else the checkout's
    (recognised by ``alembic.ini`` beside it: an installed ``site-packages/alembic`` is the
    alembic library, not our scripts)."""
    if (PACKAGED_MIGRATIONS / "env.py").is_file():
        return PACKAGED_MIGRATIONS
    if (CHECKOUT_MIGRATIONS / "env.py").is_file() and (
        CHECKOUT_MIGRATIONS.parent / "alembic.ini"
    ).is_file():
        return CHECKOUT_MIGRATIONS
    raise MigrationsMissing(
        f"no alembic migrations in {PACKAGED_MIGRATIONS} (an installed wheel) nor in "
        f"{CHECKOUT_MIGRATIONS} (a checkout); reinstall expiry-watchdog"
    )


def alembic_config(engine: Engine) -> AlembicConfig:
    """An alembic config pointing at the migrations and at ``engine``.

    The engine travels in ``attributes``, never as ``sqlalchemy.url`` in the ini: alembic's
    ConfigParser reads ``%`` as interpolation, so a percent-escaped password (``S3cr%40t``)
    made it raise a ValueError quoting the whole URL, password included.
    """
    from alembic.config import Config as AlembicConfig

    where = migrations_dir()
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", _ini_escaped(str(where)))
    cfg.set_main_option("version_locations", _ini_escaped(str(where / "versions")))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["engine"] = engine
    return cfg


def _ini_escaped(value: str) -> str:
    """``value`` as ConfigParser reads it back unchanged (``%`` doubled)."""
    return value.replace("%", "%%")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database forward to ``revision``. Migration 0006 keys the audit chain:
    for SQLite it creates the key file beside the database (``watchdog.anchor``)."""
    from alembic import command

    with engine.begin() as connection:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    _forget_audit_cache()


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database back to ``revision`` (``base`` empties it)."""
    from alembic import command

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
    from alembic import command

    with engine.begin() as connection:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.check(cfg)


def current_revision(engine: Engine) -> str | None:
    """The revision alembic recorded in the database, or None when unmigrated (no
    ``alembic_version`` table, or an empty one)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        revision = connection.execute(
            text("SELECT version_num FROM alembic_version")
        ).scalar_one_or_none()
        return None if revision is None else str(revision)


def head_revision(engine: Engine) -> str | None:
    """The newest revision of the migration scripts (tests hold it to ``HEAD_REVISION``)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def is_at_head(engine: Engine) -> bool:
    """True when the schema is exactly what this version expects."""
    return current_revision(engine) == HEAD_REVISION
