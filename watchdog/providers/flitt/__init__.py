"""Flitt (formerly Fondy): capture / reverse / status, protocol 1.0.1 JSON envelope.

Wire facts (providers.md §3): POST ``{"request": {...}}`` signed with
``sha1(secret|sorted values)``; amounts are integers in minor units; failures are
HTTP 200 with ``response_status: failure``; answers come as ``{"response": {...}}``.

Decisions documented here:

* Capture answered ``capture_status: hold`` (created, not yet approved) is
  PENDING with snapshot CAPTURE_PENDING: not final until ``status`` shows it
  ``captured`` (confirmed) or the hold open again without it (failed).
  ``captured`` is SUCCEEDED with snapshot CAPTURED.
* Cancel is a reversal of the FULL held amount (``ref.amount``) with
  ``reverse_id`` = the idempotency key, or its SHA-256 hex cut to 50 characters
  when longer. ``reverse_status: approved`` is SUCCEEDED; ``declined`` REJECTED;
  ``created``/``processing`` (accepted, not finished) PENDING, polled by status
  reads until the order shows ``reversed``.
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

import datetime as dt
import json
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
from watchdog.providers.flitt.signing import flitt_signature, verify_flitt_signature
from watchdog.providers.http import Answer, CallContext, HttpAdapter, bounded_key, malformed
from watchdog.providers.spec import ProviderSpec

NAME = ProviderName.declare("flitt")
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
    return bounded_key(idempotency_key, REVERSE_ID_MAX)


def _int(value: Any) -> int | None:
    """An integer, or a string of digits (Flitt sends both); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _additional_info(value: Any) -> dict[str, Any]:
    """``additional_info`` as a dict: it comes as an object or as a JSON string."""
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
    shown_currency = order.get("currency")
    return ProviderSnapshot(state, raw_state, captured_amount=captured, open_amount=open_amount,
                            amount=_int(order.get("amount")),
                            currency=shown_currency if isinstance(shown_currency, str) else None)


def capture_result(
    ctx: CallContext, answer: Answer, data: dict[str, Any], amount: int
) -> ProviderResult:
    """What a capture answer means: ``captured`` SUCCEEDED, ``hold`` SUCCEEDED but pending."""
    capture_status = data.get("capture_status")
    if capture_status == "captured":
        snap = ProviderSnapshot(ProviderState.CAPTURED, "captured", captured_amount=amount,
                                open_amount=0)
        return ctx.answered(Outcome.SUCCEEDED, f"captured {amount}", answer, snapshot=snap)
    if capture_status == "hold":
        snap = ProviderSnapshot(ProviderState.CAPTURE_PENDING, "hold", open_amount=0)
        return ctx.answered(Outcome.PENDING, "capture created, not yet approved (hold): "
                            "not final until a status read shows it captured", answer,
                            snapshot=snap)
    return malformed(ctx, answer, f"capture_status is {capture_status!r}")


def cancel_result(ctx: CallContext, answer: Answer, data: dict[str, Any]) -> ProviderResult:
    """What a reversal answer means: approved SUCCEEDED, declined REJECTED, unfinished UNKNOWN."""
    reverse_status = data.get("reverse_status")
    if reverse_status == "approved":
        snap = ProviderSnapshot(ProviderState.CANCELED, "reversed", open_amount=0)
        return ctx.answered(Outcome.SUCCEEDED, "reversed", answer, snapshot=snap)
    if reverse_status == "declined":
        return ctx.answered(Outcome.REJECTED, "reversal declined", answer,
                            provider_code="declined")
    if reverse_status in ("created", "processing"):
        return ctx.answered(Outcome.PENDING, f"reversal {reverse_status}, not finished: "
                            "not final until a status read shows the order reversed", answer)
    return malformed(ctx, answer, f"reverse_status is {reverse_status!r}")


def declared_failure(
    ctx: CallContext, answer: Answer, data: dict[str, Any], rid: str | None
) -> ProviderResult:
    """An HTTP 200 ``response_status: failure``, classified by its ``error_code``."""
    code = str(data.get("error_code", "")) or None
    text = str(data.get("error_message") or "no message")
    common: dict[str, Any] = {"provider_code": code, "request_id": rid}
    if ctx.operation == "check":
        if code == ORDER_NOT_FOUND:
            return ctx.answered(Outcome.SUCCEEDED, "signature accepted and Flitt reachable "
                                "(sentinel order not found, as expected)", answer, **common)
        if code in CREDENTIAL_CODES:
            return ctx.answered(Outcome.REJECTED, f"bad credentials: {text}; check the "
                                "Flitt merchant id and secret key", answer, **common)
    if code in RETRYABLE_CODES:
        return ctx.answered(Outcome.RETRYABLE, f"provider error {code}: {text}; retry", answer,
                            **common)
    if code in REJECTED_CODES:
        return ctx.answered(Outcome.REJECTED, f"refused ({code}): {text}", answer, **common)
    if ctx.moves_money:
        return ctx.answered(Outcome.UNKNOWN, f"unrecognised failure code {code!r}: {text}; "
                            "not guessed at, confirm with a status read", answer, **common)
    return ctx.answered(Outcome.RETRYABLE, f"unrecognised failure code {code!r}: {text}",
                        answer, **common)


