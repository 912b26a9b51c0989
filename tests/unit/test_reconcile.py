"""Reconciliation: what a provider's status means for our row, and when it contradicts us."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tests.support.planning import T0, rules, snapshot
from watchdog.domain import ActionKind, AuthorizationSnapshot, ProviderName, State
from watchdog.policy import open_amount
from watchdog.providers.base import Outcome, ProviderResult, ProviderSnapshot, ProviderState
from watchdog.reconcile import effect_present, reconcile

NOW = T0 + dt.timedelta(days=2)
PS = ProviderState


def answer(state: ProviderState, raw: str | None = None, **snap: object) -> ProviderResult:
    return ProviderResult(
        Outcome.SUCCEEDED, "status", ProviderName.SMARTPAY,
        snapshot=ProviderSnapshot(state, raw or state.value, **snap),  # type: ignore[arg-type]
    )


OPEN = snapshot()
PARTIAL = snapshot(state=State.PARTIALLY_CAPTURED, captured_amount=3_000, capture_count=1)


@pytest.mark.parametrize(
    ("auth", "provider", "new_state", "drifts", "attention"),
    [
        (OPEN, PS.AUTHORIZED, None, False, False),
        # Captured elsewhere with no amount shown: a human records it, nothing is guessed.
        (OPEN, PS.CAPTURED, State.NEEDS_ATTENTION, False, True),
        (OPEN, PS.CAPTURE_PENDING, State.NEEDS_ATTENTION, False, True),
        # Released at the provider without our cancel: lost money, never "canceled".
        (OPEN, PS.CANCELED, State.EXPIRED, True, False),
        (OPEN, PS.EXPIRED, State.EXPIRED, True, False),
        (OPEN, PS.DECLINED, State.NEEDS_ATTENTION, False, True),
        (OPEN, PS.PENDING, State.NEEDS_ATTENTION, False, True),
        (OPEN, PS.UNRECOGNISED, State.NEEDS_ATTENTION, False, True),
        (PARTIAL, PS.PARTIALLY_CAPTURED, None, False, False),
        (PARTIAL, PS.CANCELED, State.CAPTURED, False, False),
        (PARTIAL, PS.EXPIRED, State.CAPTURED, False, False),
        (PARTIAL, PS.UNRECOGNISED, State.NEEDS_ATTENTION, False, True),
        (snapshot(state=State.CAPTURING), PS.CAPTURED, State.CAPTURED, False, False),
        (snapshot(state=State.CANCELING), PS.CANCELED, State.CANCELED, False, False),
        (snapshot(state=State.CONFIRMING_CANCEL), PS.CANCELED, State.CANCELED, False, False),
        (snapshot(state=State.CAPTURING), PS.CANCELED, State.EXPIRED, True, False),
    ],
)
def test_provider_states_map_to_our_states(
    auth: AuthorizationSnapshot, provider: ProviderState, new_state: State | None,
    drifts: bool, attention: bool,
) -> None:
    rec = reconcile(auth, answer(provider), NOW)
    assert rec.new_state is new_state
    assert (rec.drift is not None) is drifts
    assert (rec.attention is not None) is attention
    assert rec.values["last_synced_at"] == NOW
    assert rec.values["provider_state"] == provider.value


def test_captured_at_the_provider_but_not_by_us_is_drift() -> None:
    rec = reconcile(OPEN, answer(PS.CAPTURED, captured_amount=10_000), NOW)
    assert rec.new_state is State.CAPTURED
    assert rec.drift is not None and "never captured" in rec.drift
    assert rec.values["captured_amount"] == 10_000


def test_captured_without_an_amount_records_at_least_what_we_knew() -> None:
    rec = reconcile(PARTIAL, answer(PS.CAPTURED), NOW)
    assert rec.values["captured_amount"] == 3_000
    assert rec.drift is None


def test_unrecognised_status_is_never_guessed_at() -> None:
    rec = reconcile(OPEN, answer(PS.UNRECOGNISED, raw="ON_HOLD_FOR_REVIEW", captured_amount=5),
                    NOW)
    assert rec.new_state is State.NEEDS_ATTENTION
    assert rec.attention is not None and "ON_HOLD_FOR_REVIEW" in rec.attention
    assert "captured_amount" not in rec.values


def test_no_snapshot_changes_nothing() -> None:
    result = ProviderResult(Outcome.UNKNOWN, "status", ProviderName.SMARTPAY)
    rec = reconcile(OPEN, result, NOW)
    assert (rec.values, rec.new_state, rec.drift, rec.attention) == ({}, None, None, None)


def test_provider_amounts_and_expiry_are_recorded_within_bounds() -> None:
    expires = T0 + dt.timedelta(days=5)
    rec = reconcile(OPEN, answer(PS.AUTHORIZED, raw="x" * 100, open_amount=99_999,
                                 expires_at=expires), NOW)
    assert rec.values["provider_open_amount"] == 10_000
    assert rec.values["provider_expires_at"] == expires
    assert len(rec.values["provider_state"]) == 40
    rec = reconcile(OPEN, answer(PS.AUTHORIZED, open_amount=-3), NOW)
    assert rec.values["provider_open_amount"] == 0


def test_provider_captured_more_than_authorized_is_bounded() -> None:
    rec = reconcile(OPEN, answer(PS.CAPTURED, captured_amount=50_000), NOW)
    assert rec.values["captured_amount"] == 10_000


def test_partial_capture_we_did_not_make_is_drift_and_moves_the_state() -> None:
    """Regression: the row stayed ``authorized`` with a capture count of 0, so on a
    single-capture provider the planner still saw the whole remainder as open and would
    plan a second capture the provider does not allow."""
    flitt = snapshot(provider=ProviderName.FLITT, currency="GEL")
    rec = reconcile(flitt, answer(PS.PARTIALLY_CAPTURED, captured_amount=4_000), NOW)
    assert rec.new_state is State.PARTIALLY_CAPTURED
    assert rec.drift is not None and "more captured" in rec.drift
    assert rec.values["captured_amount"] == 4_000
    after = replace(flitt, state=rec.new_state, captured_amount=rec.values["captured_amount"],
                    capture_count=rec.values["capture_count"])
    assert open_amount(after, rules(ProviderName.FLITT)) == 0


def test_more_captured_on_a_partially_captured_row_is_drift() -> None:
    rec = reconcile(PARTIAL, answer(PS.PARTIALLY_CAPTURED, captured_amount=5_000), NOW)
    assert rec.new_state is None
    assert rec.drift is not None
    assert rec.values["captured_amount"] == 5_000
    assert rec.values["capture_count"] == 2


def test_our_own_capture_in_flight_is_not_drift() -> None:
    capturing = snapshot(state=State.CAPTURING)
    rec = reconcile(capturing, answer(PS.PARTIALLY_CAPTURED, captured_amount=4_000), NOW)
    assert rec.drift is None
    assert "capture_count" not in rec.values


def test_captured_while_we_were_cancelling_is_drift() -> None:
    """Regression: any in-flight state silenced the drift, so money that moved while we
    were asking for a cancel was recorded without telling anyone."""
    rec = reconcile(snapshot(state=State.CANCELING), answer(PS.CAPTURED), NOW)
    assert rec.new_state is State.CAPTURED
    assert rec.drift is not None


def test_released_while_we_were_capturing_is_lost_money() -> None:
    rec = reconcile(snapshot(state=State.CAPTURING), answer(PS.CANCELED), NOW)
    assert rec.new_state is State.EXPIRED
    assert rec.drift is not None and "never cancelled" in rec.drift


# ------------------------------------------------------------------ effect_present


def _snap(state: ProviderState, **values: object) -> ProviderSnapshot:
    return ProviderSnapshot(state, state.value, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("auth", "kind", "amount", "snap", "expected"),
    [
        (OPEN, ActionKind.CAPTURE, 4_000, _snap(PS.PARTIALLY_CAPTURED, captured_amount=4_000), True),
        (OPEN, ActionKind.CAPTURE, 4_000, _snap(PS.AUTHORIZED, captured_amount=0), False),
        (PARTIAL, ActionKind.CAPTURE, 2_000, _snap(PS.PARTIALLY_CAPTURED, captured_amount=3_000),
         False),
        (PARTIAL, ActionKind.CAPTURE, 2_000, _snap(PS.PARTIALLY_CAPTURED, captured_amount=5_000),
         True),
        (OPEN, ActionKind.CAPTURE, 4_000, _snap(PS.CAPTURED), True),
        (OPEN, ActionKind.CAPTURE, 4_000, _snap(PS.CAPTURE_PENDING), True),
        (OPEN, ActionKind.CAPTURE, 4_000, _snap(PS.AUTHORIZED), False),
        (OPEN, ActionKind.CAPTURE, 4_000, _snap(PS.EXPIRED), None),
        (OPEN, ActionKind.CAPTURE, 4_000, _snap(PS.UNRECOGNISED, captured_amount=4_000), None),
        (OPEN, ActionKind.CANCEL, None, _snap(PS.CANCELED), True),
        (OPEN, ActionKind.CANCEL, None, _snap(PS.AUTHORIZED), False),
        (PARTIAL, ActionKind.CANCEL, None, _snap(PS.PARTIALLY_CAPTURED), False),
        (PARTIAL, ActionKind.CANCEL, None, _snap(PS.CAPTURED), True),
        (OPEN, ActionKind.CANCEL, None, _snap(PS.CAPTURED), None),
        (OPEN, ActionKind.CANCEL, None, _snap(PS.EXPIRED), None),
        (OPEN, ActionKind.CANCEL, None, _snap(PS.UNRECOGNISED), None),
    ],
)
def test_effect_present(
    auth: AuthorizationSnapshot, kind: ActionKind, amount: int | None, snap: ProviderSnapshot,
    expected: bool | None,
) -> None:
    assert effect_present(auth, kind, amount, snap) is expected


def test_captured_elsewhere_with_an_amount_is_drift_with_that_amount() -> None:
    rec = reconcile(OPEN, answer(PS.CAPTURED, captured_amount=4_000), NOW)
    assert rec.new_state is State.CAPTURED
    assert rec.drift is not None
    assert rec.values["captured_amount"] == 4_000


# ------------------------------------------------------------------ amount / currency mismatch


@pytest.mark.parametrize(
    ("shown", "mismatch", "new_state"),
    [
        ({"amount": OPEN.amount, "currency": OPEN.currency}, False, None),
        ({}, False, None),  # the API does not show them: nothing to compare
        ({"amount": OPEN.amount + 500, "currency": OPEN.currency}, True, None),
        ({"amount": OPEN.amount - 500}, True, None),
        ({"amount": OPEN.amount, "currency": "XXX"}, True, State.NEEDS_ATTENTION),
    ],
)
def test_provider_amount_or_currency_differing_is_a_mismatch(
    shown: dict[str, object], mismatch: bool, new_state: State | None,
) -> None:
    rec = reconcile(OPEN, answer(PS.AUTHORIZED, open_amount=OPEN.amount, **shown), NOW)
    assert (rec.mismatch is not None) is mismatch
    assert rec.new_state is new_state
    # Never more than registered, whatever the provider holds.
    assert rec.values["provider_open_amount"] <= OPEN.amount
