"""Operator control: pause/resume money movement, approve large captures, explain a plan."""

from __future__ import annotations

import click

from watchdog import controls
from watchdog.cli.common import friendly_errors, operator
from watchdog.clock import SYSTEM_CLOCK


@click.command("pause")
@click.option("--provider", default=controls.GLOBAL, help="Pause one provider (default: all).")
@click.option("--account", default=None,
              help="Pause only this merchant account of --provider (or write PROVIDER/ACCOUNT).")
@click.option("--reason", required=True, help="Why; shown in alerts, plan and the audit.")
@click.pass_context
def pause(click_ctx: click.Context, provider: str, account: str | None, reason: str) -> None:
    """Stop moving money (globally, for one provider or one provider account); planning
    and alerting go on."""

    @friendly_errors
    def act() -> None:
        nonlocal provider
        provider = controls.scope_of(provider, account)
        controls.pause(click_ctx.obj.engine(), provider, reason, operator(), SYSTEM_CLOCK.now())
        click.echo(
            f"paused {'all providers' if provider == controls.GLOBAL else provider}: {reason}"
        )

    act()


@click.command("resume")
@click.option("--provider", default=controls.GLOBAL, help="Resume one provider (default: all).")
@click.option("--account", default=None,
              help="Resume only this merchant account of --provider (or write PROVIDER/ACCOUNT).")
@click.pass_context
def resume(click_ctx: click.Context, provider: str, account: str | None) -> None:
    """Lift a pause; what is due is acted on at the next pass."""

    @friendly_errors
    def act() -> None:
        nonlocal provider
        provider = controls.scope_of(provider, account)
        lifted = controls.resume(click_ctx.obj.engine(), provider, operator(), SYSTEM_CLOCK.now())
        click.echo(f"resumed {provider}" if lifted else f"{provider} was not paused")

    act()


@click.command("approve")
@click.argument("authorization_id", type=int)
@click.option("--note", default="", help="Why, for the audit trail.")
@click.pass_context
def approve(click_ctx: click.Context, authorization_id: int, note: str) -> None:
    """Approve an automatic capture above max_capture_amount for one authorization."""

    @friendly_errors
    def act() -> None:
        controls.approve(
            click_ctx.obj.engine(), authorization_id, operator(), SYSTEM_CLOCK.now(), note
        )
        click.echo(f"#{authorization_id}: capture approved; the next pass carries it out")

    act()


@click.command("explain")
@click.argument("authorization_id", type=int)
@click.pass_context
def explain(click_ctx: click.Context, authorization_id: int) -> None:
    """Why this authorization gets this action at this time, and what would change it."""
    from watchdog.explain import explain as explain_lines

    @friendly_errors
    def act() -> None:
        ctx = click_ctx.obj
        for line in explain_lines(ctx.engine(), ctx.config, authorization_id):
            click.echo(line)

    act()


COMMANDS = [pause, resume, approve, explain]


@click.command("resolve")
@click.argument("authorization_id", type=int)
@click.option(
    "--state",
    "state_name",
    required=True,
    type=click.Choice(["captured", "canceled", "expired", "authorized", "partially_captured"]),
    help="What you found at the provider (authorized = hand it back to the watchdog).",
)
@click.option("--captured-amount", type=int, default=None, help="Minor units captured in total.")
@click.option("--note", required=True, help="What you checked, for the audit trail.")
@click.pass_context
def resolve(
    click_ctx: click.Context,
    authorization_id: int,
    state_name: str,
    captured_amount: int | None,
    note: str,
) -> None:
    """Close out an authorization in needs_attention with what really happened."""
    from watchdog import service
    from watchdog.domain import State

    @friendly_errors
    def act() -> None:
        ctx = click_ctx.obj
        row = service.resolve_attention(
            ctx.engine(),
            ctx.config,
            authorization_id,
            State(state_name),
            operator(),
            note,
            captured_amount,
        )
        click.echo(f"#{row.id}: now {row.state}")

    act()


COMMANDS.append(resolve)