class FlittAdapter(HttpAdapter):
    """Flitt's capture / reverse / status API."""

    provider = NAME
    status_words = ("order state", "order")

    def _configure(self) -> None:
        """The merchant id (a number on the wire when it is one) and the signing secret."""
        merchant = self._settings.credential(MERCHANT_ID_ENV).reveal()
        self._merchant_id: int | str = int(merchant) if merchant.isdigit() else merchant
        self._secret = self._settings.credential(SECRET_KEY_ENV)
        self._secret_values = (self._secret, merchant)

    def _signed(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request envelope: merchant id and version added, then signed."""
        params = {"merchant_id": self._merchant_id, "version": VERSION, **params}
        params["signature"] = flitt_signature(params, self._secret)
        return {"request": params}

    def _status_route(self, order_id: str) -> tuple[str, str, Any]:
        """POST /status/order_id."""
        return "POST", "/status/order_id", self._signed({"order_id": order_id})

    def _parse_snapshot(self, data: Any, currency: str) -> ProviderSnapshot | str:
        """The unwrapped status answer (amounts are minor units: no currency needed)."""
        return snapshot_from_order(data)

    def _unwrap(self, ctx: CallContext, answer: Answer) -> Any:
        """The ``response`` object of a verified ``success``; failures are classified here."""
        data = answer.data.get("response") if isinstance(answer.data, dict) else None
        if not isinstance(data, dict):
            return malformed(ctx, answer, "no `response` object")
        rid = data.get("request_id")
        rid = str(rid) if rid not in (None, "") else answer.request_id
        if "signature" in data and not verify_flitt_signature(data, self._secret):
            outcome = Outcome.UNKNOWN if ctx.moves_money else Outcome.RETRYABLE
            return ctx.answered(outcome, "the response signature does not verify: the answer "
                                "is not believed (tampered, or wrong secret); confirm with a "
                                "status read", answer, request_id=rid, provider_code="signature")
        status = data.get("response_status")
        if status == "failure":
            return declared_failure(ctx, answer, data, rid)
        if status != "success":
            return malformed(ctx, answer, f"response_status is {status!r}", request_id=rid)
        return data

    def _known_failure(
        self, ctx: CallContext, answer: Answer, code: str | None, text: str, rid: str | None,
    ) -> ProviderResult | None:
        """Any other 4xx is REJECTED by status alone: Flitt's errors come as HTTP 200."""
        if 400 <= answer.status < 500:
            return ctx.answered(Outcome.REJECTED, f"refused with HTTP {answer.status}", answer,
                                request_id=rid)
        return None

    async def _capture(
        self, ctx: CallContext, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /capture/order_id (no key: a same-amount replay reports the state)."""
        body = self._signed({"order_id": ref.order_id, "amount": amount,
                             "currency": ref.currency})
        return await self._send(ctx, "POST", "/capture/order_id",
                                lambda answer, data: capture_result(ctx, answer, data, amount),
                                body=body)

    async def _cancel(self, ctx: CallContext, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """POST /reverse/order_id for the full held amount."""
        refused = self._refuse_currency(ctx, ref.currency)
        if refused is not None:
            return refused
        body = self._signed({"order_id": ref.order_id, "amount": ref.amount,
                             "currency": ref.currency, "reverse_id": reverse_id(idempotency_key)})
        return await self._send(ctx, "POST", "/reverse/order_id",
                                lambda answer, data: cancel_result(ctx, answer, data), body=body)


SPEC = ProviderSpec(
    name=NAME,
    rank=30,
    rules=ProviderRules(NAME, dt.timedelta(days=5), multiple_captures=False,
                        partial_releases_remainder=True, reports_expiry=False),
    default_base_url="https://pay.flitt.com/api",
    connect_timeout=10.0,
    read_timeout=30.0,
    secret_variables=(MERCHANT_ID_ENV, SECRET_KEY_ENV),
    explain="one capture only (pre-auth hold); a partial capture returns the rest to the "
    "card; a cancel reverses the full held amount; hold window not documented (default "
    "5 days)",
    # ``approved`` is read with its ``capture_status``.
    states={
        **_ORDER_STATES,
        **{f"approved/{k}" if k else "approved": v for k, v in _CAPTURE_STATES.items()},
        "approved/hold+capture_amount": ProviderState.CAPTURE_PENDING,
    },
    evidence_keys=frozenset({"response", "order_id", "merchant_id", "order_status",
                             "actual_amount", "reversal_amount", "settlement_amount", "preauth",
                             "tran_type", "payment_id", "order_time", "response_status",
                             "response_code", "capture_status", "capture_amount", "reverse_id",
                             "reverse_status"}),
    not_found_codes=frozenset({ORDER_NOT_FOUND}),
    adapter=FlittAdapter,
)
