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

import base64
import hashlib
import urllib.parse
from decimal import Decimal
from typing import Any

from watchdog.domain import ProviderName
from watchdog.money import from_major, to_major
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
    if len(idempotency_key) <= MODIFICATION_ID_MAX:
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()


def normalise_state(raw_state: str) -> ProviderState:
    """Documented names; anything that says EXPIRED is EXPIRED; the rest is never guessed."""
    state = _STATES.get(raw_state.upper())
    if state is not None:
        return state
    if "EXPIRED" in raw_state.upper():
        return ProviderState.EXPIRED
    return ProviderState.UNRECOGNISED


def _minor(value: Any, currency: str) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        return from_major(value, currency)
    except ValueError:
        return None


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
        total = _minor(overview.get("amount"), overview.get("currencyCode") or currency)
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
        amounts.append(_minor(value, currency) if value is not None else total)
    if amounts and all(a is not None for a in amounts):
        captured = sum(a for a in amounts if a is not None)
    open_amount: int | None = None
    if state is ProviderState.AUTHORIZED:
        open_amount = total
    elif state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING, ProviderState.CANCELED,
                   ProviderState.EXPIRED):
        open_amount = 0
    return ProviderSnapshot(state, raw_state, captured_amount=captured, open_amount=open_amount)


def _error_fields(answer: Answer) -> tuple[str | None, str, str | None]:
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


class JpmmpsAdapter(HttpAdapter):
    """JPMMPS SmartPay modification and status APIs."""

    provider = ProviderName.JPMMPS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._merchant_key = self._settings.credential(MERCHANT_KEY_ENV)
        auth_key = self._settings.credential(AUTH_KEY_ENV)
        pair = f"{self._merchant_key.reveal()}:{auth_key.reveal()}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        self._secret_values = (self._merchant_key, auth_key, self._authorization[6:])
        parts = urllib.parse.urlsplit(self._base)
        self._origin = self._settings.origin or f"{parts.scheme}://{parts.netloc}"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": self._authorization,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Language": "en-US",
            "Origin": self._origin,
            "User-Agent": self._settings.user_agent,
        }

    def _failure(self, ctx: CallContext, answer: Answer) -> ProviderResult:
        code, text, rid = _error_fields(answer)
        generic = generic_http_failure(ctx, answer, code=code, text=text, request_id=rid)
        if generic is not None:
            return generic
        common: dict[str, Any] = {"http_status": answer.status, "provider_code": code,
                                  "request_id": rid, "raw": answer.raw()}
        if ctx.operation == "check" and answer.status in (400, 404):
            return ctx.result(Outcome.SUCCEEDED, "credentials accepted and JPMMPS reachable "
                              f"(sentinel transaction answered HTTP {answer.status})", **common)
        if 400 <= answer.status < 500:
            return ctx.result(Outcome.REJECTED, f"refused ({code or 'no code'}): "
                              f"{text or 'no message'}", **common)
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
        """GET /payment/status/{transactionId}."""
        return await self._status(ref.order_id, ref.currency, self._ctx("status"))

    async def _status(self, transaction_id: str, currency: str, ctx: CallContext) -> ProviderResult:
        got = await self._call(ctx, "GET", f"/payment/status/{seg(transaction_id)}", None,
                               currency)
        if isinstance(got, ProviderResult):
            return got
        answer, snap = got
        if snap.state is ProviderState.UNRECOGNISED:
            return ctx.result(Outcome.UNKNOWN, f"unrecognised paymentStatus {snap.raw_state!r}; "
                              "not guessed at", http_status=answer.status, snapshot=snap,
                              request_id=answer.request_id, raw=answer.raw())
        return ctx.result(Outcome.SUCCEEDED, f"payment is {snap.raw_state}",
                          http_status=answer.status, snapshot=snap,
                          request_id=answer.request_id, raw=answer.raw())

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /payment/capture; ``modifiedAmount`` only for a partial capture."""
        ctx = self._ctx("capture")
        refused = self._refuse_currency(ctx, ref.currency) or self._refuse_amount(ctx, amount)
        if refused is not None:
            return refused
        body: dict[str, Any] = {
            "transactionId": ref.order_id,
            "merchantKey": self._merchant_key.reveal(),
            "modificationId": modification_id(idempotency_key),
        }
        if amount != ref.amount:
            body["modifiedAmount"] = {"amount": to_major(amount, ref.currency),
                                      "currencyCode": ref.currency}
        got = await self._call(ctx, "POST", "/payment/capture", body, ref.currency)
        if isinstance(got, ProviderResult):
            return got
        answer, snap = got
        common: dict[str, Any] = {"http_status": answer.status, "snapshot": snap,
                                  "request_id": answer.request_id, "raw": answer.raw()}
        if snap.state is ProviderState.CAPTURED:
            return ctx.result(Outcome.SUCCEEDED, f"captured ({snap.raw_state})", **common)
        if snap.state is ProviderState.CAPTURE_PENDING:
            return ctx.result(Outcome.SUCCEEDED, "capture accepted, CAPTURE_PENDING: confirm "
                              "with a status read later", **common)
        if snap.state in (ProviderState.CANCELED, ProviderState.EXPIRED, ProviderState.DECLINED):
            return ctx.result(Outcome.REJECTED, f"not captured: the payment is "
                              f"{snap.raw_state}", **common)
        return malformed(ctx, answer, f"paymentStatus after capture is {snap.raw_state!r}",
                         snapshot=snap)

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """POST /payment/cancel (releases the full authorized amount)."""
        ctx = self._ctx("cancel")
        body = {"transactionId": ref.order_id, "modificationId": modification_id(idempotency_key),
                "merchantKey": self._merchant_key.reveal()}
        got = await self._call(ctx, "POST", "/payment/cancel", body, ref.currency)
        if isinstance(got, ProviderResult):
            return got
        answer, snap = got
        common: dict[str, Any] = {"http_status": answer.status, "snapshot": snap,
                                  "request_id": answer.request_id, "raw": answer.raw()}
        if snap.state is ProviderState.CANCELED:
            return ctx.result(Outcome.SUCCEEDED, "cancelled", **common)
        if snap.state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING):
            return ctx.result(Outcome.REJECTED, f"not cancelled: the payment is "
                              f"{snap.raw_state}", **common)
        return malformed(ctx, answer, f"paymentStatus after cancel is {snap.raw_state!r}",
                         snapshot=snap)

    async def check(self) -> ProviderResult:
        """Status of a sentinel transaction: 404 means the keys work and the API answers."""
        return await self._status(CHECK_ORDER_ID, "EUR", self._ctx("check"))

