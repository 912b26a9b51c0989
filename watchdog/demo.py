"""``expiry-watchdog demo``: the whole loop against the in-repo sandbox, no credentials needed.

Starts the sandbox on a free loopback port, writes a config and an embedded SQLite
database under ``--dir``, registers authorizations across the four providers at
different ages, runs the daemon for a few passes, and prints what happened.
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
from watchdog.config import load_config
from watchdog.db import transaction
from watchdog.models import Alert, Authorization
from watchdog.money import format_money
from watchdog.private import PRIVATE_DIR, write_private
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.dialect import dialects
from watchdog.sandbox.server import SandboxServer
from watchdog.scheduler import Daemon


def scenario() -> list[tuple[str, str, int, str, dt.timedelta, dict[str, object]]]:
    """Every order the demo registers, provider by provider (each dialect's ``demo_orders``):
    (provider, order id, amount, currency, age, extra fields)."""
    return [(d.name, *order) for d in dialects() for order in d.demo_orders]


def _write_config(workdir: Path, base_urls: dict[str, str]) -> Path:
    path = workdir / "watchdog.toml"
    providers = "\n".join(
        f'[providers.{name}]\nbase_url = "{url}"\n' for name, url in base_urls.items()
    )
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
    with SandboxServer() as sandbox:
        config_path = _write_config(workdir, sandbox.base_urls())
        config = load_config(str(config_path))
        engine = service.open_engine(config)
        schema.upgrade(engine)
        click.echo(f"sandbox listening on {sandbox.url}; database {workdir / 'watchdog.db'}")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        orders = scenario()
        for provider, order_id, amount, currency, age, extra in orders:
            authorized_at = now - age
            sandbox.create_order(provider, order_id, amount, currency, authorized_at=authorized_at)
            service.register(
                engine,
                config,
                {
                    "provider": provider,
                    "order_id": order_id,
                    "amount": amount,
                    "currency": currency,
                    "authorized_at": authorized_at.isoformat(),
                    "reference": f"demo-{order_id}",
                    **extra,
                },
                actor="demo",
            )
        click.echo(f"registered {len(orders)} authorizations; the plan for the next 72h:")
        entries, _ = service.plan_view(engine, config, dt.timedelta(hours=72))
        for e in entries[:20]:
            click.echo(
                f"  {e.at:%Y-%m-%d %H:%M} UTC  {e.what:<10} #{e.authorization_id} "
                f"{e.provider:<9} {e.order_id}"
            )
        click.echo(f"running the daemon for {passes} passes ...")
        asyncio.run(Daemon(config, engine, max_passes=passes).run())
        with transaction(engine) as session:
            rows = list(session.scalars(select(Authorization).order_by(Authorization.id)))
            alerts = list(session.scalars(select(Alert).order_by(Alert.id)))
        click.echo("\nauthorizations after the passes:")
        for row in rows:
            click.echo(
                f"  #{row.id} {row.provider:<9} {row.order_id:<18} "
                f"{format_money(row.amount, row.currency):>12} -> {row.state:<18} "
                f"captured {format_money(row.captured_amount, row.currency)}"
            )
        click.echo("\nalerts (outbox):")
        for alert in alerts:
            click.echo(f"  [{alert.severity}] {alert.kind} {alert.status}: {alert.summary}")
        click.echo("\nsandbox ledger (effects at the providers):")
        for effect in sandbox.ledger():
            click.echo(
                f"  {effect['provider']:<9} {effect['operation']:<8} {effect['order_id']:<18} "
                f"{format_money(effect['amount'], effect['currency'])}"
            )
        report = audit.verify(engine)
        # As the user invoked us (``.venv/bin/expiry-watchdog`` under ``make run``).
        command = sys.argv[0] if sys.argv[0].endswith("expiry-watchdog") else "expiry-watchdog"
        click.echo(
            f"\naudit chain intact: {report.rows} rows. Try:\n"
            f"  {command} --config {config_path} plan\n"
            f"  {command} --config {config_path} show 1\n"
            f"  {command} --config {config_path} explain 8\n"
            f"  {command} --config {config_path} audit verify"
        )
