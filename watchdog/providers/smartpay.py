"""Smartpay (smartpay.co): capture = create a payment; cancel = order cancellation.

Wire facts (providers.md §1): ``Authorization: Basic <secret key>`` with the raw key
(no base64, as every official SDK sends it); amounts are integers in the smallest
unit; ``Idempotency-Key`` header on POST/PUT; errors ``{errorCode, message, details}``.

Decisions documented here:

* ``final=False`` sends ``cancelRemainder: "manual"`` so a later capture stays
  possible; ``final=True`` sends ``"automatic"`` (spelled correctly, unlike the
  Python SDK's constant) so the remainder is released.
* 409 ``order.cannot-capture`` is REJECTED, unless its message says the order is
  already captured (``already captured`` / ``succeeded``): that is ALREADY_DONE —
  after our own lost answer a replay outside the 6 h idempotency window lands
  here. The caller confirms the amount with ``status``.
* ``canceled`` is CANCELED, or EXPIRED when the order's last update (``updatedAt``)
  is at or after ``expiresAt`` (the provider's auto-cancel). Without ``updatedAt``
  it stays CANCELED: both are final and neither captured anything more.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchdog.domain import ProviderName
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderResult,
    ProviderRules,
    ProviderSnapshot,
    ProviderState,
)
from watchdog.providers.http import (
    Answer,
    CallContext,
    HttpAdapter,
    malformed,
    ms_epoch_to_utc,
    seg,
)
from watchdog.providers.spec import ProviderSpec

NAME = ProviderName.declare("smartpay")
KEY_ENV = "WATCHDOG_SMARTPAY_SECRET_KEY"

_STATES: dict[str, ProviderState] = {
    "requires_authorization": ProviderState.PENDING,
    "pending": ProviderState.PENDING,
    "requires_capture": ProviderState.AUTHORIZED,
    "succeeded": ProviderState.CAPTURED,
    "canceled": ProviderState.CANCELED,
    "rejected": ProviderState.DECLINED,
    "failed": ProviderState.DECLINED,
}
_ALREADY_CAPTURED_HINTS = ("already captured", "already been captured", "succeeded",
                           "fully captured")


def _int(value: Any) -> int | None:
    """An integer (never a bool); None otherwise: Smartpay amounts are minor-unit integers."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def snapshot_from_order(order: Any) -> ProviderSnapshot | str:
    """Normalise an Order object; a string explains why it could not be read."""
    if not isinstance(order, dict):
        return "the order is not a JSON object"
    raw_state = order.get("status")
    if not isinstance(raw_state, str):
        return "the order has no status"
    amount = _int(order.get("amount"))
    expires_at = ms_epoch_to_utc(order.get("expiresAt"))
    payments = order.get("payments")
    captured: int | None = None
    has_payments = False
    if isinstance(payments, list):
        has_payments = bool(payments)
        amounts = [_int(p.get("amount")) if isinstance(p, dict) else None for p in payments]
        if all(a is not None for a in amounts):
            captured = sum(a for a in amounts if a is not None)
    state = _STATES.get(raw_state, ProviderState.UNRECOGNISED)
    open_amount: int | None = None
    if state is ProviderState.AUTHORIZED:
        if has_payments or (captured or 0) > 0:
            state = ProviderState.PARTIALLY_CAPTURED
        if amount is not None and captured is not None:
            open_amount = max(amount - captured, 0)
    elif state in (ProviderState.CAPTURED, ProviderState.CANCELED, ProviderState.DECLINED):
        open_amount = 0
    if state is ProviderState.CANCELED and expires_at is not None:
        updated = ms_epoch_to_utc(order.get("updatedAt"))
        if updated is not None and updated >= expires_at:
            state = ProviderState.EXPIRED
    shown_currency = order.get("currency")
    return ProviderSnapshot(state, raw_state, captured_amount=captured,
                            open_amount=open_amount, expires_at=expires_at, amount=amount,
                            currency=shown_currency if isinstance(shown_currency, str) else None)


def capture_result(
    ctx: CallContext, answer: Answer, data: Any, ref: AuthRef, amount: int
) -> ProviderResult:
    """What a created payment means: SUCCEEDED when it is the one we asked for."""
    if (not isinstance(data, dict) or not isinstance(data.get("id"), str)
            or _int(data.get("amount")) is None):
        return malformed(ctx, answer, "the payment has no id or amount")
    order = data.get("order")
    if data.get("amount") != amount or (isinstance(order, str) and order != ref.order_id):
        return malformed(ctx, answer, f"the payment does not match the request "
                         f"(amount {data.get('amount')!r}, order {data.get('order')!r})")
    return ctx.answered(Outcome.SUCCEEDED, f"payment {data['id']} created for {amount}", answer)


