"""Clearpay (UK Afterpay, v2 API) on loopback: base ``{url}/clearpay``.

Documented behaviour (providers.md §4) is followed as written: Basic
``base64(merchantId:secretKey)``; errors ``{errorCode, errorId, message,
httpStatusCode}``; money ``{"amount": "10.00", "currency": "GBP"}``; capture
between 1.00 and ``openToCaptureAmount``, several partial captures,
``AUTH_APPROVED`` → ``PARTIALLY_CAPTURED`` → ``CAPTURED``; void with an optional
amount (``VOIDED`` from ``AUTH_APPROVED``, ``CAPTURED`` from
``PARTIALLY_CAPTURED`` when the open amount reaches 0); ``requestId`` replay
within 24 h; 409 while a request with the same ``requestId`` is in flight.
Capture errors exactly as documented: 404 ``not_found`` (non-numeric id),
410 ``payment_captured``, 412 ``error`` (numeric id, no such order), 412
``invalid_state`` (declined), 412 ``payment_voided``, 412 ``payment_expired``,
422 ``invalid_object``, 422 ``invalid_amount``.  Any POST: 400
``invalid_json``, 401 ``unauthorized``, 415 ``error`` (Content-Type not JSON).

Choices where providers.md says UNCONFIRMED:

- Capture and void answer 201 with the Payment.
- Expiry (13 days, or ``expires_at``; lapses when the sandbox time reaches it):
  an ``EXPIRED`` event is appended and ``paymentState`` becomes ``VOIDED``
  (nothing captured) or ``CAPTURED`` (partly captured), like a full void; a
  capture then gets 412 ``payment_expired``, a void too.
- Void on a numeric but unknown id → 404 ``not_found``; void errors otherwise
  mirror capture's (410 ``payment_captured``, 412 ``payment_voided`` /
  ``payment_expired`` / ``invalid_state``, 422 ``invalid_amount`` above the open
  amount).
- The in-flight answer is 409 ``conflict``.  A ``requestId`` reused for a
  different request → 422 ``invalid_object``.  No replay marker header.
- A control-API order in state ``pending`` does not exist yet for Clearpay
  (no Payment before auth): GET → 404, capture → 412 ``error``.
- A currency other than the order's → 422 ``invalid_object``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from aiohttp import web

from watchdog.money import CurrencyError, from_major, to_major_string
from watchdog.sandbox.accounts import for_account
from watchdog.sandbox.dialect import SandboxDialect
from watchdog.sandbox.state import Order, SandboxState, iso
from watchdog.sandbox.wire import (
    Reply,
    Route,
    basic_credentials,
    idempotent,
    json_reply,
    parse_json,
)

#: The well-known test credentials the sandbox accepts (never real secrets).
CLEARPAY_MERCHANT_ID = "100101"
CLEARPAY_SECRET_KEY = "sandbox-clearpay-secret"

REQUEST_ID_WINDOW = dt.timedelta(hours=24)


def _credentials() -> tuple[str, str]:
    """The Basic credentials of the merchant account the request is addressed to."""
    return for_account(CLEARPAY_MERCHANT_ID), for_account(CLEARPAY_SECRET_KEY)

def error(status: int, code: str, message: str) -> Reply:
    """A Clearpay error answer."""
    return json_reply(status, {"errorCode": code, "errorId": uuid.uuid4().hex[:16],
                               "message": message, "httpStatusCode": status})


def money(minor: int, currency: str) -> dict[str, str]:
    """``{"amount": "10.00", "currency": "GBP"}``."""
    return {"amount": to_major_string(minor, currency), "currency": currency}


def payment_state(order: Order) -> str:
    """The Clearpay ``paymentState``."""
    if order.state == "declined":
        return "AUTH_DECLINED"
    if order.open_amount > 0:
        return "PARTIALLY_CAPTURED" if order.captured > 0 else "AUTH_APPROVED"
    return "CAPTURED" if order.captured > 0 else "VOIDED"


def payment_json(order: Order) -> dict[str, Any]:
    """The Payment object."""
    cur = order.currency
    events: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    if order.state == "declined":
        events.append({"id": f"{order.order_id}-auth", "created": iso(order.authorized_at),
                       "type": "AUTH_DECLINED", "amount": money(order.amount, cur)})
    else:
        events.append({"id": f"{order.order_id}-auth", "created": iso(order.authorized_at),
                       "expires": iso(order.expires_at), "type": "AUTH_APPROVED",
                       "amount": money(order.amount, cur)})
    voided = 0
    for event in order.history:
        events.append(event)
        if event["type"] == "VOIDED":
            voided += from_major(event["amount"]["amount"], cur)
            refunds.insert(0, {"refundId": event["id"], "refundedAt": event["created"],
                               "amount": event["amount"], "requestId": event.get("requestId")})
    if order.lapsed_at is not None:
        lapsed = order.amount - order.captured - voided
        events.append({"id": f"{order.order_id}-expired", "created": iso(order.lapsed_at),
                       "type": "EXPIRED", "amount": money(lapsed, cur)})
    return {
        "id": order.order_id,
        "token": f"sbx-token-{order.order_id}",
        "status": "DECLINED" if order.state == "declined" else "APPROVED",
        "created": iso(order.authorized_at),
        "originalAmount": money(order.amount, cur),
        "openToCaptureAmount": money(order.open_amount, cur),
        "paymentState": payment_state(order),
        "merchantReference": order.reference,
        "refunds": refunds,
        "orderDetails": {"consumer": {"email": "shopper@example.com"}},
        "events": events,
    }


def _request_id(body: bytes) -> str | None:
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return None
    value = payload.get("requestId") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and value else None


def _conflict() -> Reply:
    return error(409, "conflict",
                 "A request with this requestId is currently being processed; retry later")


def _preamble(request: web.Request, body: bytes) -> dict[str, Any] | Reply:
    if basic_credentials(request) != _credentials():
        return error(401, "unauthorized", "Credentials are required to access this resource.")
    if not body.strip():
        return {}
    if request.content_type != "application/json":
        return error(415, "error", "Content-Type must be application/json")
    try:
        payload = parse_json(body)
    except ValueError:
        return error(400, "invalid_json", "The request body is not valid JSON")
    if not isinstance(payload, dict):
        return error(400, "invalid_json", "The request body must be a JSON object")
    return payload


def _money_field(payload: dict[str, Any], order: Order) -> int | Reply | None:
    raw = payload.get("amount")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return error(422, "invalid_object", "amount must be an object {amount, currency}")
    value, currency = raw.get("amount"), raw.get("currency")
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool) \
            or not isinstance(currency, str):
        return error(422, "invalid_object", "amount.amount and amount.currency are required")
    if currency != order.currency:
        return error(422, "invalid_object",
                     f"amount.currency {currency} is not the payment currency {order.currency}")
    try:
        return from_major(value, currency)
    except (CurrencyError, ValueError):
        return error(422, "invalid_object", f"amount.amount {value!r} is not a valid amount")


def _refusal(order: Order) -> Reply | None:
    if order.state == "declined":
        return error(412, "invalid_state", "Payment was declined")
    if order.open_amount > 0:
        return None
    if order.lapsed:
        return error(412, "payment_expired", "The authorization has expired")
    if order.captured > 0:
        return error(410, "payment_captured", "The payment has already been captured")
    return error(412, "payment_voided", "The payment has been voided")


def _lookup(state: SandboxState, order_id: str, *, numeric_missing: Reply) -> Order | Reply:
    if not order_id.isdigit():
        return error(404, "not_found", f"Payment {order_id} not found")
    order = state.find("clearpay", order_id)
    if order is None or order.state == "pending":
        return numeric_missing
    return order


def capture(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /v2/payments/{orderId}/capture."""
    payload = _preamble(request, body)
    if isinstance(payload, Reply):
        return payload
    order_id = request.match_info["order_id"]
    key = payload.get("requestId") if isinstance(payload.get("requestId"), str) else None
    fingerprint = f"capture {order_id} {json.dumps(payload, sort_keys=True, default=str)}"
    return idempotent(state, "clearpay", key, fingerprint, REQUEST_ID_WINDOW,
                      lambda: _capture(state, order_id, payload, key), _reused)


