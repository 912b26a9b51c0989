"""SmartPay by J.P. Morgan Mobility Payment Solutions: capture / cancel / status.

Wire facts (providers.md §2): Basic ``base64(merchantKey:authenticationKey)``;
``Content-Type: application/json``, ``Accept-Language: en-US``, ``Origin`` and
``User-Agent`` on every call; amounts as decimal JSON numbers in major units;
``modificationId`` (≤ 64 chars) is the idempotency key.

Decisions documented here:

* Capturing the full authorized amount omits ``modifiedAmount`` (the API then
  captures everything); a partial capture sends it. JPMMPS is single-capture.
* A capture answered ``CAPTURE_PENDING`` is SUCCEEDED with snapshot state
  CAPTURE_PENDING: the provider accepted it and confirms asynchronously, so the
  caller confirms later with ``status``.
* A ``modificationId`` longer than 64 characters is replaced by the SHA-256 hex
  of the key (exactly 64 characters): stable across retries, so replays dedupe.
* ``Origin`` is ``settings.origin`` or, when unset, the base URL's own origin.
* The error body schema is UNCONFIRMED: we read ``errorCode``/``code``/``error``
  and ``message``/``description``/``errorMessage`` when present and classify by
  HTTP status (401/403 credentials, 429/5xx retryable, other 4xx rejected).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from watchdog.domain import ProviderName
from watchdog.money import to_major
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderResult,
    ProviderSnapshot,
    ProviderState,
)
from watchdog.providers.http import (
    Answer,
    CallContext,
    HttpAdapter,
    basic_authorization,
    bounded_key,
    malformed,
    minor_units,
    seg,
)

MERCHANT_KEY_ENV = "WATCHDOG_JPMMPS_MERCHANT_KEY"
AUTH_KEY_ENV = "WATCHDOG_JPMMPS_AUTHENTICATION_KEY"
MODIFICATION_ID_MAX = 64

_STATES: dict[str, ProviderState] = {
    "CREATED": ProviderState.PENDING,
    "AUTORIZATION_INITIALIZED": ProviderState.PENDING,  # sic, as documented
    "AUTHORIZATION_INITIALIZED": ProviderState.PENDING,
    "AUTHORIZATION_COMPLETED": ProviderState.AUTHORIZED,
    "CAPTURE_PENDING": ProviderState.CAPTURE_PENDING,
    "CAPTURED": ProviderState.CAPTURED,
    "SETTLED": ProviderState.CAPTURED,
    "CANCELLED": ProviderState.CANCELED,
    "CANCELED": ProviderState.CANCELED,
}


def modification_id(idempotency_key: str) -> str:
    """The key itself when it fits in 64 characters, else its SHA-256 hex (64 characters)."""
    return bounded_key(idempotency_key, MODIFICATION_ID_MAX)


def normalise_state(raw_state: str) -> ProviderState:
    """Documented names; anything that says EXPIRED is EXPIRED; the rest is never guessed."""
    state = _STATES.get(raw_state.upper())
    if state is not None:
        return state
    if "EXPIRED" in raw_state.upper():
        return ProviderState.EXPIRED
    return ProviderState.UNRECOGNISED


def snapshot_from_payment(data: Any, currency: str) -> ProviderSnapshot | str:
    """Normalise the shared response model; a string explains why it could not be read."""
    if not isinstance(data, dict):
        return "the answer is not a JSON object"
    raw_state = data.get("paymentStatus")
    if not isinstance(raw_state, str) or not raw_state:
        return "the answer has no paymentStatus"
    state = normalise_state(raw_state)
    overview = data.get("transactionOverview")
    total: int | None = None
    if isinstance(overview, dict):
        total = minor_units(overview.get("amount"), overview.get("currencyCode") or currency)
    captured: int | None = 0 if state is ProviderState.AUTHORIZED else None
    mods = data.get("modifications")
    amounts: list[int | None] = []
    for mod in mods if isinstance(mods, list) else []:
        mdata = mod.get("modificationData") if isinstance(mod, dict) else None
        if not isinstance(mdata, dict) or mdata.get("type") != "CAPTURE":
            continue
        value = mdata.get("amount")
        if isinstance(value, dict):
            value = value.get("amount")
        if value is None and isinstance(mdata.get("modifiedAmount"), dict):
            value = mdata["modifiedAmount"].get("amount")
        # a capture without an amount captured everything
        amounts.append(minor_units(value, currency) if value is not None else total)
    if amounts and all(a is not None for a in amounts):
        captured = sum(a for a in amounts if a is not None)
    open_amount: int | None = None
    if state is ProviderState.AUTHORIZED:
        open_amount = total
    elif state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING, ProviderState.CANCELED,
                   ProviderState.EXPIRED):
        open_amount = 0
    return ProviderSnapshot(state, raw_state, captured_amount=captured, open_amount=open_amount)


def capture_result(ctx: CallContext, answer: Answer, snap: ProviderSnapshot) -> ProviderResult:
    """What a 2xx capture answer means: (pending) capture SUCCEEDED, a final state REJECTED."""
    if snap.state is ProviderState.CAPTURED:
        return ctx.answered(Outcome.SUCCEEDED, f"captured ({snap.raw_state})", answer,
                            snapshot=snap)
    if snap.state is ProviderState.CAPTURE_PENDING:
        return ctx.answered(Outcome.SUCCEEDED, "capture accepted, CAPTURE_PENDING: confirm "
                            "with a status read later", answer, snapshot=snap)
    if snap.state in (ProviderState.CANCELED, ProviderState.EXPIRED, ProviderState.DECLINED):
        return ctx.answered(Outcome.REJECTED, f"not captured: the payment is {snap.raw_state}",
                            answer, snapshot=snap)
    return malformed(ctx, answer, f"paymentStatus after capture is {snap.raw_state!r}",
                     snapshot=snap)


def cancel_result(ctx: CallContext, answer: Answer, snap: ProviderSnapshot) -> ProviderResult:
    """What a 2xx cancel answer means: CANCELED SUCCEEDED, (pending) capture REJECTED."""
    if snap.state is ProviderState.CANCELED:
        return ctx.answered(Outcome.SUCCEEDED, "cancelled", answer, snapshot=snap)
    if snap.state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING):
        return ctx.answered(Outcome.REJECTED, f"not cancelled: the payment is {snap.raw_state}",
                            answer, snapshot=snap)
    return malformed(ctx, answer, f"paymentStatus after cancel is {snap.raw_state!r}",
                     snapshot=snap)


class JpmmpsAdapter(HttpAdapter):
    """JPMMPS SmartPay modification and status APIs."""

    provider = ProviderName.JPMMPS
    status_words = ("paymentStatus", "payment")
    check_currency = "EUR"

    def _configure(self) -> None:
        """Basic auth from merchant and authentication keys; Origin from settings or base URL."""
        self._merchant_key = self._settings.credential(MERCHANT_KEY_ENV)
        auth_key = self._settings.credential(AUTH_KEY_ENV)
        self._authorization, token = basic_authorization(self._merchant_key, auth_key)
        self._secret_values = (self._merchant_key, auth_key, token)
        parts = urllib.parse.urlsplit(self._base)
        self._origin = self._settings.origin or f"{parts.scheme}://{parts.netloc}"

    def _headers(self) -> dict[str, str]:
        """Credentials, language, Origin and User-Agent on every call; JSON both ways."""
        return {
            "Authorization": self._authorization,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Language": "en-US",
            "Origin": self._origin,
            "User-Agent": self._settings.user_agent,
        }

    def _status_route(self, order_id: str) -> tuple[str, str, Any]:
        """GET /payment/status/{transactionId}."""
        return "GET", f"/payment/status/{seg(order_id)}", None

    def _parse_snapshot(self, data: Any, currency: str) -> ProviderSnapshot | str:
        """The shared response model (status, capture and cancel all answer with it)."""
        return snapshot_from_payment(data, currency)

    def _error_fields(self, answer: Answer) -> tuple[str | None, str, str | None]:
        """The UNCONFIRMED error schema: the first of each of the names we have seen used."""
        data = answer.data
        if not isinstance(data, dict):
            return None, "", answer.request_id
        code = next((data[k] for k in ("errorCode", "code", "error") if data.get(k) is not None),
                    None)
        text = next((data[k] for k in ("message", "description", "errorMessage", "detail")
                     if data.get(k)), "")
        rid = next((str(data[k]) for k in ("requestId", "traceId", "correlationId")
                    if data.get(k)), None) or answer.request_id
        return (str(code) if code is not None else None), str(text), rid

    def _known_failure(
        self, ctx: CallContext, answer: Answer, code: str | None, text: str, rid: str | None,
    ) -> ProviderResult | None:
        """The check's sentinel transaction answered 400 or 404: keys and host work."""
        if ctx.operation == "check" and answer.status in (400, 404):
            return ctx.answered(Outcome.SUCCEEDED, "credentials accepted and JPMMPS reachable "
                                f"(sentinel transaction answered HTTP {answer.status})", answer,
                                provider_code=code, request_id=rid)
        return None

    async def _capture(
        self, ctx: CallContext, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /payment/capture; ``modifiedAmount`` only for a partial capture."""
        body: dict[str, Any] = {
            "transactionId": ref.order_id,
            "merchantKey": self._merchant_key.reveal(),
            "modificationId": modification_id(idempotency_key),
        }
        if amount != ref.amount:
            body["modifiedAmount"] = {"amount": to_major(amount, ref.currency),
                                      "currencyCode": ref.currency}
        return await self._call(ctx, "POST", "/payment/capture",
                                lambda answer, snap: capture_result(ctx, answer, snap),
                                currency=ref.currency, body=body)

    async def _cancel(self, ctx: CallContext, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """POST /payment/cancel (releases the full authorized amount)."""
        body = {"transactionId": ref.order_id, "modificationId": modification_id(idempotency_key),
                "merchantKey": self._merchant_key.reveal()}
        return await self._call(ctx, "POST", "/payment/cancel",
                                lambda answer, snap: cancel_result(ctx, answer, snap),
                                currency=ref.currency, body=body)