def cancel_result(ctx: CallContext, answer: Answer, snap: ProviderSnapshot) -> ProviderResult:
    """What a cancellation answer means: nothing left open (canceled, expired, captured)."""
    if snap.state not in (ProviderState.CANCELED, ProviderState.EXPIRED, ProviderState.CAPTURED):
        return malformed(ctx, answer, f"order status after cancellation is {snap.raw_state!r}",
                         snapshot=snap)
    return ctx.answered(Outcome.SUCCEEDED, f"order cancellation accepted ({snap.raw_state})",
                        answer, snapshot=snap)


class SmartpayAdapter(HttpAdapter):
    """Smartpay's orders/payments API."""

    provider = NAME
    status_words = ("order status", "order")

    def _configure(self) -> None:
        """The secret key, sent raw as the Basic credential."""
        self._key = self._settings.credential(KEY_ENV)
        self._secret_values = (self._key,)

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        """Credentials on every call; the key (and a JSON body) only on POST/PUT."""
        headers = {
            "Authorization": f"Basic {self._key.reveal()}",
            "Accept": "application/json",
            "User-Agent": self._settings.user_agent,
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
            headers["Content-Type"] = "application/json"
        return headers

    def _status_route(self, order_id: str) -> tuple[str, str, Any]:
        """GET /orders/{id}?expand=all."""
        return "GET", f"/orders/{seg(order_id)}?expand=all", None

    def _parse_snapshot(self, data: Any, currency: str) -> ProviderSnapshot | str:
        """An Order object (amounts are minor units: no currency needed)."""
        return snapshot_from_order(data)

    def _error_fields(self, answer: Answer) -> tuple[str | None, str, str | None]:
        """``{errorCode, message}``; the request id is the header's."""
        if isinstance(answer.data, dict):
            code = answer.data.get("errorCode")
            message = answer.data.get("message")
            return (str(code) if code is not None else None,
                    str(message) if message is not None else "", answer.request_id)
        return None, "", answer.request_id

    def _known_failure(
        self, ctx: CallContext, answer: Answer, code: str | None, text: str, rid: str | None,
    ) -> ProviderResult | None:
        """``order.cannot-capture`` for an order already captured; the check's 404."""
        if (ctx.operation == "capture" and code == "order.cannot-capture"
                and any(h in text.lower() for h in _ALREADY_CAPTURED_HINTS)):
            return ctx.answered(Outcome.ALREADY_DONE, f"the order is already captured: {text}; "
                                "confirm the captured amount with a status read", answer,
                                provider_code=code, request_id=rid)
        if ctx.operation == "check" and answer.status == 404:
            return ctx.answered(Outcome.SUCCEEDED, "credentials accepted and Smartpay reachable "
                                "(sentinel order not found, as expected)", answer,
                                provider_code=code, request_id=rid)
        return None

    async def _capture(
        self, ctx: CallContext, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /payments {order, amount, currency, cancelRemainder}."""
        body = {"order": ref.order_id, "amount": amount, "currency": ref.currency,
                "cancelRemainder": "automatic" if final else "manual"}
        return await self._send(ctx, "POST", "/payments",
                                lambda answer, data: capture_result(ctx, answer, data, ref, amount),
                                body=body, headers=self._headers(idempotency_key))

    async def _cancel(self, ctx: CallContext, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """PUT /orders/{id}/cancellation (no body)."""
        return await self._call(ctx, "PUT", f"/orders/{seg(ref.order_id)}/cancellation",
                                lambda answer, snap: cancel_result(ctx, answer, snap),
                                currency=ref.currency, headers=self._headers(idempotency_key))


SPEC = ProviderSpec(
    name=NAME,
    rank=10,
    rules=ProviderRules(NAME, dt.timedelta(days=7), multiple_captures=True,
                        partial_releases_remainder=True, reports_expiry=True),
    default_base_url="https://api.smartpay.co/v1",
    connect_timeout=10.0,
    read_timeout=30.0,
    secret_variables=(KEY_ENV,),
    explain="several partial captures allowed with cancelRemainder=manual; the deadline "
    "capture uses cancelRemainder=automatic, which releases the rest; 7-day window, the "
    "order's expiresAt wins when earlier",
    states=_STATES,
    evidence_keys=frozenset({"id", "object", "captureMethod", "expiresAt", "payments",
                             "createdAt", "updatedAt", "order", "cancelRemainder"}),
    not_found_codes=frozenset({"order.not-found"}),
    adapter=SmartpayAdapter,
)
