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

from typing import Any

from watchdog.domain import ProviderName
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderResult,
    ProviderSnapshot,
    ProviderState,
)
from watchdog.providers.http import (
    CHECK_ORDER_ID,
    Answer,
    CallContext,
    HttpAdapter,
    exchange,
    generic_http_failure,
    malformed,
    ms_epoch_to_utc,
    seg,
)

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
    return ProviderSnapshot(state, raw_state, captured_amount=captured,
                            open_amount=open_amount, expires_at=expires_at)


def _error_fields(answer: Answer) -> tuple[str | None, str]:
    if isinstance(answer.data, dict):
        code = answer.data.get("errorCode")
        message = answer.data.get("message")
        return (str(code) if code is not None else None,
                str(message) if message is not None else "")
    return None, ""


class SmartpayAdapter(HttpAdapter):
    """Smartpay's orders/payments API."""

    provider = ProviderName.SMARTPAY

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key = self._settings.credential(KEY_ENV)
        self._secret_values = (self._key,)

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Basic {self._key.reveal()}",
            "Accept": "application/json",
            "User-Agent": self._settings.user_agent,
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
            headers["Content-Type"] = "application/json"
        return headers

    def _failure(self, ctx: CallContext, answer: Answer) -> ProviderResult:
        code, text = _error_fields(answer)
        common: dict[str, Any] = {"http_status": answer.status, "provider_code": code,
                                  "request_id": answer.request_id, "raw": answer.raw()}
        generic = generic_http_failure(ctx, answer, code=code, text=text)
        if generic is not None:
            return generic
        if (ctx.operation == "capture" and code == "order.cannot-capture"
                and any(h in text.lower() for h in _ALREADY_CAPTURED_HINTS)):
            return ctx.result(Outcome.ALREADY_DONE, f"the order is already captured: {text}; "
                              "confirm the captured amount with a status read", **common)
        if ctx.operation == "check" and answer.status == 404:
            return ctx.result(Outcome.SUCCEEDED, "credentials accepted and Smartpay reachable "
                              "(sentinel order not found, as expected)", **common)
        if answer.status == 404 or 400 <= answer.status < 500:
            why = text or "no message"
            return ctx.result(Outcome.REJECTED, f"refused ({code or 'no code'}): {why}",
                              **common)
        return malformed(ctx, answer, "unexpected HTTP status", provider_code=code)

    async def status(self, ref: AuthRef) -> ProviderResult:
        """GET /orders/{id}?expand=all, normalised."""
        return await self._status(ref.order_id, self._ctx("status"))

    async def _status(self, order_id: str, ctx: CallContext) -> ProviderResult:
        request = self._build("GET", f"/orders/{seg(order_id)}?expand=all", headers=self._headers())
        answer = await exchange(self._client, request, ctx)
        if isinstance(answer, ProviderResult):
            return answer
        if not answer.ok:
            return self._failure(ctx, answer)
        snap = snapshot_from_order(answer.data)
        if isinstance(snap, str):
            return malformed(ctx, answer, snap)
        outcome = (Outcome.UNKNOWN if snap.state is ProviderState.UNRECOGNISED
                   else Outcome.SUCCEEDED)
        message = (f"unrecognised order status {snap.raw_state!r}; not guessed at"
                   if outcome is Outcome.UNKNOWN else f"order is {snap.raw_state}")
        return ctx.result(outcome, message, http_status=answer.status, snapshot=snap,
                          request_id=answer.request_id, raw=answer.raw())

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /payments {order, amount, currency, cancelRemainder}."""
        ctx = self._ctx("capture")
        refused = self._refuse_currency(ctx, ref.currency) or self._refuse_amount(ctx, amount)
        if refused is not None:
            return refused
        body = {"order": ref.order_id, "amount": amount, "currency": ref.currency,
                "cancelRemainder": "automatic" if final else "manual"}
        request = self._build("POST", "/payments", body=body,
                              headers=self._headers(idempotency_key))
        answer = await exchange(self._client, request, ctx)
        if isinstance(answer, ProviderResult):
            return answer
        if not answer.ok:
            return self._failure(ctx, answer)
        data = answer.data
        if (not isinstance(data, dict) or not isinstance(data.get("id"), str)
                or _int(data.get("amount")) is None):
            return malformed(ctx, answer, "the payment has no id or amount")
        order = data.get("order")
        if data.get("amount") != amount or (isinstance(order, str) and order != ref.order_id):
            return malformed(ctx, answer, f"the payment does not match the request "
                             f"(amount {data.get('amount')!r}, order {data.get('order')!r})")
        return ctx.result(Outcome.SUCCEEDED, f"payment {data['id']} created for {amount}",
                          http_status=answer.status, request_id=answer.request_id,
                          raw=answer.raw())

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """PUT /orders/{id}/cancellation (no body)."""
        ctx = self._ctx("cancel")
        request = self._build("PUT", f"/orders/{seg(ref.order_id)}/cancellation",
                              headers=self._headers(idempotency_key))
        answer = await exchange(self._client, request, ctx)
        if isinstance(answer, ProviderResult):
            return answer
        if not answer.ok:
            return self._failure(ctx, answer)
        snap = snapshot_from_order(answer.data)
        if isinstance(snap, str):
            return malformed(ctx, answer, snap)
        if snap.state not in (ProviderState.CANCELED, ProviderState.EXPIRED,
                              ProviderState.CAPTURED):
            return malformed(ctx, answer, f"order status after cancellation is "
                             f"{snap.raw_state!r}", snapshot=snap)
        return ctx.result(Outcome.SUCCEEDED, f"order cancellation accepted ({snap.raw_state})",
                          http_status=answer.status, request_id=answer.request_id,
                          snapshot=snap, raw=answer.raw())

    async def check(self) -> ProviderResult:
        """Status of a sentinel order: 404 means the key works and the API answers."""
        return await self._status(CHECK_ORDER_ID, self._ctx("check"))
