"""Flitt (formerly Fondy): capture / reverse / status, protocol 1.0.1 JSON envelope.

Wire facts (providers.md §3): POST ``{"request": {...}}`` signed with
``sha1(secret|sorted values)``; amounts are integers in minor units; failures are
HTTP 200 with ``response_status: failure``; answers come as ``{"response": {...}}``.

Decisions documented here:

* Capture answered ``capture_status: hold`` (created, not yet approved) is
  SUCCEEDED with snapshot CAPTURE_PENDING: the caller confirms with ``status``.
  ``captured`` is SUCCEEDED with snapshot CAPTURED.
* Cancel is a reversal of the FULL held amount (``ref.amount``) with
  ``reverse_id`` = the idempotency key, or its SHA-256 hex cut to 50 characters
  when longer. ``reverse_status: approved`` is SUCCEEDED; ``declined`` REJECTED;
  ``created``/``processing`` (accepted, not finished) UNKNOWN, to be confirmed by
  a status read.
* A response whose ``signature`` does not verify is not believed: UNKNOWN for
  capture/cancel, RETRYABLE for status, and the message says so. Unsigned
  answers (failures are unsigned) are accepted.
* Failure codes: 1002 (application error) RETRYABLE; the documented request,
  merchant and order errors REJECTED; an unrecognised code is UNKNOWN for
  capture/cancel (never guessed: recovery reads the status) and RETRYABLE for
  status.
* Status: ``approved`` is read through ``additional_info.capture_status`` (a JSON
  string): none/``hold`` -> AUTHORIZED (``hold`` with a capture amount ->
  CAPTURE_PENDING), ``captured`` -> CAPTURED; ``reversed`` -> CANCELED,
  ``expired`` -> EXPIRED, ``declined`` -> DECLINED, ``created``/``processing`` ->
  PENDING. ``raw_state`` is ``order_status`` or ``order_status/capture_status``.
"""

from __future__ import annotations

import hashlib
import json
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
)
from watchdog.providers.signing import flitt_signature, verify_flitt_signature

MERCHANT_ID_ENV = "WATCHDOG_FLITT_MERCHANT_ID"
SECRET_KEY_ENV = "WATCHDOG_FLITT_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
VERSION = "1.0.1"
REVERSE_ID_MAX = 50

RETRYABLE_CODES = frozenset({"1002"})
REJECTED_CODES = frozenset({
    "1000", "1006", "1007", "1009", "1010", "1011", "1012", "1013", "1014", "1016", "1017",
    "1018", "1019",
})
CREDENTIAL_CODES = frozenset({"1006", "1007", "1014", "1016"})
ORDER_NOT_FOUND = "1018"

_ORDER_STATES: dict[str, ProviderState] = {
    "created": ProviderState.PENDING,
    "processing": ProviderState.PENDING,
    "declined": ProviderState.DECLINED,
    "expired": ProviderState.EXPIRED,
    "reversed": ProviderState.CANCELED,
}
_CAPTURE_STATES: dict[str, ProviderState] = {
    "": ProviderState.AUTHORIZED,
    "none": ProviderState.AUTHORIZED,
    "hold": ProviderState.AUTHORIZED,
    "captured": ProviderState.CAPTURED,
    "reversed": ProviderState.CANCELED,
    "expired": ProviderState.EXPIRED,
    "declined": ProviderState.DECLINED,
}


