"""``expiry-watchdog demo``: the whole loop against the in-repo sandbox, no credentials needed.

Starts the sandbox on a free loopback port, writes a config and an embedded SQLite
database under ``--dir``, registers authorizations across the four providers at
different ages, runs the daemon for a few passes, and prints what happened.

A provider whose sandbox dialect declares a ``demo_account`` has two merchant accounts
(issue 19): ``default`` and that one, with its own sandbox credentials
(``watchdog.sandbox.accounts.account_env``), its own base URL and its own window (JPMMPS
``uk-shop``, 4 days: JPMMPS sets the window per merchant). Its order ids may repeat the
default account's (``demo-jpm-0001`` is in both, as two orders); every table names the
account (``jpmmps`` for ``default``, ``jpmmps/uk-shop`` for the other).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

import click
from sqlalchemy import select

from watchdog import audit, schema, service
from watchdog.accounts import DEFAULT_ACCOUNT, label
from watchdog.config import load_config
from watchdog.db import transaction
from watchdog.domain import ProviderName
from watchdog.models import Alert, Authorization
from watchdog.money import format_money
from watchdog.private import PRIVATE_DIR, write_private
from watchdog.sandbox.accounts import account_env
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.dialect import DemoAccount, dialects
from watchdog.sandbox.server import SandboxServer
from watchdog.scheduler import Daemon

#: One registered order: (provider, account, order id, amount, currency, age, extra fields).
DemoRow = tuple[str, str, str, int, str, dt.timedelta, dict[str, object]]


def demo_accounts() -> dict[str, DemoAccount]:
    """The second merchant account of each provider whose dialect declares one."""
    return {d.name: d.demo_account for d in dialects() if d.demo_account is not None}


def scenario() -> list[DemoRow]:
    """Every order the demo registers, provider by provider (each dialect's ``demo_orders``,
    at the ``default`` account), then each second account's (``demo_account.orders``)."""
    rows: list[DemoRow] = [(d.name, DEFAULT_ACCOUNT, *order)
                           for d in dialects() for order in d.demo_orders]
    rows += [(name, account.name, *order)
             for name, account in demo_accounts().items() for order in account.orders]
    return rows


def _duration(delta: dt.timedelta) -> str:
    """``delta`` as the configuration writes a duration: whole days, else whole hours."""
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def _write_config(
    workdir: Path, base_urls: dict[str, str],
    accounts: dict[str, dict[str, tuple[str, dt.timedelta | None]]] | None = None,
) -> Path:
    """The demo's configuration: each provider at its sandbox URL; a provider in
    ``accounts`` gets ``[providers.<name>.accounts.<account>]`` for each, with that
    account's base URL and window (None: the provider's)."""
    path = workdir / "watchdog.toml"
    sections = []
    for name, url in base_urls.items():
        section = f'[providers.{name}]\nbase_url = "{url}"\n'
        for account, (account_url, window) in (accounts or {}).get(name, {}).items():
            section += f"[providers.{name}.accounts.{account}]\n"
            if account_url != url:
                section += f'base_url = "{account_url}"\n'
            if window is not None:
                section += f'window = "{_duration(window)}"\n'
        sections.append(section)
    providers = "\n".join(sections)
    write_private(
        path,
        f"""# Written by `expiry-watchdog demo`: the embedded default database plus the sandbox.
[database]
url = "sqlite:///{(workdir / "watchdog.db").resolve()}"

[policy]
alert_lead = "48h"
capture_lead = "24h"
critical_lead = "6h"
on_deadline = "capture"

[scheduler]
scan_interval = "2s"

[api]
enabled = false

{providers}""",
    )
    return path


