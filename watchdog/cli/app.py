"""The ``expiry-watchdog`` command group and its core commands (database, registering,
seeing, acting, providers, config, sandbox, demo). Every option can also come from the
environment variable shown in ``--help``. Errors print as one sentence (plus the cause
chain) and exit non-zero; ``-v`` adds the traceback (``watchdog.cli.common``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import click

from watchdog import __version__, audit, service
from watchdog.cli.common import (
    EXIT_REJECTED,
    Ctx,
    expected_errors,
    fail,
    friendly_errors,
    operator,
    pass_ctx,
)
from watchdog.clock import SYSTEM_CLOCK
from watchdog.config import Config
from watchdog.domain import InstructionKind, ProviderName
from watchdog.durations import parse_duration
from watchdog.errors import ValidationError
from watchdog.logs import scrub, setup_logging
from watchdog.money import format_money
from watchdog.registration import parse_instant
from watchdog.text import visible

# Commands that live in their own modules, imported only when used (a timer's `scan`
# should not pay for the HTTP API's imports).
LAZY_COMMANDS = {
    "serve": "watchdog.cli.api:serve",
    "tokens": "watchdog.cli.api:tokens_group",
    "check": "watchdog.cli.oncall:check",
    "ack": "watchdog.cli.oncall:ack",
    "notify": "watchdog.cli.oncall:notify",
    "alerts": "watchdog.cli.oncall:alerts_cmd",
    "pause": "watchdog.cli.control:pause",
    "resume": "watchdog.cli.control:resume",
    "approve": "watchdog.cli.control:approve",
    "explain": "watchdog.cli.control:explain",
    "resolve": "watchdog.cli.control:resolve",
}


class LazyGroup(click.Group):
    """A group whose listed commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a failure no command caught (a database error in any of them)
        still prints as one sentence with an exit code, never as a traceback."""
        try:
            return super().invoke(ctx)
        except expected_errors() as exc:
            fail(exc)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            import importlib

            module_name, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.option(
    "--config",
    "config_path",
    envvar="WATCHDOG_CONFIG",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="TOML config file (default ./watchdog.toml).",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    envvar="WATCHDOG_VERBOSE",
    show_envvar=True,
    help="Debug logs and tracebacks.",
)
@click.version_option(__version__, prog_name="expiry-watchdog")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Capture, cancel or page before manual-capture authorizations expire."""
    setup_logging(verbose)
    ctx.obj = Ctx(config_path, verbose)




# ---------------------------------------------------------------- database


@main.group()
def db() -> None:
    """Schema migrations (alembic, shipped inside the package)."""


@db.command("upgrade")
@click.option("--revision", default="head")
@pass_ctx
@friendly_errors
def db_upgrade(ctx: Ctx, revision: str) -> None:
    """Migrate the database forward (safe while an older daemon runs).

    With $WATCHDOG_DATABASE_OWNER_URL set (PostgreSQL), migrations run as that owner role and
    the user of database.url is then granted only what the service needs (SELECT, INSERT on
    audit_log).
    """
    from watchdog import db_roles, schema
    from watchdog.db import make_engine

    owner = db_roles.owner_url()
    engine = make_engine(owner) if owner else ctx.engine()
    try:
        schema.upgrade(engine, revision)
        click.echo(f"database at {schema.current_revision(engine)} ({_safe_url(ctx.config)})")
        role = db_roles.runtime_role(ctx.config.database_url)
        if owner and role and role != engine.url.username:
            db_roles.grant_runtime(engine, role)
            click.echo(f"runtime role {role}: SELECT, INSERT on audit_log; owner "
                       f"{engine.url.username} keeps the schema")
    finally:
        engine.dispose()


@db.command("downgrade")
@click.argument("revision")
@pass_ctx
@friendly_errors
def db_downgrade(ctx: Ctx, revision: str) -> None:
    """Migrate the database back to REVISION (``base`` removes every table)."""
    from watchdog import schema

    engine = ctx.engine()
    schema.downgrade(engine, revision)
    click.echo(f"database at {schema.current_revision(engine) or 'base'}")


@db.command("current")
@pass_ctx
@friendly_errors
def db_current(ctx: Ctx) -> None:
    """Print the schema revision and whether it is current."""
    from watchdog import schema

    engine = ctx.engine()
    current, head = schema.current_revision(engine), schema.head_revision(engine)
    click.echo(
        f"current {current or 'none'}, head {head}"
        + ("" if current == head else " — run `expiry-watchdog db upgrade`")
    )
    sys.exit(0 if current == head else 1)


