"""The early read: every newly registered authorization gets a status read soon after it
is registered, not first at ``alert_at``.

The provider's word beats our model: Smartpay's ``expiresAt`` and Clearpay's ``expires``
may be days before the window we computed, the provider may hold another amount or
currency, or not know the order at all. The read is the ordinary sync (audited, re-plans
the row; an earlier deadline is audited as ``scan:deadline:earlier``), after which the row
is worked like any other, so a deadline that moved into the past acts at once.

The reads never delay due work: a pass makes them only once its due rows are done, at most
``scheduler.batch_size`` of them, earliest deadline first, through the same rate and
concurrency limits as every other provider call. A large import is read over several
passes. Rows are found through a partial index on unsynced rows (migration 0005), so the
cost follows the batch, not the table.
"""

from __future__ import annotations

import datetime as dt

from watchdog.alerts.outbox import AlertKind, Severity
from watchdog.domain import State
from watchdog.models import Authorization
from watchdog.providers import registry
from watchdog.providers.base import Outcome, ProviderResult
from watchdog.scan.context import ScanContext
from watchdog.scan.sync import read_status, status_event, status_into
from watchdog.transitions import Event

# How a provider says "no such order" to a status read: an HTTP status, one of the codes
# its ``SPEC.not_found_codes`` lists, or the in-memory fake's words.
NOT_FOUND_STATUSES = frozenset({404, 412})
NOT_FOUND_WORDS = frozenset({"order not found"})


async def claim_unsynced(
    ctx: ScanContext, now: dt.datetime, limit: int
) -> list[Authorization]:
    """Lease up to ``limit`` open rows never read from the provider, earliest deadline
    first, skipping rows another worker holds (each claim bumps the generation); through
    the committer, like every other write of the scan."""
    return await ctx.committer.claim_unsynced(ctx.worker, now, ctx.config.scheduler.lease, limit)


def _not_found_codes() -> frozenset[str]:
    return NOT_FOUND_WORDS.union(*(s.not_found_codes for s in registry.specs()))


def order_unknown(result: ProviderResult) -> bool:
    """Did the provider answer the status read with a definite "no such order"?"""
    if result.outcome is not Outcome.REJECTED:
        return False
    return result.http_status in NOT_FOUND_STATUSES or (
        result.provider_code is not None and result.provider_code in _not_found_codes()
    )


async def early_read(ctx: ScanContext, row: Authorization) -> None:
    """Read the provider's status of a newly registered row and apply it (or page when the
    provider does not know the order)."""
    result = await read_status(ctx, row)
    now = ctx.clock.now()
    write = ctx.write(row, now)
    if result is not None and order_unknown(result):
        why = (f"the provider does not know this order ({result.describe()}); "
               "check the provider and order id it was registered with")
        write.events.append(status_event(ctx, row, result))
        write.transition(Event.UNKNOWN_ORDER, {
            "state": State.NEEDS_ATTENTION.value, "last_synced_at": now, "updated_at": now,
            "last_error": why, "instruction": None,
        })
        write.events.append(ctx.event(row, "scan:early_read:unknown_order",
                                      state_to=State.NEEDS_ATTENTION.value,
                                      detail={"reason": why}))
        ctx.replan_into(write)
        write.alerts.append(lambda session: ctx.alert(
            session, row, AlertKind.NEEDS_ATTENTION, Severity.CRITICAL,
            f"{row.provider} order {row.order_id}: {why}", why, now,
        ))
        await ctx.commit(write)
        return
    status_into(ctx, write, result)
    await ctx.commit(write)
