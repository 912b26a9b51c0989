"""On-call commands: ``check`` (Nagios/Icinga plugin), ``ack``, ``notify`` and ``alerts``.

They expect the root group's context object (``watchdog.cli.common.Ctx``: ``.config`` and
``.engine()``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import httpx
from sqlalchemy import select

from watchdog.alerts.outbox import AlertStatus
from watchdog.alerts.settings import alert_settings_of
from watchdog.cli.common import error_report, fail, operator
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.durations import parse_duration
from watchdog.errors import WatchdogError


def _parse(value: str, option: str) -> Any:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _obj(ctx: click.Context) -> Any:
    obj = ctx.find_root().obj
    if obj is None:
        raise click.UsageError("run through `expiry-watchdog` (no context object)")
    return obj


def _clock(ctx: click.Context) -> Clock:
    """The context object's clock when it has one (tests), else the wall clock."""
    clock = getattr(ctx.find_root().obj, "clock", None)
    return clock if clock is not None else SYSTEM_CLOCK


@click.command("check")
@click.option("--warning-stale", default="15m", envvar="WATCHDOG_CHECK_WARNING_STALE",
              show_envvar=True, help="WARNING when the last successful pass is older.")
@click.option("--critical-stale", default="1h", envvar="WATCHDOG_CHECK_CRITICAL_STALE",
              show_envvar=True, help="CRITICAL when the last successful pass is older.")
@click.pass_context
def check(ctx: click.Context, warning_stale: str, critical_stale: str) -> None:
    """Nagios/Icinga plugin: one status line with perfdata; exit 0/1/2/3.

    Exit codes are OK/WARNING/CRITICAL/UNKNOWN.

    The authorizations are judged with check's own clock and the configured leads (each
    merchant account's own where it overrides its provider's policy), not through the
    scanner's alerts; an example id of a named account shows it (``#4 flitt/ge-shop``).
    CRITICAL: an open authorization is past its deadline,
    inside critical_lead with no capture or cancel in flight, expired and unacknowledged, or
    needs attention; a critical alert fires; no pass ever succeeded, or the last one is
    older than --critical-stale. WARNING: an alert-only authorization is inside alert_lead,
    a capture or cancel is pending the provider's confirmation, warning alerts fire, or the
    last pass is older than --warning-stale, or a worker holds rows without a heartbeat within
    one lease (they come free by themselves; a live worker takes them). UNKNOWN: no usable
    database.
    """
    from watchdog.health import CheckCode, CheckResult, nagios_check

    warn = _parse(warning_stale, "--warning-stale")
    crit = _parse(critical_stale, "--critical-stale")
    if warn > crit:
        raise click.BadParameter("must not exceed --critical-stale", param_hint="--warning-stale")
    obj = _obj(ctx)
    try:
        engine = obj.engine()
    except Exception as exc:  # noqa: BLE001 - a plugin answers UNKNOWN, never a traceback
        reason = error_report(exc)[0].removeprefix("error: ")
        result = CheckResult(CheckCode.UNKNOWN, [f"cannot open the database: {reason}"])
    else:
        try:
            result = nagios_check(engine, _clock(ctx), warn, crit, obj.config)
        finally:
            engine.dispose()
    click.echo(result.line)
    sys.exit(int(result.code))


@click.command("ack")
@click.argument("authorization_id", type=int)
@click.option("--note", required=True, help="Why: goes to the audit trail and to on-call.")
@click.pass_context
def ack(ctx: click.Context, authorization_id: int, note: str) -> None:
    """Acknowledge an authorization's firing alerts: no more notifications until they escalate."""
    from watchdog.alerts.ack import acknowledge

    try:
        engine = _obj(ctx).engine()
        try:
            done = acknowledge(engine, authorization_id, note, operator(), _clock(ctx))
        finally:
            engine.dispose()
    except WatchdogError as exc:
        fail(exc)
        return
    for item in done:
        click.echo(f"acknowledged {item.kind} ({item.severity}): {item.summary}")


@click.command("notify")
@click.pass_context
def notify(ctx: click.Context) -> None:
    """Evaluate health alerts and deliver pending alerts once (for timer mode, after `scan`)."""
    from watchdog.alerts.health import evaluate_health
    from watchdog.alerts.sender import deliver_pending

    try:
        obj = _obj(ctx)
        settings = alert_settings_of(obj.config)
        engine = obj.engine()
    except WatchdogError as exc:
        fail(exc)
        return

    async def once() -> str:
        async with httpx.AsyncClient() as client:
            report = await deliver_pending(engine, settings, client, SYSTEM_CLOCK)
        return report.summary()

    try:
        evaluate_health(engine, settings, SYSTEM_CLOCK)
        click.echo(asyncio.run(once()))
    finally:
        engine.dispose()


@click.command("alerts")
@click.option("--all", "show_all", is_flag=True, help="Include resolved alerts.")
@click.pass_context
def alerts_cmd(ctx: click.Context, show_all: bool) -> None:
    """List firing and acknowledged alerts (and their delivery state)."""
    from watchdog.db import transaction
    from watchdog.models import Alert

    try:
        engine = _obj(ctx).engine()
    except WatchdogError as exc:
        fail(exc)
        return
    try:
        with transaction(engine) as session:
            query = select(Alert).order_by(Alert.updated_at.desc())
            if not show_all:
                query = query.where(Alert.status != AlertStatus.RESOLVED.value)
            rows = list(session.scalars(query))
    finally:
        engine.dispose()
    if not rows:
        click.echo("no alerts")
    for a in rows:
        subject = f"authorization {a.authorization_id}" if a.authorization_id else a.provider
        delivered = "delivered" if a.notified_revision >= a.revision else "delivering"
        click.echo(f"{a.updated_at:%Y-%m-%d %H:%M}Z {a.status:<12} {a.severity:<8} {a.kind:<22} "
                   f"{subject}  r{a.revision} {delivered}: {a.summary}")


COMMANDS = (check, ack, notify, alerts_cmd)