# ---------------------------------------------------------------- registering


class ProviderChoice(click.Choice[str]):
    """The registered providers, read when an option is parsed rather than when this module
    is imported (the registry is the only list of them)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        """Every registered provider name."""
        return tuple(p.value for p in ProviderName)

    @choices.setter
    def choices(self, value: object) -> None:
        """Ignored: the registry decides."""


@main.command("add")
@click.option(
    "--provider", required=True, type=ProviderChoice()
)
@click.option("--order-id", required=True, help="The provider's id for the authorization.")
@click.option("--account", default=None,
              help="The merchant account at the provider (default: 'default').")
@click.option("--amount", required=True, help="Integer minor units (JPY 5000, GBP 18.20 -> 1820).")
@click.option("--currency", required=True, help="ISO 4217, e.g. JPY, GBP, EUR, GEL.")
@click.option("--authorized-at", required=True, help="ISO 8601 with offset.")
@click.option("--reference", default=None)
@click.option("--expires-at", default=None, help="Explicit deadline, ISO 8601 with offset.")
@click.option("--on-deadline", type=click.Choice(["capture", "cancel", "alert"]), default=None)
@click.option("--capture-amount", default=None, help="Amount to capture when not the full amount.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored record as JSON.")
@pass_ctx
@friendly_errors
def add(ctx: Ctx, /, as_json: bool, **fields: Any) -> None:
    """Register one authorization (idempotent when identical)."""
    data = {k: v for k, v in fields.items() if v is not None}
    registered = service.register(ctx.engine(), ctx.config, data, operator())
    a = registered.authorization
    if as_json:
        with _session(ctx) as s:
            from watchdog import store

            click.echo(json.dumps(service.authorization_dict(store.get(s, a.id))))
        return
    verb = "registered" if registered.created else "already registered (identical)"
    click.echo(f"{verb}: #{a.id} {a.provider} {a.order_id} {format_money(a.amount, a.currency)}")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="Default: from the extension (.csv, else JSON Lines).",
)
@pass_ctx
@friendly_errors
def import_cmd(ctx: Ctx, file: str, fmt: str | None) -> None:
    """Import JSON Lines or CSV; stores every valid row, reports every rejected one."""
    report = service.import_file(ctx.engine(), ctx.config, Path(file), operator(), fmt)
    for rejection in report.rejections:
        click.echo(f"rejected {rejection}", err=True)
    click.echo(
        f"imported {report.created} new, {report.unchanged} unchanged, "
        f"{len(report.rejections)} rejected"
    )
    if report.rejections:
        sys.exit(EXIT_REJECTED)


@main.command("instruct")
@click.argument("authorization_id", type=int)
@click.argument("what", type=click.Choice(["capture-now", "capture-at-deadline", "cancel-now"]))
@click.option("--amount", type=int, default=None, help="Minor units (default: the open amount).")
@click.option("--final", is_flag=True, help="A partial capture may release the remainder.")
@pass_ctx
@friendly_errors
def instruct(ctx: Ctx, authorization_id: int, what: str, amount: int | None, final: bool) -> None:
    """Tell the watchdog what to do with one authorization; the next pass carries it out."""
    kind = InstructionKind(what.replace("-", "_"))
    row = service.instruct(
        ctx.engine(), ctx.config, authorization_id, kind, operator(), amount=amount, final=final
    )
    click.echo(
        f"#{row.id}: {kind.value} accepted; next pass at or after "
        f"{row.next_action_at.isoformat() if row.next_action_at else '-'}"
    )


# ---------------------------------------------------------------- seeing


@main.command("plan")
@click.option("--horizon", default="72h", help="How far ahead to look (e.g. 72h, 7d).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
@friendly_errors
def plan_cmd(ctx: Ctx, horizon: str, fmt: str) -> None:
    """What will happen to which authorization and when, soonest first; money at risk.

    Each entry and each money-at-risk line names the merchant account where it names the
    provider (``flitt/ge-shop``; just ``flitt`` for a provider without accounts), and money
    at risk is per provider, account and currency, since two accounts never share money.
    """
    try:
        delta = parse_duration(horizon)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--horizon") from None
    from watchdog.accounts import label

    clock = getattr(ctx, "clock", None) or SYSTEM_CLOCK  # a test's context carries its clock
    entries, at_risk = service.plan_view(ctx.engine(), ctx.config, delta, clock)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "entries": [
                        {
                            "at": e.at.isoformat(),
                            "what": e.what,
                            "authorization_id": e.authorization_id,
                            "provider": e.provider,
                            "account": e.account,
                            "order_id": e.order_id,
                            "open_amount": e.open_amount,
                            "currency": e.currency,
                            "state": e.state,
                        }
                        for e in entries
                    ],
                    "at_risk": [
                        {"provider": p, "account": a, "currency": c, "amount": amount}
                        for (p, a, c), amount in sorted(at_risk.items())
                    ],
                }
            )
        )
        return
    zone = ctx.config.zone
    # The provider column is 9 wide, as before accounts; wider only for a longer label.
    names = [label(e.provider, e.account) for e in entries]
    risk_names = {key: label(key[0], key[1]) for key in at_risk}
    width = max([9, *map(len, names)])
    click.echo(
        f"{'when (' + ctx.config.timezone + ')':<27} {'what':<20} {'id':>6} "
        f"{'provider':<{width}} {'order':<24} {'open amount':>16} state"
    )
    for e, name in zip(entries, names, strict=True):
        click.echo(
            f"{e.at.astimezone(zone).strftime('%Y-%m-%d %H:%M:%S %z'):<27} {e.what:<20} "
            f"{e.authorization_id:>6} {name:<{width}} {e.order_id[:24]:<24} "
            f"{format_money(e.open_amount, e.currency):>16} {e.state}"
        )
    if not entries:
        click.echo(f"(nothing within {horizon})")
    click.echo("money at risk (open, not captured):")
    risk_width = max([9, *map(len, risk_names.values())])
    for key, amount in sorted(at_risk.items()):
        click.echo(f"  {risk_names[key]:<{risk_width}} {format_money(amount, key[2])}")


@main.command("show")
@click.argument("authorization_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
@friendly_errors
def show(ctx: Ctx, authorization_id: int, fmt: str) -> None:
    """One authorization with its timeline and audit trail; the header names the account
    with the provider (``flitt/ge-shop``), and the ``account`` line lists it too."""
    from watchdog.accounts import label

    data = service.show(ctx.engine(), ctx.config, authorization_id)
    if fmt == "json":
        click.echo(json.dumps(data, default=str))
        return
    a = data["authorization"]
    click.echo(
        f"#{a['id']} {label(a['provider'], a['account'])} {a['order_id']} "
        f"{format_money(a['amount'], a['currency'])} state={a['state']} "
        f"captured={format_money(a['captured_amount'], a['currency'])}"
    )
    for key, value in a.items():
        if value is None or key in ("id", "provider", "order_id"):
            continue
        shown = (format_money(value, a["currency"]) if key.endswith("amount")
                 and isinstance(value, int) else visible(str(value)))
        click.echo(f"  {key:<18} {shown}")
    click.echo("timeline:")
    for key, value in data["timeline"].items():
        click.echo(f"  {key:<18} {value}")
    click.echo("audit:")
    for row in data["audit"]:
        click.echo(_audit_line(row))


@main.group("audit", invoke_without_command=True)
@click.option("--authorization", "authorization_id", type=int, default=None)
@click.option("--since", default=None, help="ISO 8601 instant with offset.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
@friendly_errors
def audit_cmd(
    click_ctx: click.Context, authorization_id: int | None, since: str | None, fmt: str
) -> None:
    """Read the audit trail (``audit verify`` checks the keyed chain against a checkpoint)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Ctx = click_ctx.obj
    since_at = parse_instant(since, "--since") if since else None
    engine = ctx.engine()
    try:
        rows = audit.query(engine, authorization_id=authorization_id, since=since_at)
    finally:
        engine.dispose()
    for row in rows:
        data = audit.row_as_dict(row)
        click.echo(json.dumps(data, default=str) if fmt == "json" else _audit_line(data))


