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

import datetime as dt
import uuid
from typing import Any

from watchdog.domain import ProviderName
from watchdog.money import to_major_string
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
    basic_authorization,
    iso_to_utc,
    malformed,
    minor_units,
    seg,
)
from watchdog.providers.spec import ProviderSpec

NAME = ProviderName.declare("clearpay")
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
    """A ``{amount, currency}`` object in minor units (its own currency first); None if unread."""
    if not isinstance(value, dict):
        return None
    cur = value.get("currency") or currency
    return minor_units(value.get("amount"), cur) if isinstance(cur, str) else None


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
    original_field = data.get("originalAmount")
    shown_currency = (original_field.get("currency")
                      if isinstance(original_field, dict) else None)
    return ProviderSnapshot(state, raw_state, captured_amount=captured, open_amount=open_amount,
                            expires_at=expires_at, amount=original,
                            currency=shown_currency if isinstance(shown_currency, str) else None)


def capture_result(
    ctx: CallContext, answer: Answer, snap: ProviderSnapshot, amount: int
) -> ProviderResult:
    """What a 2xx capture answer means: (partly) captured SUCCEEDED, declined REJECTED."""
    if snap.state in (ProviderState.CAPTURED, ProviderState.PARTIALLY_CAPTURED):
        return ctx.answered(Outcome.SUCCEEDED, f"captured {amount} ({snap.raw_state})", answer,
                            snapshot=snap)
    if snap.state is ProviderState.DECLINED:
        return ctx.answered(Outcome.REJECTED, f"capture declined ({snap.raw_state})", answer,
                            provider_code=snap.raw_state, snapshot=snap)
    return malformed(ctx, answer, f"paymentState after capture is {snap.raw_state!r}",
                     snapshot=snap)


def cancel_result(ctx: CallContext, answer: Answer, snap: ProviderSnapshot) -> ProviderResult:
    """What a 2xx void answer means: nothing left open (voided, expired, captured) SUCCEEDED."""
    if snap.state in (ProviderState.CANCELED, ProviderState.EXPIRED, ProviderState.CAPTURED):
        return ctx.answered(Outcome.SUCCEEDED, f"voided the open amount ({snap.raw_state})",
                            answer, snapshot=snap)
    return malformed(ctx, answer, f"paymentState after void is {snap.raw_state!r}",
                     snapshot=snap)


class ClearpayAdapter(HttpAdapter):
    """Clearpay's v2 payments API (deferred flow)."""

    provider = NAME
    status_words = ("paymentState", "payment")
    check_currency = "GBP"

    def _configure(self) -> None:
        """Basic auth from merchant id and secret key; the id also names us in the User-Agent."""
        merchant = self._settings.credential(MERCHANT_ID_ENV)
        secret = self._settings.credential(SECRET_KEY_ENV)
        self._authorization, token = basic_authorization(merchant, secret)
        self._user_agent = f"{self._settings.user_agent} (MerchantID: {merchant.reveal()})"
        # The merchant id goes on the wire in the User-Agent, but is masked in what we keep.
        self._secret_values = (secret, merchant, token)

    def _headers(self) -> dict[str, str]:
        """Credentials and the merchant's User-Agent on every call; JSON both ways."""
        return {"Authorization": self._authorization, "User-Agent": self._user_agent,
                "Accept": "application/json", "Content-Type": "application/json"}

    def _status_route(self, order_id: str) -> tuple[str, str, Any]:
        """GET /v2/payments/{orderId}."""
        return "GET", f"/v2/payments/{seg(order_id)}", None

    def _parse_snapshot(self, data: Any, currency: str) -> ProviderSnapshot | str:
        """A Payment object (every 2xx answers with one)."""
        return snapshot_from_payment(data, currency)

    def _error_fields(self, answer: Answer) -> tuple[str | None, str, str | None]:
        """``{errorCode, message, errorId}``; the errorId is the request id support asks for."""
        if not isinstance(answer.data, dict):
            return None, "", answer.request_id
        code = answer.data.get("errorCode")
        text = answer.data.get("message")
        rid = answer.data.get("errorId")
        return (None if code is None else str(code), "" if text is None else str(text),
                str(rid) if rid else answer.request_id)

    def _known_failure(
        self, ctx: CallContext, answer: Answer, code: str | None, text: str, rid: str | None,
    ) -> ProviderResult | None:
        """409 in flight, the check's 404/412, and 410 ``payment_captured`` on capture."""
        common: dict[str, Any] = {"provider_code": code, "request_id": rid}
        said = text or "no message"
        if answer.status == 409:
            return ctx.answered(Outcome.RETRYABLE, f"still processing the first request with "
                                f"this requestId ({said}); retry with the same key", answer,
                                **common)
        if ctx.operation == "check" and answer.status in (404, 412):
            return ctx.answered(Outcome.SUCCEEDED, "credentials accepted and Clearpay reachable "
                                "(sentinel payment not found, as expected)", answer, **common)
        if ctx.operation == "capture" and answer.status == 410 and code == "payment_captured":
            return ctx.answered(Outcome.ALREADY_DONE, f"the payment is already captured "
                                f"({said}); confirm the captured amount with a status read",
                                answer, **common)
        return None

    async def _capture(
        self, ctx: CallContext, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /v2/payments/{orderId}/capture {requestId, amount}."""
        body = {"requestId": request_id(idempotency_key),
                "amount": {"amount": to_major_string(amount, ref.currency),
                           "currency": ref.currency}}
        return await self._call(ctx, "POST", f"/v2/payments/{seg(ref.order_id)}/capture",
                                lambda answer, snap: capture_result(ctx, answer, snap, amount),
                                currency=ref.currency, body=body)

    async def _cancel(self, ctx: CallContext, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """POST /v2/payments/{orderId}/void {requestId} (no amount: void all that is open)."""
        body = {"requestId": request_id(idempotency_key)}
        return await self._call(ctx, "POST", f"/v2/payments/{seg(ref.order_id)}/void",
                                lambda answer, snap: cancel_result(ctx, answer, snap),
                                currency=ref.currency, body=body)


SPEC = ProviderSpec(
    name=NAME,
    rank=40,
    rules=ProviderRules(NAME, dt.timedelta(days=13), multiple_captures=True,
                        partial_releases_remainder=False, reports_expiry=True,
                        min_capture_amount=100),
    default_base_url="https://global-api.afterpay.com",
    connect_timeout=10.0,
    read_timeout=70.0,  # Clearpay asks for 10 s / 70 s
    secret_variables=(MERCHANT_ID_ENV, SECRET_KEY_ENV),
    explain="several partial captures until openToCaptureAmount is 0, minimum 1.00; the "
    "remainder is voided after the final capture; 13-day window, the AUTH_APPROVED event's "
    "expires wins when earlier",
    states=_STATES,
    evidence_keys=frozenset({"id", "token", "paymentState", "originalAmount",
                             "openToCaptureAmount", "created", "expires", "events", "type",
                             "refunds", "refundId", "refundedAt", "requestId"}),
    not_found_codes=frozenset({"not_found"}),
    adapter=ClearpayAdapter,
)