def _reused() -> Reply:
    return error(422, "invalid_object", "requestId was already used for a different request")


def _capture(state: SandboxState, order_id: str, payload: dict[str, Any],
             key: str | None) -> Reply:
    found = _lookup(state, order_id,
                    numeric_missing=error(412, "error", f"Payment {order_id} not found"))
    if isinstance(found, Reply):
        return found
    order = found
    amount = _money_field(payload, order)
    if amount is None:
        return error(422, "invalid_object", "amount is required")
    if isinstance(amount, Reply):
        return amount
    for name in ("merchantReference", "paymentEventMerchantReference"):
        ref = payload.get(name)
        if ref is not None and (not isinstance(ref, str) or len(ref) > 128):
            return error(422, "invalid_object", f"{name} must be a string of at most 128")
    refused = _refusal(order)
    if refused is not None:
        return refused
    if amount < from_major("1.00", order.currency) or amount > order.open_amount:
        return error(422, "invalid_amount",
                     f"Amount must be between 1.00 and the open amount "
                     f"{to_major_string(order.open_amount, order.currency)}")
    now = state.clock.now()
    order.captured += amount
    order.capture_count += 1
    order.updated_at = now
    if payload.get("merchantReference") is not None:
        order.reference = payload["merchantReference"]
    order.history.append({
        "id": f"{order.order_id}-{state.next_id()}", "created": iso(now), "type": "CAPTURED",
        "amount": money(amount, order.currency),
        "paymentEventMerchantReference": payload.get("paymentEventMerchantReference"),
    })
    state.record_effect(order, "capture", amount, key)
    return json_reply(201, payment_json(order))