@audit_cmd.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint file to compare with (default: the one each pass writes, "
                   "$WATCHDOG_AUDIT_CHECKPOINT or beside the SQLite database or in "
                   "$STATE_DIRECTORY).")
@click.option("--expect-head", default=None,
              help="The head MAC an auditor wrote down (64 hex digits); needs --expect-rows.")
@click.option("--expect-rows", type=int, default=None,
              help="How many rows the chain had when --expect-head was noted.")
@click.option("--from-file", "from_file", type=click.File("r", encoding="utf-8"), default=None,
              help="Verify an exported copy (`audit --format json` output) instead of the "
                   "database.")
@pass_ctx
@friendly_errors
def audit_verify(ctx: Ctx, checkpoint_file: str | None, expect_head: str | None,
                 expect_rows: int | None, from_file: Any) -> None:
    """Verify the keyed audit chain and compare it with a checkpoint kept outside it.

    Detects an edited row, a row rewritten without the key, deleted, inserted or reordered
    rows, a re-used id, and (against the checkpoint or --expect-head/--expect-rows) the
    newest rows deleted, a truncated table, or history rewritten even with the key. Needs
    the audit key ($WATCHDOG_AUDIT_KEY, the systemd credential, or the key file).
    """
    from watchdog import anchor

    if (expect_head is None) != (expect_rows is None):
        raise click.UsageError("--expect-head and --expect-rows go together")
    if expect_head is not None and not re.fullmatch(r"[0-9a-f]{64}", expect_head):
        raise click.BadParameter("must be the 64 hex digits `audit verify` printed",
                                 param_hint="--expect-head")
    checkpoint = None
    if expect_head is None:
        path = (Path(checkpoint_file) if checkpoint_file
                else anchor.checkpoint_path(ctx.config.database_url))
        checkpoint = anchor.read_checkpoint(path) if path is not None else None
        if checkpoint is None and checkpoint_file:
            raise click.BadParameter(f"{checkpoint_file} does not exist",
                                     param_hint="--checkpoint")
    key = anchor.load_key(ctx.config.database_url)
    if from_file is not None:
        rows = (audit.exported_row(json.loads(line)) for line in from_file if line.strip())
        report = audit.verify_rows(rows, key, checkpoint, expect_head, expect_rows)
    else:
        engine = ctx.engine()
        try:
            report = audit.verify(engine, checkpoint, expect_head, expect_rows, key=key)
        finally:
            engine.dispose()
    click.echo(report.describe())