def reverse_id(idempotency_key: str) -> str:
    """The key itself when it fits in 50 characters, else a stable 50-character hash of it."""
    if len(idempotency_key) <= REVERSE_ID_MAX:
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:REVERSE_ID_MAX]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _additional_info(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def snapshot_from_order(order: dict[str, Any]) -> ProviderSnapshot | str:
    """Normalise a status answer; a string explains why it could not be read."""
    order_status = order.get("order_status")
    if not isinstance(order_status, str) or not order_status:
        return "the answer has no order_status"
    info = _additional_info(order.get("additional_info"))
    capture_status = info.get("capture_status")
    capture_amount = _int(info.get("capture_amount"))
    held = _int(order.get("actual_amount"))
    if held is None:
        held = _int(order.get("amount"))
    if order_status != "approved":
        state = _ORDER_STATES.get(order_status, ProviderState.UNRECOGNISED)
        raw_state = order_status
    else:
        cs = "" if capture_status is None else str(capture_status)
        raw_state = f"approved/{cs}" if cs else "approved"
        state = _CAPTURE_STATES.get(cs.lower(), ProviderState.UNRECOGNISED)
        if state is ProviderState.AUTHORIZED and cs.lower() == "hold" and capture_amount:
            state = ProviderState.CAPTURE_PENDING
    captured: int | None = None
    open_amount: int | None = None
    if state is ProviderState.AUTHORIZED:
        captured, open_amount = 0, held
    elif state is ProviderState.CAPTURED:
        captured = capture_amount if capture_amount is not None else held
        open_amount = 0
    elif state is ProviderState.CAPTURE_PENDING:
        captured, open_amount = capture_amount, 0
    elif state in (ProviderState.CANCELED, ProviderState.EXPIRED, ProviderState.DECLINED):
        captured = capture_amount or 0
        open_amount = 0
    return ProviderSnapshot(state, raw_state, captured_amount=captured, open_amount=open_amount)


class FlittAdapter(HttpAdapter):
    """Flitt's capture / reverse / status API."""

    provider = ProviderName.FLITT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        merchant = self._settings.credential(MERCHANT_ID_ENV).reveal()
        self._merchant_id: int | str = int(merchant) if merchant.isdigit() else merchant
        self._secret = self._settings.credential(SECRET_KEY_ENV)
        self._secret_values = (self._secret, merchant)

    def _signed(self, params: dict[str, Any]) -> dict[str, Any]:
        params = {"merchant_id": self._merchant_id, "version": VERSION, **params}
        params["signature"] = flitt_signature(params, self._secret)
        return {"request": params}

    async def _post(
        self, ctx: CallContext, path: str, params: dict[str, Any]
    ) -> ProviderResult | tuple[Answer, dict[str, Any]]:
        """POST, then unwrap a verified ``success`` answer or classify the failure."""
        request = self._build("POST", path, body=self._signed(params), headers={
            "Content-Type": "application/json", "Accept": "application/json",
            "User-Agent": self._settings.user_agent,
        })
        answer = await exchange(self._client, request, ctx)
        if isinstance(answer, ProviderResult):
            return answer
        if not answer.ok:
            generic = generic_http_failure(ctx, answer)
            if generic is not None:
                return generic
            if 400 <= answer.status < 500:
                return ctx.result(Outcome.REJECTED, f"refused with HTTP {answer.status}",
                                  http_status=answer.status, request_id=answer.request_id,
                                  raw=answer.raw())
            return malformed(ctx, answer, "unexpected HTTP status")
        body = answer.data.get("response") if isinstance(answer.data, dict) else None
        if not isinstance(body, dict):
            return malformed(ctx, answer, "no `response` object")
        rid = body.get("request_id")
        rid = str(rid) if rid not in (None, "") else answer.request_id
        if "signature" in body and not verify_flitt_signature(body, self._secret):
            outcome = Outcome.UNKNOWN if ctx.moves_money else Outcome.RETRYABLE
            return ctx.result(outcome, "the response signature does not verify: the answer is "
                              "not believed (tampered, or wrong secret); confirm with a status "
                              "read", http_status=answer.status, request_id=rid,
                              provider_code="signature", raw=answer.raw())
        status = body.get("response_status")
        if status == "failure":
            return self._failure(ctx, answer, body, rid)
        if status != "success":
            return malformed(ctx, answer, f"response_status is {status!r}", request_id=rid)
        return answer, body

    def _failure(
        self, ctx: CallContext, answer: Answer, body: dict[str, Any], rid: str | None
    ) -> ProviderResult:
        code = str(body.get("error_code", "")) or None
        text = str(body.get("error_message") or "no message")
        common: dict[str, Any] = {"http_status": answer.status, "provider_code": code,
                                  "request_id": rid, "raw": answer.raw()}
        if ctx.operation == "check":
            if code == ORDER_NOT_FOUND:
                return ctx.result(Outcome.SUCCEEDED, "signature accepted and Flitt reachable "
                                  "(sentinel order not found, as expected)", **common)
            if code in CREDENTIAL_CODES:
                return ctx.result(Outcome.REJECTED, f"bad credentials: {text}; check the "
                                  "Flitt merchant id and secret key", **common)
        if code in RETRYABLE_CODES:
            return ctx.result(Outcome.RETRYABLE, f"provider error {code}: {text}; retry",
                              **common)
        if code in REJECTED_CODES:
            return ctx.result(Outcome.REJECTED, f"refused ({code}): {text}", **common)
        if ctx.moves_money:
            return ctx.result(Outcome.UNKNOWN, f"unrecognised failure code {code!r}: {text}; "
                              "not guessed at, confirm with a status read", **common)
        return ctx.result(Outcome.RETRYABLE, f"unrecognised failure code {code!r}: {text}",
                          **common)

    async def status(self, ref: AuthRef) -> ProviderResult:
        """POST /status/order_id."""
        return await self._status(ref.order_id, self._ctx("status"))

    async def _status(self, order_id: str, ctx: CallContext) -> ProviderResult:
        got = await self._post(ctx, "/status/order_id", {"order_id": order_id})
        if isinstance(got, ProviderResult):
            return got
        answer, body = got
        snap = snapshot_from_order(body)
        if isinstance(snap, str):
            return malformed(ctx, answer, snap)
        common: dict[str, Any] = {"http_status": answer.status, "snapshot": snap,
                                  "request_id": answer.request_id, "raw": answer.raw()}
        if snap.state is ProviderState.UNRECOGNISED:
            return ctx.result(Outcome.UNKNOWN, f"unrecognised order state {snap.raw_state!r}; "
                              "not guessed at", **common)
        return ctx.result(Outcome.SUCCEEDED, f"order is {snap.raw_state}", **common)

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /capture/order_id (no key: a same-amount replay reports the state)."""
        ctx = self._ctx("capture")
        refused = self._refuse_currency(ctx, ref.currency) or self._refuse_amount(ctx, amount)
        if refused is not None:
            return refused
        got = await self._post(ctx, "/capture/order_id", {
            "order_id": ref.order_id, "amount": amount, "currency": ref.currency,
        })
        if isinstance(got, ProviderResult):
            return got
        answer, body = got
        capture_status = body.get("capture_status")
        common: dict[str, Any] = {"http_status": answer.status, "request_id": answer.request_id,
                                  "raw": answer.raw()}
        if capture_status == "captured":
            snap = ProviderSnapshot(ProviderState.CAPTURED, "captured", captured_amount=amount,
                                    open_amount=0)
            return ctx.result(Outcome.SUCCEEDED, f"captured {amount}", snapshot=snap, **common)
        if capture_status == "hold":
            snap = ProviderSnapshot(ProviderState.CAPTURE_PENDING, "hold", open_amount=0)
            return ctx.result(Outcome.SUCCEEDED, "capture created, not yet approved (hold): "
                              "confirm with a status read", snapshot=snap, **common)
        return malformed(ctx, answer, f"capture_status is {capture_status!r}")

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """POST /reverse/order_id for the full held amount."""
        ctx = self._ctx("cancel")
        refused = self._refuse_currency(ctx, ref.currency)
        if refused is not None:
            return refused
        got = await self._post(ctx, "/reverse/order_id", {
            "order_id": ref.order_id, "amount": ref.amount, "currency": ref.currency,
            "reverse_id": reverse_id(idempotency_key),
        })
        if isinstance(got, ProviderResult):
            return got
        answer, body = got
        reverse_status = body.get("reverse_status")
        common: dict[str, Any] = {"http_status": answer.status, "request_id": answer.request_id,
                                  "raw": answer.raw()}
        if reverse_status == "approved":
            snap = ProviderSnapshot(ProviderState.CANCELED, "reversed", open_amount=0)
            return ctx.result(Outcome.SUCCEEDED, "reversed", snapshot=snap, **common)
        if reverse_status == "declined":
            return ctx.result(Outcome.REJECTED, "reversal declined", provider_code="declined",
                              **common)
        if reverse_status in ("created", "processing"):
            return ctx.result(Outcome.UNKNOWN, f"reversal {reverse_status}, not finished: "
                              "confirm with a status read", **common)
        return malformed(ctx, answer, f"reverse_status is {reverse_status!r}")

    async def check(self) -> ProviderResult:
        """Status of a sentinel order: 1018 (not found) means the signature and host work."""
        return await self._status(CHECK_ORDER_ID, self._ctx("check"))