def run_demo(workdir: Path, passes: int) -> None:
    """Run the demo scenario and print each step."""
    workdir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    for leftover in workdir.glob("watchdog.db*"):
        leftover.unlink()
    os.environ.update(SANDBOX_ENV)
    for name, second in demo_accounts().items():
        os.environ.update(account_env(name, second.name))
    with SandboxServer() as sandbox:
        accounts = {name: {
            DEFAULT_ACCOUNT: (sandbox.base_urls()[name], None),
            second.name: (sandbox.base_urls(second.name)[name], second.window),
        } for name, second in demo_accounts().items()}
        config_path = _write_config(workdir, sandbox.base_urls(), accounts)
        config = load_config(str(config_path))
        engine = service.open_engine(config)
        schema.upgrade(engine)
        click.echo(f"sandbox listening on {sandbox.url}; database {workdir / 'watchdog.db'}")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        orders = scenario()
        account_of: dict[int, str] = {}
        for provider, account, order_id, amount, currency, age, extra in orders:
            authorized_at = now - age
            window = config.account(ProviderName(provider), account).window
            sandbox.create_order(provider, order_id, amount, currency, account=account,
                                 authorized_at=authorized_at, expires_at=authorized_at + window)
            registered = service.register(
                engine,
                config,
                {
                    "provider": provider,
                    "account": account,
                    "order_id": order_id,
                    "amount": amount,
                    "currency": currency,
                    "authorized_at": authorized_at.isoformat(),
                    "reference": f"demo-{order_id}",
                    **extra,
                },
                actor="demo",
            )
            account_of[registered.authorization.id] = account
        windows = ", ".join(
            f"{label(name, account)} window {_duration(settings.window)}"
            for name in accounts
            for account, settings in config.accounts_of(ProviderName(name)).items())
        click.echo(f"registered {len(orders)} authorizations ({windows}); "
                   "the plan for the next 72h:")
        entries, _ = service.plan_view(engine, config, dt.timedelta(hours=72))
        for e in entries[:20]:
            who = label(e.provider, account_of.get(e.authorization_id, DEFAULT_ACCOUNT))
            click.echo(
                f"  {e.at:%Y-%m-%d %H:%M} UTC  {e.what:<10} #{e.authorization_id} "
                f"{who:<15} {e.order_id}"
            )
        click.echo(f"running the daemon for {passes} passes ...")
        asyncio.run(Daemon(config, engine, max_passes=passes).run())
        with transaction(engine) as session:
            rows = list(session.scalars(select(Authorization).order_by(Authorization.id)))
            alerts = list(session.scalars(select(Alert).order_by(Alert.id)))
        click.echo("\nauthorizations after the passes:")
        for row in rows:
            click.echo(
                f"  #{row.id} {label(row.provider, row.account):<15} {row.order_id:<18} "
                f"{format_money(row.amount, row.currency):>12} -> {row.state:<18} "
                f"captured {format_money(row.captured_amount, row.currency)}"
                f"  deadline {row.deadline:%Y-%m-%d %H:%M} UTC"
            )
        click.echo("\nalerts (outbox):")
        for alert in alerts:
            click.echo(f"  [{alert.severity}] {alert.kind} {alert.status}: {alert.summary}")
        click.echo("\nsandbox ledger (effects at the providers):")
        for effect in sandbox.ledger():
            who = label(effect["provider"], effect["account"])
            click.echo(
                f"  {who:<15} {effect['operation']:<8} {effect['order_id']:<18} "
                f"{format_money(effect['amount'], effect['currency'])}"
            )
        report = audit.verify(engine)
        # As the user invoked us (``.venv/bin/expiry-watchdog`` under ``make run``).
        command = sys.argv[0] if sys.argv[0].endswith("expiry-watchdog") else "expiry-watchdog"
        click.echo(
            f"\naudit chain intact: {report.rows} rows. Try:\n"
            f"  {command} --config {config_path} plan\n"
            f"  {command} --config {config_path} show 1\n"
            f"  {command} --config {config_path} show {max(account_of)}\n"

            f"  {command} --config {config_path} explain 8\n"
            f"  {command} --config {config_path} audit verify"
        )
