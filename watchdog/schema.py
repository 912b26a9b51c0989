"""Is the database at the schema this version expects? Answered without loading alembic,
so a timer's ``scan`` starts fast. ``tests`` check HEAD_REVISION against the migrations."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

HEAD_REVISION = "0008"


def current_revision(engine: Engine) -> str | None:
    """The revision recorded by alembic, or None for an empty database."""
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalar_one_or_none()
    except DBAPIError as exc:
        if "alembic_version" in str(exc):
            return None
        raise


def is_at_head(engine: Engine) -> bool:
    """True when the schema is exactly what this version expects."""
    return current_revision(engine) == HEAD_REVISION
