"""Pure reconciliation: what a provider's status means for our row.

Given our view and the provider's snapshot, say which columns change and whether
the provider contradicts us (drift). No I/O: the scan applies the result.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from watchdog.domain import ActionKind, AuthorizationSnapshot, State
from watchdog.money import format_money
from watchdog.providers.base import ProviderResult, ProviderSnapshot, ProviderState


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Column updates implied by a status read, and what to tell on-call."""

    values: dict[str, Any] = field(default_factory=dict)
    new_state: State | None = None
    drift: str | None = None  # the provider contradicts us (audit + alert once)
    attention: str | None = None  # a status we cannot act on: needs a human
    mismatch: str | None = None  # the provider's amount or currency is not the registered one


def reconcile(
    auth: AuthorizationSnapshot, result: ProviderResult, now: dt.datetime
) -> Reconciliation:
    """Translate a status answer into updates for an open (or in-flight) authorization."""
    snap = result.snapshot
    if snap is None:
        return Reconciliation()
    values: dict[str, Any] = {
        "provider_state": snap.raw_state[:40],
        "last_synced_at": now,
    }
    if snap.open_amount is not None:
        values["provider_open_amount"] = max(0, min(snap.open_amount, auth.amount))
    drift = None
    if snap.expires_at is not None:
        values["provider_expires_at"] = snap.expires_at
    mismatch = money_mismatch(auth, snap)
    if snap.currency is not None and snap.currency.upper() != auth.currency.upper():
        # Amounts in another currency mean nothing to us: never capture blind.
        return Reconciliation(
            values, State.NEEDS_ATTENTION, None,
            f"{mismatch}; nothing is captured until a human finds out which is right",
            mismatch,
        )
    rec = _reconcile_state(auth, snap, values, drift)
    if mismatch is None:
        return rec
    return Reconciliation(rec.values, rec.new_state, rec.drift, rec.attention, mismatch)


def money_mismatch(auth: AuthorizationSnapshot, snap: ProviderSnapshot) -> str | None:
    """Say how the provider's amount or currency differs from the registered one, if it does."""
    if snap.currency is not None and snap.currency.upper() != auth.currency.upper():
        return (f"provider holds the authorization in {snap.currency}, registered in "
                f"{auth.currency}")
    if snap.amount is not None and snap.amount != auth.amount:
        return (f"provider holds {format_money(snap.amount, auth.currency)}, registered "
                f"{format_money(auth.amount, auth.currency)}; never more than either is "
                "captured")
    return None


def _reconcile_state(
    auth: AuthorizationSnapshot, snap: ProviderSnapshot, values: dict[str, Any],
    drift: str | None,
) -> Reconciliation:
    """The state part of ``reconcile``."""
    if snap.state is ProviderState.UNRECOGNISED:
        return Reconciliation(
            values,
            State.NEEDS_ATTENTION,
            None,
            f"provider reported an unrecognised status {snap.raw_state!r}",
        )
    provider_captured = _bounded(snap.captured_amount, auth.amount)
    if snap.state is ProviderState.CAPTURE_PENDING and not (
        auth.state.is_in_flight or auth.state.is_confirming
    ):
        # A capture is pending that we did not send (or whose answer we never booked):
        # not an effect of ours, not final; a human decides.
        return Reconciliation(
            values,
            State.NEEDS_ATTENTION,
            None,
            f"provider reports a capture pending ({snap.raw_state!r}) that the watchdog did "
            "not send; not final until the provider confirms it",
        )
    if snap.state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING):
        if provider_captured is None and auth.captured_amount == 0 and not auth.state.is_in_flight:
            # Captured by someone else and the API does not say how much: never guess.
            return Reconciliation(
                values,
                State.NEEDS_ATTENTION,
                None,
                f"provider reports {snap.raw_state!r} but the watchdog never captured it and "
                "the amount is not shown; record what was captured by hand",
            )
        captured = max(provider_captured or 0, auth.captured_amount)
        if auth.captured_amount == 0 and auth.state is not State.CAPTURING:
            drift = (
                "provider reports the authorization captured, but the watchdog never captured it"
            )
        values.update(captured_amount=min(captured, auth.amount))
        return Reconciliation(values, State.CAPTURED, drift)
    if snap.state is ProviderState.PARTIALLY_CAPTURED:
        new_state = None
        if provider_captured is not None and provider_captured > auth.captured_amount:
            values["captured_amount"] = provider_captured
            if auth.state is not State.CAPTURING:
                drift = "provider reports more captured than the watchdog recorded"
                # A capture we did not make still counts: on a single-capture provider
                # (JPMMPS, Flitt) it leaves nothing open, and the row must say so.
                values["capture_count"] = auth.capture_count + 1
            if auth.state is State.AUTHORIZED:
                new_state = State.PARTIALLY_CAPTURED
        return Reconciliation(values, new_state, drift)
    if snap.state is ProviderState.CANCELED:
        if auth.captured_amount > 0:
            return Reconciliation(values, State.CAPTURED, None)
        if auth.state in (State.CANCELING, State.CONFIRMING_CANCEL):
            return Reconciliation(values, State.CANCELED, None)
        # Released at the provider (lapsed, voided, reversed) and we sent no cancel: the
        # money is lost until a human says otherwise. Never filed as our cancel.
        return Reconciliation(
            values,
            State.EXPIRED,
            f"provider reports the hold released ({snap.raw_state!r}) but the watchdog never "
            "cancelled it: the authorization is lost",
        )
    if snap.state is ProviderState.EXPIRED:
        if auth.captured_amount > 0:
            return Reconciliation(values, State.CAPTURED, None)
        if auth.state in (State.CANCELING, State.CONFIRMING_CANCEL):
            return Reconciliation(values, State.CANCELED, None)  # released, as we asked
        return Reconciliation(values, State.EXPIRED, "provider reports the authorization expired")
    if snap.state in (ProviderState.DECLINED, ProviderState.PENDING):
        return Reconciliation(
            values,
            State.NEEDS_ATTENTION,
            None,
            f"provider reports {snap.raw_state!r}: not an open authorization",
        )
    return Reconciliation(values, None, drift)


