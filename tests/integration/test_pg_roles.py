"""PostgreSQL least privilege: migrations as the owner role, the service as a runtime role
that can read and append the audit trail and nothing else on it."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.support.postgres import PostgresServer
from watchdog import audit, db_roles, schema, service
from watchdog.cli import main
from watchdog.clock import FrozenClock
from watchdog.config import parse_config
from watchdog.db import make_engine
from watchdog.domain import ProviderName
from watchdog.providers.fake import FakeProvider
from watchdog.scan import Scanner

_n = itertools.count()


def _as(url: str, user: str) -> str:
    return make_url(url).set(username=user).render_as_string(hide_password=False)


@pytest.fixture
def roles(postgres: PostgresServer) -> Iterator[tuple[str, str]]:
    """A database owned by an owner role, and a runtime login role; (owner URL, runtime URL)."""
    n = next(_n)
    owner, runtime, name = f"wd_owner_{n}", f"wd_app_{n}", f"roles{n}"
    admin = make_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {owner} LOGIN"))
            conn.execute(text(f"CREATE ROLE {runtime} LOGIN"))
            conn.execute(text(f"CREATE DATABASE {name} OWNER {owner}"))
        yield _as(postgres.url(name), owner), _as(postgres.url(name), runtime)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"DROP ROLE IF EXISTS {runtime}"))
            conn.execute(text(f"DROP ROLE IF EXISTS {owner}"))
        admin.dispose()


FORBIDDEN = [
    "UPDATE audit_log SET amount = 1",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_log_append_only ON audit_log",
    "ALTER TABLE audit_log ADD COLUMN note text",
    "ALTER TABLE audit_log OWNER TO CURRENT_USER",
    "DROP TABLE audit_log",
    "UPDATE alembic_version SET version_num = '0001'",
]


def test_runtime_role_can_append_but_not_change_the_audit_trail(
    roles: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock,
) -> None:
    owner_url, runtime_url = roles
    config_file = tmp_path / "w.toml"
    config_file.write_text(f'[database]\nurl = "{runtime_url}"\n')
    monkeypatch.setenv(db_roles.OWNER_URL_VARIABLE, owner_url)
    result = CliRunner().invoke(main, ["--config", str(config_file), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "runtime role wd_app_" in result.output

    runtime: Engine = make_engine(runtime_url)
    try:
        # The service works as the runtime role: register, scan, capture, audit.
        config = parse_config({"database": {"url": runtime_url}}, environ={})
        fake = FakeProvider(ProviderName.CLEARPAY)
        fake.add("5001", 1000)
        service.register(runtime, config, {
            "provider": "clearpay", "order_id": "5001", "amount": 1000, "currency": "GBP",
            "authorized_at": (clock.now() - dt.timedelta(days=12, hours=4)).isoformat(),
        }, actor="test", clock=clock)

        async def no_sleep(_: float) -> None:
            return None

        asyncio.run(Scanner(runtime, config, {ProviderName.CLEARPAY: fake}, clock, "w1",
                            sleep=no_sleep).run_pass())
        assert len(fake.ledger) == 1
        before = audit.verify(runtime)
        assert before.rows > 2

        for statement in FORBIDDEN:
            with pytest.raises(DBAPIError) as caught, runtime.begin() as conn:
                conn.execute(text(statement))
            assert type(caught.value.orig).__name__ == "InsufficientPrivilege", (
                statement, caught.value)
        assert audit.verify(runtime).last_hash == before.last_hash
    finally:
        runtime.dispose()


def test_a_runtime_role_that_owns_the_audit_log_is_refused(roles: tuple[str, str]) -> None:
    owner_url, _ = roles
    owner = make_engine(owner_url)
    try:
        schema.upgrade(owner)
        with pytest.raises(db_roles.RoleError, match="owns audit_log"):
            db_roles.grant_runtime(owner, str(owner.url.username))
        with pytest.raises(db_roles.RoleError, match="does not exist"):
            db_roles.grant_runtime(owner, "nobody_like_this")
    finally:
        owner.dispose()

