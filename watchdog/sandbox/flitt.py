"""Flitt (pay.flitt.com, formerly Fondy) on loopback: base ``{url}/flitt/api``.

Documented behaviour (providers.md §3): no auth header; every request carries
``merchant_id`` and ``signature`` = lower-case SHA-1 hex of
``secret|v1|v2|…`` where the values are those of all other non-empty
parameters ordered by parameter *name* (absent / empty skipped, 0 kept,
``signature`` and ``response_signature_string`` excluded).  JSON requests are
``{"request": {...}}`` and answers ``{"response": {...}}`` (form-encoded
requests get form-encoded answers); successful answers are signed the same way
and carry ``response_signature_string`` with the secret masked.  Amounts are
integer minor units.  Failures are HTTP 200 with ``response_status: failure``.

Choices where providers.md says UNCONFIRMED (error codes from the documented list):

- Bad signature → 1014 "Invalid signature"; missing parameter → 1011; unknown
  ``merchant_id`` → 1016; malformed ``amount`` / ``currency`` / ``reverse_id``
  or an amount above what the order allows → 1007 "Parameter `x` is
  incorrect"; unknown order → 1018; empty / unparseable body → 1010.
- Capture on an order that is not holding money (pending, declined, expired)
  → 1000 "General decline"; on one already completed (captured with a
  *different* amount, reversed) → 1019 "Order already completed".  A capture
  repeated with the *same* amount answers success, ``capture_status:
  captured`` and moves nothing.
- Capture is synchronous: the answer is already ``captured`` (``hold`` is what
  ``additional_info.capture_status`` shows while an approved pre-auth waits;
  ``null`` when there is no hold).  ``capture_amount`` is in minor units.
  An order created with ``settle_seconds`` answers a capture ``hold`` instead
  (status: ``approved``, ``capture_status: hold`` with its ``capture_amount``)
  and a reversal ``reverse_status: processing`` (status unchanged until then);
  once that much sandbox time has passed the capture shows ``captured`` and the
  reversal ``reversed`` — or, with ``settle_outcome: fail``, the hold is open
  again as if nothing was asked (ledger ``capture_failed``).
- The hold window is 5 days; when the sandbox time reaches ``expires_at`` an
  uncaptured order shows ``order_status: expired``.
- Reverse before capture: the full amount only (else 1007), answer
  ``reverse_status: approved``.  Reverse after capture is a refund of up to the
  captured amount (ledger operation ``refund``); when all of it is refunded the
  order shows ``reversed``.  ``reverse_id`` dedupes per order for the sandbox's
  lifetime (same id → the original answer, nothing applied; same id with a
  different request → 1007).  Failures are not signed.
- Protocol 2.0 (base64 ``data`` envelope) is not implemented: → 1002.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from watchdog.sandbox.accounts import for_account
from watchdog.sandbox.dialect import SandboxDialect
from watchdog.sandbox.state import Order, SandboxState
from watchdog.sandbox.wire import Reply, Route, idempotent, json_reply, parse_json

#: The well-known test credentials the sandbox accepts (never real secrets).
FLITT_MERCHANT_ID = "1549901"
FLITT_SECRET_KEY = "test"

FORM = "application/x-www-form-urlencoded"
_EXCLUDED = frozenset({"signature", "response_signature_string"})


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signature_string(secret: str, params: Mapping[str, Any]) -> str:
    """``secret|values…`` of the non-empty params ordered by name (what gets hashed)."""
    values = [
        text for name in sorted(params)
        if name not in _EXCLUDED and (text := _text(params[name])) != ""
    ]
    return "|".join([secret, *values])


def sign(secret: str, params: Mapping[str, Any]) -> str:
    """The Flitt signature of ``params``: lower-case SHA-1 hex of ``signature_string``."""
    return hashlib.sha1(signature_string(secret, params).encode()).hexdigest()


class _Call:
    """One parsed Flitt request and how to answer it (JSON or form)."""

    def __init__(self, params: dict[str, Any], form: bool, request_id: str) -> None:
        self.params = params
        self.form = form
        self.request_id = request_id

    def answer(self, response: dict[str, Any]) -> Reply:
        if self.form:
            body = urlencode({k: _text(v) for k, v in response.items()}).encode()
            return Reply(200, body, FORM)
        return json_reply(200, {"response": response})

    def failure(self, code: int, message: str) -> Reply:
        return self.answer({"response_status": "failure", "error_code": code,
                            "error_message": message, "request_id": self.request_id})

    def success(self, response: dict[str, Any]) -> Reply:
        response = {**response, "response_status": "success"}
        masked = signature_string(for_account(FLITT_SECRET_KEY), response).replace(
            for_account(FLITT_SECRET_KEY), "*" * 10, 1)
        response["signature"] = sign(for_account(FLITT_SECRET_KEY), response)
        response["response_signature_string"] = masked
        return self.answer(response)


def _parse(state: SandboxState, request: web.Request, body: bytes) -> _Call | Reply:
    request_id = f"sbx{state.next_id():010d}"
    form = request.content_type == FORM
    params: Any
    if form:
        params = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    else:
        try:
            envelope = parse_json(body)
        except ValueError:
            envelope = None
        params = envelope.get("request") if isinstance(envelope, dict) else None
    call = _Call(params if isinstance(params, dict) else {}, form, request_id)
    if not isinstance(params, dict) or not params:
        return call.failure(1010, "Request is empty")
    if _text(params.get("version")) == "2.0":
        return call.failure(1002, "Application error: protocol 2.0 is not supported here")
    for name in ("merchant_id", "signature"):
        if _text(params.get(name)) == "":
            return call.failure(1011, f"Parameter `{name}` is missing")
    if _text(params["merchant_id"]) != for_account(FLITT_MERCHANT_ID):
        return call.failure(1016, "Merchant not found")
    if params["signature"] != sign(for_account(FLITT_SECRET_KEY), params):
        return call.failure(1014, "Invalid signature")
    if _text(params.get("order_id")) == "":
        return call.failure(1011, "Parameter `order_id` is missing")
    return call


def _amount(call: _Call, order: Order | None) -> int | Reply:
    raw = call.params.get("amount")
    if _text(raw) == "":
        return call.failure(1011, "Parameter `amount` is missing")
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str)
                                                               and raw.isdigit())):
        return call.failure(1007, "Parameter `amount` is incorrect")
    amount = int(raw)
    if amount <= 0:
        return call.failure(1007, "Parameter `amount` is incorrect")
    currency = _text(call.params.get("currency"))
    if currency == "":
        return call.failure(1011, "Parameter `currency` is missing")
    if order is not None and currency != order.currency:
        return call.failure(1007, "Parameter `currency` is incorrect")
    return amount


def order_status(order: Order) -> str:
    """The Flitt ``order_status`` of an order."""
    if order.state == "pending":
        return "processing"
    if order.state == "declined":
        return "declined"
    if order.captured == 0:
        if order.canceled:
            return "reversed"
        if order.lapsed:
            return "expired"
        return "approved"
    return "reversed" if order.refunded >= order.captured else "approved"


def capture_status(order: Order) -> str | None:
    """``additional_info.capture_status``: hold while waiting, captured after."""
    if order.pending is not None and order.pending.operation == "capture":
        return "hold"
    if order.captured > 0:
        return "captured"
    return "hold" if order.open_amount > 0 else None


def capture(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /api/capture/order_id — one capture per pre-authorization."""
    call = _parse(state, request, body)
    if isinstance(call, Reply):
        return call
    order_id = _text(call.params["order_id"])
    order = state.find("flitt", order_id, currency=_text(call.params.get("currency")) or None)
    amount = _amount(call, order)
    if isinstance(amount, Reply):
        return amount
    if order is None:
        return call.failure(1018, "Order not found")
    head = {"order_id": order_id, "merchant_id": int(for_account(FLITT_MERCHANT_ID)),
            "response_code": "", "response_description": ""}
    if order.captured > 0:
        if amount == order.captured:
            return call.success({**head, "capture_status": capture_status(order)})
        return call.failure(1019, "Order already completed: already captured")
    if order.canceled:
        return call.failure(1019, "Order already completed: order is reversed")
    if order.open_amount == 0:
        return call.failure(1000, f"General decline: order is {order_status(order)}")
    if amount > order.open_amount:
        return call.failure(1007, "Parameter `amount` is incorrect: exceeds the order amount")
    released = order.open_amount - amount
    order.captured = amount
    order.capture_count = 1
    order.released += released
    order.closed = True
    order.updated_at = state.clock.now()
    state.record_effect(order, "capture", amount, None)
    state.pend(order, "capture", amount, applied=True, released=released, default_seconds=None)
    return call.success({**head, "capture_status": capture_status(order)})