# ---------------------------------------------------------------- acting


@main.command("scan")
@click.option("--dry-run", is_flag=True, envvar="WATCHDOG_DRY_RUN", show_envvar=True,
              help="Plan, read statuses and audit what would happen; move no money.")
@pass_ctx
@friendly_errors
def scan(ctx: Ctx, dry_run: bool) -> None:
    """Run one pass and exit (for a systemd timer)."""
    from watchdog.runtime import require_schema, scanner_runtime

    engine = ctx.engine()
    require_schema(engine)

    async def one_pass() -> str:
        async with scanner_runtime(ctx.config, engine, SYSTEM_CLOCK, dry_run=dry_run) as runtime:
            # SIGTERM (systemd stopping the timer's service): finish the rows in hand, claim
            # no more; whatever is left is due again at the next tick.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runtime.scanner.stop)
            report = await runtime.scanner.run_pass()
            return report.summary()

    click.echo(asyncio.run(one_pass()))


@main.command("run")
@click.option("--max-passes", type=int, default=None, hidden=True)
@click.option("--dry-run", is_flag=True, envvar="WATCHDOG_DRY_RUN", show_envvar=True,
              help="Plan, read statuses and audit what would happen; move no money.")
@pass_ctx
@friendly_errors
def run(ctx: Ctx, max_passes: int | None, dry_run: bool) -> None:
    """Run the daemon: scan every scheduler.scan_interval until SIGTERM."""
    from watchdog.scheduler import Daemon

    daemon = Daemon(ctx.config, ctx.engine(), max_passes=max_passes, dry_run=dry_run)
    sys.exit(asyncio.run(daemon.run()))


# ---------------------------------------------------------------- providers, config, sandbox


@main.group()
def providers() -> None:
    """Provider connectivity."""


