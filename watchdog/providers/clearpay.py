"""Clearpay (UK Afterpay) v2: deferred capture, void and get payment.

Wire facts (providers.md §4): Basic ``base64(merchantId:secretKey)`` plus a
``User-Agent`` naming us and the merchant id; amounts as ``{"amount": "10.00",
"currency": "GBP"}``; ``requestId`` in the body is the idempotency key (24 h);
errors ``{errorCode, errorId, message, httpStatusCode}``.

Decisions documented here:

* ``requestId`` is a UUID derived with uuid5 from the idempotency key: the same
  key always gives the same UUID, so every retry replays the same request.
* 409 is RETRYABLE (the first request with this ``requestId`` is still in flight).
* 410 ``payment_captured`` on capture is ALREADY_DONE: the payment is fully
  captured (or partly captured with the rest voided). If it was our own capture
  whose answer we lost, that is the truth; the caller must confirm the captured
  amount with ``status`` before treating the order as settled. On void, 410 is
  REJECTED (nothing left to release).
* 412 (``payment_voided``, ``payment_expired``, ``invalid_state``, ``error``),
  422, 404, 400 and the other 4xx are REJECTED; 401/403 REJECTED (credentials).
* ``captured_amount`` is the sum of the ``CAPTURED`` events; without events it is
  ``originalAmount - openToCaptureAmount`` for AUTH_APPROVED/PARTIALLY_CAPTURED
  states only (elsewhere voids make that difference ambiguous).
* VOIDED is CANCELED, or EXPIRED when an ``EXPIRED`` event is present.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from watchdog.domain import ProviderName
from watchdog.money import from_major, to_major_string
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
    iso_to_utc,
    malformed,
    seg,
)

MERCHANT_ID_ENV = "WATCHDOG_CLEARPAY_MERCHANT_ID"
SECRET_KEY_ENV = "WATCHDOG_CLEARPAY_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
REQUEST_ID_NAMESPACE = uuid.UUID("6f0d6f6e-3a1c-5b8e-9d7a-77617463686f")  # fixed forever

_STATES: dict[str, ProviderState] = {
    "AUTH_APPROVED": ProviderState.AUTHORIZED,
    "PARTIALLY_CAPTURED": ProviderState.PARTIALLY_CAPTURED,
    "CAPTURED": ProviderState.CAPTURED,
    "VOIDED": ProviderState.CANCELED,
    "AUTH_DECLINED": ProviderState.DECLINED,
    "CAPTURE_DECLINED": ProviderState.DECLINED,
}


def request_id(idempotency_key: str) -> str:
    """A stable UUID for an idempotency key (uuid5 in a fixed namespace)."""
    return str(uuid.uuid5(REQUEST_ID_NAMESPACE, idempotency_key))


def _money(value: Any, currency: str) -> int | None:
    if not isinstance(value, dict):
        return None
    amount = value.get("amount")
    cur = value.get("currency") or currency
    if isinstance(amount, bool) or not isinstance(amount, str | int | float) or not isinstance(
        cur, str
    ):
        return None
    try:
        return from_major(amount, cur)
    except ValueError:
        return None


def snapshot_from_payment(data: Any, currency: str) -> ProviderSnapshot | str:
    """Normalise a Payment object; a string explains why it could not be read."""
    if not isinstance(data, dict):
        return "the payment is not a JSON object"
    raw_state = data.get("paymentState")
    if not isinstance(raw_state, str) or not raw_state:
        return "the payment has no paymentState"
    state = _STATES.get(raw_state, ProviderState.UNRECOGNISED)
    events = data.get("events")
    events = [e for e in events if isinstance(e, dict)] if isinstance(events, list) else None
    expires_at = None
    captured: int | None = None
    if events is not None:
        for event in events:
            if event.get("type") == "AUTH_APPROVED" and expires_at is None:
                expires_at = iso_to_utc(event.get("expires"))
        if state is ProviderState.CANCELED and any(e.get("type") == "EXPIRED" for e in events):
            state = ProviderState.EXPIRED
        amounts = [_money(e.get("amount"), currency) for e in events
                   if e.get("type") == "CAPTURED"]
        if all(a is not None for a in amounts):
            captured = sum(a for a in amounts if a is not None)
    open_amount = _money(data.get("openToCaptureAmount"), currency)
    original = _money(data.get("originalAmount"), currency)
    if (captured is None and state in (ProviderState.AUTHORIZED, ProviderState.PARTIALLY_CAPTURED)
            and original is not None and open_amount is not None):
        captured = original - open_amount
    return ProviderSnapshot(state, raw_state, captured_amount=captured, open_amount=open_amount,
                            expires_at=expires_at)


def _error_fields(answer: Answer) -> tuple[str | None, str, str | None]:
    if not isinstance(answer.data, dict):
        return None, "", answer.request_id
    code = answer.data.get("errorCode")
    text = answer.data.get("message")
    rid = answer.data.get("errorId")
    return (None if code is None else str(code), "" if text is None else str(text),
            str(rid) if rid else answer.request_id)


class ClearpayAdapter(HttpAdapter):
    """Clearpay's v2 payments API (deferred flow)."""

    provider = ProviderName.CLEARPAY

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        merchant = self._settings.credential(MERCHANT_ID_ENV)
        secret = self._settings.credential(SECRET_KEY_ENV)
        pair = f"{merchant.reveal()}:{secret.reveal()}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        self._user_agent = f"{self._settings.user_agent} (MerchantID: {merchant.reveal()})"
        # The merchant id goes on the wire in the User-Agent, but is masked in what we keep.
        self._secret_values = (secret, merchant, self._authorization[6:])

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self._authorization, "User-Agent": self._user_agent,
                "Accept": "application/json", "Content-Type": "application/json"}

    def _failure(self, ctx: CallContext, answer: Answer) -> ProviderResult:
        code, text, rid = _error_fields(answer)
        generic = generic_http_failure(ctx, answer, code=code, text=text, request_id=rid)
        if generic is not None:
            return generic
        common: dict[str, Any] = {"http_status": answer.status, "provider_code": code,
                                  "request_id": rid, "raw": answer.raw()}
        said = text or "no message"
        if answer.status == 409:
            return ctx.result(Outcome.RETRYABLE, f"still processing the first request with this "
                              f"requestId ({said}); retry with the same key", **common)
        if ctx.operation == "check" and answer.status in (404, 412):
            return ctx.result(Outcome.SUCCEEDED, "credentials accepted and Clearpay reachable "
                              "(sentinel payment not found, as expected)", **common)
        if ctx.operation == "capture" and answer.status == 410 and code == "payment_captured":
            return ctx.result(Outcome.ALREADY_DONE, f"the payment is already captured ({said}); "
                              "confirm the captured amount with a status read", **common)
        if 400 <= answer.status < 500:
            return ctx.result(Outcome.REJECTED, f"refused ({code or 'no code'}): {said}",
                              **common)
        return malformed(ctx, answer, "unexpected HTTP status", provider_code=code,
                         request_id=rid)

    async def _call(
        self, ctx: CallContext, method: str, path: str, body: Any, currency: str,
    ) -> ProviderResult | tuple[Answer, ProviderSnapshot]:
        request = self._build(method, path, body=body, headers=self._headers())
        answer = await exchange(self._client, request, ctx)
        if isinstance(answer, ProviderResult):
            return answer
        if not answer.ok:
            return self._failure(ctx, answer)
        snap = snapshot_from_payment(answer.data, currency)
        if isinstance(snap, str):
            return malformed(ctx, answer, snap)
        return answer, snap

    async def status(self, ref: AuthRef) -> ProviderResult:
        """GET /v2/payments/{orderId}."""
        return await self._status(ref.order_id, ref.currency, self._ctx("status"))

    async def _status(self, order_id: str, currency: str, ctx: CallContext) -> ProviderResult:
        got = await self._call(ctx, "GET", f"/v2/payments/{seg(order_id)}", None, currency)
        if isinstance(got, ProviderResult):
            return got
        answer, snap = got
        common: dict[str, Any] = {"http_status": answer.status, "snapshot": snap,
                                  "request_id": answer.request_id, "raw": answer.raw()}
        if snap.state is ProviderState.UNRECOGNISED:
            return ctx.result(Outcome.UNKNOWN, f"unrecognised paymentState {snap.raw_state!r}; "
                              "not guessed at", **common)
        return ctx.result(Outcome.SUCCEEDED, f"payment is {snap.raw_state}", **common)

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /v2/payments/{orderId}/capture {requestId, amount}."""
        ctx = self._ctx("capture")
        refused = self._refuse_currency(ctx, ref.currency) or self._refuse_amount(ctx, amount)
        if refused is not None:
            return refused
        body = {"requestId": request_id(idempotency_key),
                "amount": {"amount": to_major_string(amount, ref.currency),
                           "currency": ref.currency}}
        got = await self._call(ctx, "POST", f"/v2/payments/{seg(ref.order_id)}/capture", body,
                               ref.currency)
        if isinstance(got, ProviderResult):
            return got
        answer, snap = got
        common: dict[str, Any] = {"http_status": answer.status, "snapshot": snap,
                                  "request_id": answer.request_id, "raw": answer.raw()}
        if snap.state in (ProviderState.CAPTURED, ProviderState.PARTIALLY_CAPTURED):
            return ctx.result(Outcome.SUCCEEDED, f"captured {amount} ({snap.raw_state})",
                              **common)
        if snap.state is ProviderState.DECLINED:
            return ctx.result(Outcome.REJECTED, f"capture declined ({snap.raw_state})",
                              provider_code=snap.raw_state, **common)
        return malformed(ctx, answer, f"paymentState after capture is {snap.raw_state!r}",
                         snapshot=snap)

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """POST /v2/payments/{orderId}/void {requestId} (no amount: void all that is open)."""
        ctx = self._ctx("cancel")
        body = {"requestId": request_id(idempotency_key)}
        got = await self._call(ctx, "POST", f"/v2/payments/{seg(ref.order_id)}/void", body,
                               ref.currency)
        if isinstance(got, ProviderResult):
            return got
        answer, snap = got
        common: dict[str, Any] = {"http_status": answer.status, "snapshot": snap,
                                  "request_id": answer.request_id, "raw": answer.raw()}
        if snap.state in (ProviderState.CANCELED, ProviderState.EXPIRED, ProviderState.CAPTURED):
            return ctx.result(Outcome.SUCCEEDED, f"voided the open amount ({snap.raw_state})",
                              **common)
        return malformed(ctx, answer, f"paymentState after void is {snap.raw_state!r}",
                         snapshot=snap)

    async def check(self) -> ProviderResult:
        """Get a sentinel payment: 404 means the credentials work and the API answers."""
        return await self._status(CHECK_ORDER_ID, "GBP", self._ctx("check"))