def reverse(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /api/reverse/order_id — full release before capture, refunds after."""
    call = _parse(state, request, body)
    if isinstance(call, Reply):
        return call
    reverse_id = _text(call.params.get("reverse_id")) or None
    if reverse_id is not None and len(reverse_id) > 50:
        return call.failure(1007, "Parameter `reverse_id` is incorrect")
    order_id = _text(call.params["order_id"])
    fingerprint = json.dumps({k: v for k, v in call.params.items() if k != "signature"},
                             sort_keys=True, default=str)
    return idempotent(
        state, f"flitt:{order_id}", reverse_id, fingerprint, None,
        lambda: _reverse(state, call, order_id, reverse_id),
        lambda: call.failure(1007, "Parameter `reverse_id` is incorrect: already used"))


def _reverse(state: SandboxState, call: _Call, order_id: str, reverse_id: str | None) -> Reply:
    order = state.find("flitt", order_id, currency=_text(call.params.get("currency")) or None)
    amount = _amount(call, order)
    if isinstance(amount, Reply):
        return amount
    if order is None:
        return call.failure(1018, "Order not found")
    if order.captured == 0:
        if order.canceled:
            return call.failure(1019, "Order already completed: order is reversed")
        if order.open_amount == 0:
            return call.failure(1000, f"General decline: order is {order_status(order)}")
        if amount != order.open_amount:
            return call.failure(
                1007, "Parameter `amount` is incorrect: before capture only the full amount "
                      "can be reversed")
        if order.pending is not None:
            return call.failure(1000, "General decline: an operation is in progress")
        if state.pend(order, "cancel", amount, applied=False, key=reverse_id,
                      default_seconds=None) is not None:
            return call.success({
                "order_id": order_id, "merchant_id": int(for_account(FLITT_MERCHANT_ID)),
                "reverse_status": "processing", "reversal_amount": amount,
                "currency": order.currency, "transaction_id": state.next_id(),
                "response_code": "", "response_description": "",
            })
        order.released += amount
        order.closed = True
        order.canceled = True
        operation = "reverse"
    else:
        if amount > order.captured - order.refunded:
            return call.failure(1007, "Parameter `amount` is incorrect: exceeds the captured "
                                      "amount not yet reversed")
        order.refunded += amount
        operation = "refund"
    order.updated_at = state.clock.now()
    state.record_effect(order, operation, amount, reverse_id)
    return call.success({
        "order_id": order_id, "merchant_id": int(for_account(FLITT_MERCHANT_ID)),
        "reverse_status": "approved", "reversal_amount": amount, "currency": order.currency,
        "transaction_id": state.next_id(), "response_code": "", "response_description": "",
    })


def status(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /api/status/order_id — the whole order."""
    call = _parse(state, request, body)
    if isinstance(call, Reply):
        return call
    order_id = _text(call.params["order_id"])
    order = state.find("flitt", order_id)
    if order is None:
        return call.failure(1018, "Order not found")
    info = {"capture_status": capture_status(order),
            "capture_amount": order.captured if order.captured else None,
            "client_fee": 0.0, "bonus": None, "reservation_data": None}
    return call.success({
        "order_id": order_id,
        "merchant_id": int(for_account(FLITT_MERCHANT_ID)),
        "order_status": order_status(order),
        "amount": order.amount,
        "actual_amount": order.amount,
        "reversal_amount": order.refunded + (order.released if order.canceled else 0),
        "settlement_amount": 0,
        "currency": order.currency,
        "preauth": "Y",
        "tran_type": "purchase",
        "payment_id": zlib.crc32(order_id.encode()),
        "order_time": order.authorized_at.strftime("%d.%m.%Y %H:%M:%S"),
        "additional_info": json.dumps(info),
        "response_code": "",
        "response_description": "",
    })


ROUTES: list[tuple[str, str, Route]] = [
    ("POST", "/flitt/api/capture/order_id", Route("flitt", "capture", capture)),
    ("POST", "/flitt/api/reverse/order_id", Route("flitt", "cancel", reverse)),
    ("POST", "/flitt/api/status/order_id", Route("flitt", "status", status)),
]


def _truth_word(order: Order) -> str:
    """``approved`` is read with its ``capture_status`` (``approved/captured``)."""
    status, capture = order_status(order), capture_status(order)
    return f"{status}/{capture}" if status == "approved" and capture else status


DIALECT = SandboxDialect(
    name="flitt",
    title_text="Flitt",
    rank=30,
    mount="/flitt/api",
    routes=ROUTES,
    provider_status=lambda state, order: order_status(order),
    default_window=dt.timedelta(days=5),
    default_currency="GEL",
    truth_word_of=lambda state, order: _truth_word(order),
    credentials={"WATCHDOG_FLITT_MERCHANT_ID": FLITT_MERCHANT_ID,
                 "WATCHDOG_FLITT_SECRET_KEY": FLITT_SECRET_KEY},
    demo_orders=(
        ("demo_flitt_1", 25000, "GEL", dt.timedelta(days=4, hours=3), {"on_deadline": "cancel"}),
        ("demo_flitt_2", 4000, "GEL", dt.timedelta(hours=3), {}),
    ),
)