@providers.command("check")
@pass_ctx
@friendly_errors
def providers_check(ctx: Ctx) -> None:
    """Verify credentials and reachability of every account of each configured provider;
    moves no money.

    One line per provider account (``flitt``, ``flitt/ge-shop``): NOT CONFIGURED with why
    (the account's missing secret variable, its unset base URL), else OK or FAILED with the
    provider's answer. Each account is checked on its own, so one account's failure never
    hides another's result. The exit status is 1 when a check FAILED or an enabled account
    of an ``accounts`` table is NOT CONFIGURED (``config check`` refuses that too); a
    provider section without ``accounts`` that is not configured is only reported, as
    before.
    """
    from watchdog.accounts import label
    from watchdog.providers import registry
    from watchdog.providers.base import ProviderAdapter
    from watchdog.providers.http import make_http_client

    async def check_all() -> int:
        client = make_http_client()
        try:
            unusable: list[tuple[str, str]] = []
            usable: list[tuple[str, ProviderAdapter]] = []
            failures = 0
            for name in ctx.config.providers:
                named = name in ctx.config.accounts
                for account, settings in ctx.config.accounts_of(name).items():
                    who = label(name, account)
                    adapter, why = registry.account_adapter(settings, client)
                    if adapter is not None:
                        usable.append((who, adapter))
                        continue
                    unusable.append((who, why))
                    failures += 1 if named and settings.enabled else 0
            for who, why in sorted(unusable):
                click.echo(f"{who:<9} NOT CONFIGURED: {why}")
            for who, adapter in sorted(usable, key=lambda pair: pair[0]):
                try:
                    result = await adapter.check()
                except Exception as exc:  # noqa: BLE001 - one account's crash is its line
                    failures += 1
                    click.echo(f"{who:<9} FAILED: {type(exc).__name__}: {scrub(str(exc))}")
                    continue
                ok = result.outcome.value in ("succeeded", "already_done")
                failures += 0 if ok else 1
                click.echo(f"{who:<9} {'OK' if ok else 'FAILED'}: {result.describe()}")
            return failures
        finally:
            await client.aclose()

    sys.exit(1 if asyncio.run(check_all()) else 0)


@main.group("config")
def config_group() -> None:
    """Inspect and validate configuration."""


@config_group.command("check")
@pass_ctx
@friendly_errors
def config_check(ctx: Ctx) -> None:
    """Validate the configuration without starting anything."""
    from watchdog.config import missing_credentials

    missing = missing_credentials(ctx.config)
    if missing:
        for problem in missing:
            click.echo(f"error: {problem}", err=True)
        sys.exit(1)
    click.echo(f"configuration OK ({ctx.config.source})")


@config_group.command("show")
@pass_ctx
@friendly_errors
def config_show(ctx: Ctx) -> None:
    """Print the effective configuration with secrets masked."""
    from watchdog.config_view import effective_config

    click.echo(json.dumps(effective_config(ctx.config), indent=2, default=str))


@main.command("sandbox")
@click.option("--host", default="127.0.0.1", envvar="WATCHDOG_SANDBOX_HOST", show_envvar=True)
@click.option("--port", default=8700, type=int, envvar="WATCHDOG_SANDBOX_PORT", show_envvar=True)
@click.option("--latency", default=0.0, type=float, help="Seconds added to every provider answer.")
def sandbox(host: str, port: int, latency: float) -> None:
    """Serve the in-repo provider sandbox (all four providers) on loopback."""
    from watchdog.sandbox.server import run_sandbox

    run_sandbox(host, port, latency)


@main.command("demo")
@click.option(
    "--dir",
    "workdir",
    default="demo",
    type=click.Path(file_okay=False),
    help="Where the demo database and config go.",
)
@click.option("--passes", default=2, type=int)
def demo(workdir: str, passes: int) -> None:
    """Run the whole loop against the in-repo sandbox with an embedded SQLite database."""
    from watchdog.demo import run_demo

    run_demo(Path(workdir), passes)


# ---------------------------------------------------------------- helpers


def _session(ctx: Ctx) -> Any:
    from watchdog.db import transaction

    return transaction(ctx.engine())


def _audit_line(row: dict[str, Any]) -> str:
    recorded = str(row["recorded_at"])[:19]
    parts = [f"  {row['id']:>5} {recorded} {row['event']:<34} {row['actor']}"]
    if row.get("authorization_id") is not None:
        parts.append(f"#{row['authorization_id']}")
    if row.get("amount") is not None and row.get("currency"):
        parts.append(format_money(row["amount"], row["currency"]))
    if row.get("state_to"):
        parts.append(f"-> {row['state_to']}")
    if row.get("outcome"):
        parts.append(f"[{row['outcome']}]")
    if row.get("idempotency_key"):
        parts.append(f"key={row['idempotency_key']}")
    return visible(" ".join(parts))


def _safe_url(config: Config) -> str:
    from sqlalchemy.engine import make_url

    return make_url(config.database_url).render_as_string(hide_password=True)


_ = (ValidationError, dt)


