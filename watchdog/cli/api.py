"""CLI commands for the HTTP API: ``serve`` and ``tokens create|revoke|list``.

Loaded on first use by the root group (``watchdog.cli.app.LAZY_COMMANDS``). The group's
context object supplies ``config`` and ``engine()``; run standalone, the configuration is
found the usual way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, Protocol

import click
from sqlalchemy import Engine

from watchdog import tokens
from watchdog.cli.common import friendly_errors, operator
from watchdog.clock import SYSTEM_CLOCK
from watchdog.config import Config, load_config
from watchdog.db import make_engine


class _HasConfig(Protocol):
    @property
    def config(self) -> Config: ...

    def engine(self) -> Any: ...


@contextlib.contextmanager
def _config_and_engine() -> Iterator[tuple[Config, Engine]]:
    """The main group's config and a fresh engine (disposed on exit); standalone: the default."""
    obj = click.get_current_context().find_root().obj
    if obj is not None and hasattr(obj, "config") and hasattr(obj, "engine"):
        holder: _HasConfig = obj
        config = holder.config
        engine = holder.engine()
        assert isinstance(engine, Engine)
    else:
        config = load_config(None)
        engine = make_engine(config.database_url)
    try:
        yield config, engine
    finally:
        engine.dispose()


@click.command("serve")
@click.option("--host", envvar="WATCHDOG_API_HOST", show_envvar=True, default=None,
              help="Address to listen on (default: [api] host, 127.0.0.1).")
@click.option("--port", envvar="WATCHDOG_API_PORT", show_envvar=True, default=None,
              type=click.IntRange(0, 65535), help="Port (default: [api] port, 8787).")
@friendly_errors
def serve(host: str | None, port: int | None) -> None:
    """Serve the HTTP API (a separate process on the same database as the daemon)."""
    import uvicorn

    from watchdog.api import create_app
    from watchdog.api.server import health_routers, uvicorn_config
    from watchdog.runtime import require_schema

    with _config_and_engine() as (config, engine):
        require_schema(engine)
        app = create_app(engine, config, SYSTEM_CLOCK,
                         extra_routers=health_routers(engine, config))
        uvicorn.Server(uvicorn_config(app, host or config.api.host,
                                      config.api.port if port is None else port)).run()


@click.group("tokens")
def tokens_group() -> None:
    """Bearer tokens for the HTTP API (only their SHA-256 is stored)."""


@tokens_group.command("create")
@click.option("--name", required=True, help="Who uses it; audited as api:<name>.")
@click.option("--scope", type=click.Choice([s.value for s in tokens.Scope]), required=True,
              help="read: GET only; write: also register and instruct.")
@friendly_errors
def tokens_create(name: str, scope: str) -> None:
    """Create a token and print it once; it cannot be shown again."""
    with _config_and_engine() as (_, engine):
        secret = tokens.create(engine, name, tokens.Scope(scope), operator(), SYSTEM_CLOCK.now())
    click.echo(secret)
    click.echo(f"token {name!r} ({scope}) created; store it now, it is not shown again",
               err=True)


@tokens_group.command("revoke")
@click.argument("name")
@friendly_errors
def tokens_revoke(name: str) -> None:
    """Revoke a token; the API refuses it from the next request on."""
    with _config_and_engine() as (_, engine):
        tokens.revoke(engine, name, operator(), SYSTEM_CLOCK.now())
    click.echo(f"token {name!r} revoked")


def _when(instant: dt.datetime | None) -> str:
    return instant.isoformat(timespec="seconds") if instant else "-"


@tokens_group.command("list")
@friendly_errors
def tokens_list() -> None:
    """Every token: name, scope, created, last used, revoked."""
    with _config_and_engine() as (_, engine):
        rows = tokens.list_tokens(engine)
    click.echo(f"{'name':<24} {'scope':<6} {'created':<26} {'last used':<26} revoked")
    for t in rows:
        used = _when(t.last_used_at)
        click.echo(f"{t.name:<24} {t.scope.value:<6} {_when(t.created_at):<26} {used:<26} "
                   f"{_when(t.revoked_at)}")
    if not rows:
        click.echo("(no tokens)")