def effect_present(
    auth: AuthorizationSnapshot, kind: ActionKind, amount: int | None, snap: ProviderSnapshot
) -> bool | None:
    """Did our in-flight action take effect? True / False / None (cannot tell)."""
    if snap.state is ProviderState.UNRECOGNISED:
        return None
    if kind is ActionKind.CAPTURE:
        if snap.captured_amount is not None and amount is not None:
            return snap.captured_amount >= auth.captured_amount + amount
        if snap.state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING):
            return True
        if snap.state in (ProviderState.AUTHORIZED,):
            return False
        return None
    if snap.state is ProviderState.CANCELED:
        return True
    if snap.state in (ProviderState.AUTHORIZED, ProviderState.PARTIALLY_CAPTURED):
        return False
    if snap.state is ProviderState.CAPTURED and auth.captured_amount > 0:
        return True  # the remainder was released after a partial capture
    return None


class Verdict(enum.StrEnum):
    """What a status read says about an effect the provider accepted as pending."""

    CONFIRMED = "confirmed"  # the provider shows our effect done
    FAILED = "failed"  # the provider shows it gone: nothing moved, the hold is what it was
    PENDING = "pending"  # still not final
    UNKNOWN = "unknown"  # the answer does not tell (no snapshot, or a status we do not know)


def confirmation(
    auth: AuthorizationSnapshot, kind: ActionKind, amount: int | None,
    snap: ProviderSnapshot | None,
) -> tuple[Verdict, int | None]:
    """Is a pending capture / cancel confirmed, failed or still pending? With the amount the
    provider shows captured (None when it does not say)."""
    if snap is None or snap.state is ProviderState.UNRECOGNISED:
        return Verdict.UNKNOWN, None
    captured = snap.captured_amount
    if snap.state is ProviderState.CAPTURE_PENDING:
        return Verdict.PENDING, captured
    if kind is ActionKind.CAPTURE:
        if snap.state in (ProviderState.CAPTURED, ProviderState.PARTIALLY_CAPTURED):
            if captured is not None and captured <= auth.captured_amount:
                return Verdict.FAILED, captured  # nothing of ours is in it
            if captured is None and snap.state is ProviderState.PARTIALLY_CAPTURED:
                return Verdict.UNKNOWN, captured  # something captured, not said how much
            return Verdict.CONFIRMED, captured
        if snap.state is ProviderState.AUTHORIZED:
            return Verdict.FAILED, captured
        if snap.state in (ProviderState.DECLINED, ProviderState.CANCELED, ProviderState.EXPIRED):
            if captured:
                return Verdict.CONFIRMED, captured
            return Verdict.FAILED, captured
        return Verdict.UNKNOWN, captured
    if snap.state in (ProviderState.CANCELED, ProviderState.EXPIRED):
        return Verdict.CONFIRMED, captured
    if snap.state is ProviderState.CAPTURED and auth.captured_amount > 0:
        return Verdict.CONFIRMED, captured  # the remainder is released
    if snap.state in (ProviderState.AUTHORIZED, ProviderState.PARTIALLY_CAPTURED):
        return Verdict.PENDING, captured  # the hold is still there: not released yet
    return Verdict.UNKNOWN, captured


def _bounded(value: int | None, maximum: int) -> int | None:
    if value is None:
        return None
    return max(0, min(value, maximum))