def void(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /v2/payments/{orderId}/void — release (part of) the open amount."""
    payload = _preamble(request, body)
    if isinstance(payload, Reply):
        return payload
    order_id = request.match_info["order_id"]
    key = payload.get("requestId") if isinstance(payload.get("requestId"), str) else None
    fingerprint = f"void {order_id} {json.dumps(payload, sort_keys=True, default=str)}"
    return idempotent(state, "clearpay", key, fingerprint, REQUEST_ID_WINDOW,
                      lambda: _void(state, order_id, payload, key), _reused)


def _void(state: SandboxState, order_id: str, payload: dict[str, Any], key: str | None) -> Reply:
    found = _lookup(state, order_id,
                    numeric_missing=error(404, "not_found", f"Payment {order_id} not found"))
    if isinstance(found, Reply):
        return found
    order = found
    amount = _money_field(payload, order)
    if isinstance(amount, Reply):
        return amount
    refused = _refusal(order)
    if refused is not None:
        return refused
    amount = order.open_amount if amount is None else amount
    if amount <= 0 or amount > order.open_amount:
        return error(422, "invalid_amount",
                     f"Amount must be positive and at most the open amount "
                     f"{to_major_string(order.open_amount, order.currency)}")
    now = state.clock.now()
    order.released += amount
    if order.open_amount == 0:
        order.closed = True
        order.canceled = True
    order.updated_at = now
    order.history.append({
        "id": f"{order.order_id}-{state.next_id()}", "created": iso(now), "type": "VOIDED",
        "amount": money(amount, order.currency), "requestId": key,
    })
    state.record_effect(order, "void", amount, key)
    return json_reply(201, payment_json(order))


def status(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """GET /v2/payments/{orderId}."""
    if basic_credentials(request) != _credentials():
        return error(401, "unauthorized", "Credentials are required to access this resource.")
    order_id = request.match_info["order_id"]
    found = _lookup(state, order_id,
                    numeric_missing=error(404, "not_found", f"Payment {order_id} not found"))
    if isinstance(found, Reply):
        return found
    return json_reply(200, payment_json(found))


ROUTES: list[tuple[str, str, Route]] = [
    ("POST", "/clearpay/v2/payments/{order_id}/capture",
     Route("clearpay", "capture", capture, _request_id, _conflict)),
    ("POST", "/clearpay/v2/payments/{order_id}/void",
     Route("clearpay", "cancel", void, _request_id, _conflict)),
    ("GET", "/clearpay/v2/payments/{order_id}", Route("clearpay", "status", status)),
]


def _order_id_problem(order_id: str) -> str | None:
    return None if order_id.isdigit() else "Clearpay order ids are numeric"


DIALECT = SandboxDialect(
    name="clearpay",
    title_text="Clearpay",
    rank=40,
    mount="/clearpay",
    routes=ROUTES,
    provider_status=lambda state, order: payment_state(order),
    default_window=dt.timedelta(days=13),
    default_currency="GBP",
    credentials={"WATCHDOG_CLEARPAY_MERCHANT_ID": CLEARPAY_MERCHANT_ID,
                 "WATCHDOG_CLEARPAY_SECRET_KEY": CLEARPAY_SECRET_KEY},
    order_id_problem=_order_id_problem,
    demo_orders=(
        ("400000001", 4599, "GBP", dt.timedelta(days=12, hours=4), {"capture_amount": 3000}),
        ("400000002", 12000, "GBP", dt.timedelta(days=2), {}),
    ),
)
