"""Smartpay (smartpay.co) on loopback: ``{url}/smartpay/v1``.

Documented behaviour (providers.md §1) is followed as written.  Choices where
providers.md says UNCONFIRMED:

- Auth: ``Authorization: Basic <raw secret key>`` (and ``Bearer <key>``, the
  probable second scheme); anything else → 401 ``unauthorized``.
- Error body: ``{"statusCode", "errorCode", "message", "details"}``.  Malformed
  JSON → 400 ``request.malformed``; invalid fields (order, amount, currency,
  cancelRemainder, currency not the order's) → 400 ``request.invalid``.
- Capture answers **201** with the Payment object.
- ``Idempotency-Replayed: true`` marks a replayed answer.  A key reused within
  6 h for a different request (method, path or body) → 400
  ``request.idempotency-key-reused``; nothing is applied.  4xx answers are
  stored and replayed like successes.
- Status after the end of an order: ``canceled`` if nothing was captured,
  ``succeeded`` if something was (after a cancel, an automatic remainder
  release or the 7-day lapse alike).  The order lapses when the sandbox time
  reaches ``expiresAt``; a capture then gets 409 ``order.cannot-capture``
  ("order has expired").
- Cancelling an already ``canceled`` order answers 200 with the order and
  changes nothing (the reference lists ``canceled`` as cancellable);
  ``succeeded`` / ``requires_authorization`` / ``rejected`` → 409
  ``order.cannot-cancel``.  The cancel answer is the Order object (200).
- A pending order shows ``requires_authorization``, a declined one ``rejected``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aiohttp import web

from watchdog.sandbox.accounts import for_account
from watchdog.sandbox.dialect import SandboxDialect
from watchdog.sandbox.state import Order, SandboxState, ms
from watchdog.sandbox.wire import Reply, Route, idempotent, json_reply, parse_json

#: The well-known test key the sandbox accepts (never a real secret).
SMARTPAY_SECRET_KEY = "sk_test_sandbox_smartpay_secret"

IDEMPOTENCY_WINDOW = dt.timedelta(hours=6)
REPLAYED = {"Idempotency-Replayed": "true"}


def error(status: int, code: str, message: str) -> Reply:
    """A Smartpay error answer."""
    return json_reply(status, {"statusCode": status, "errorCode": code, "message": message,
                               "details": []})


def _authorized(request: web.Request) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    expected = for_account(SMARTPAY_SECRET_KEY)  # the addressed merchant account's key
    return scheme.lower() in ("basic", "bearer") and key.strip() == expected


def order_status(order: Order) -> str:
    """The Smartpay status name of an order."""
    if order.state == "pending":
        return "requires_authorization"
    if order.state == "declined":
        return "rejected"
    if order.open_amount > 0:
        return "requires_capture"
    return "succeeded" if order.captured > 0 else "canceled"


def order_json(order: Order, *, expand: bool = False) -> dict[str, Any]:
    """The Order object."""
    payments: list[Any] = list(order.history) if expand else [p["id"] for p in order.history]
    return {
        "id": order.order_id,
        "object": "order",
        "status": order_status(order),
        "amount": order.amount,
        "currency": order.currency,
        "captureMethod": "manual",
        "expiresAt": ms(order.expires_at),
        "payments": payments,
        "createdAt": ms(order.created_at),
        "updatedAt": ms(order.updated_at),
        "test": True,
    }


def _fingerprint(request: web.Request, payload: Any) -> str:
    return f"{request.method} {request.path} {json.dumps(payload, sort_keys=True, default=str)}"


def _mismatch() -> Reply:
    return error(400, "request.idempotency-key-reused",
                 "Idempotency-Key was already used for a different request")


def capture(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /v1/payments — capture (part of) an authorized order."""
    if not _authorized(request):
        return error(401, "unauthorized", "Missing or invalid secret key")
    try:
        payload = parse_json(body)
    except ValueError:
        return error(400, "request.malformed", "Request body is not valid JSON")
    return idempotent(state, "smartpay", request.headers.get("Idempotency-Key"),
                      _fingerprint(request, payload), IDEMPOTENCY_WINDOW,
                      lambda: _capture(state, payload, request.headers.get("Idempotency-Key")),
                      _mismatch, REPLAYED)


def _capture(state: SandboxState, payload: Any, key: str | None) -> Reply:
    if not isinstance(payload, dict):
        return error(400, "request.invalid", "Request body must be a JSON object")
    order_id = payload.get("order")
    amount = payload.get("amount")
    currency = payload.get("currency")
    remainder = payload.get("cancelRemainder", "automatic")
    if not isinstance(order_id, str) or not order_id:
        return error(400, "request.invalid", "order is required")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return error(400, "request.invalid", "amount must be a positive integer")
    if not isinstance(currency, str) or not currency:
        return error(400, "request.invalid", "currency is required")
    if remainder not in ("automatic", "manual"):
        return error(400, "request.invalid", "cancelRemainder must be automatic or manual")
    order = state.find("smartpay", order_id, currency=currency.upper(), amount=amount)
    if order is None:
        return error(404, "order.not-found", f"Order {order_id} not found")
    if currency.upper() != order.currency:
        return error(400, "request.invalid",
                     f"currency {currency} does not match the order currency {order.currency}")
    if order.state != "authorized":
        return error(409, "order.cannot-capture",
                     f"Order {order_id} cannot be captured: status {order_status(order)}")
    if order.lapsed:
        return error(409, "order.cannot-capture", f"Order {order_id} has expired")
    if order.open_amount == 0:
        return error(409, "order.cannot-capture",
                     f"Order {order_id} cannot be captured: status {order_status(order)}")
    if amount > order.open_amount:
        return error(409, "payment.excessive-amount",
                     f"Amount {amount} exceeds the capturable amount {order.open_amount}")
    now = state.clock.now()
    order.captured += amount
    order.capture_count += 1
    if remainder == "automatic":
        order.released += order.open_amount
        order.closed = True
    order.updated_at = now
    payment: dict[str, Any] = {
        "id": f"payment_test_{state.next_id():012d}",
        "object": "payment",
        "amount": amount,
        "currency": order.currency,
        "order": order.order_id,
        "status": "processed",
        "reference": payload.get("reference"),
        "description": payload.get("description"),
        "lineItems": [],
        "refunds": [],
        "metadata": payload.get("metadata") or {},
        "test": True,
        "createdAt": ms(now),
        "updatedAt": ms(now),
    }
    order.history.append(payment)
    state.record_effect(order, "capture", amount, key)
    return json_reply(201, payment)


def cancel(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """PUT /v1/orders/{id}/cancellation — release whatever is not captured."""
    if not _authorized(request):
        return error(401, "unauthorized", "Missing or invalid secret key")
    order_id = request.match_info["order_id"]
    key = request.headers.get("Idempotency-Key")
    return idempotent(state, "smartpay", key, f"{request.method} {request.path}",
                      IDEMPOTENCY_WINDOW, lambda: _cancel(state, order_id, key),
                      _mismatch, REPLAYED)


def _cancel(state: SandboxState, order_id: str, key: str | None) -> Reply:
    order = state.find("smartpay", order_id)
    if order is None:
        return error(404, "order.not-found", f"Order {order_id} not found")
    status = order_status(order)
    if status == "canceled":
        return json_reply(200, order_json(order))
    if status != "requires_capture":
        return error(409, "order.cannot-cancel", f"Order {order_id} cannot be canceled: {status}")
    released = order.open_amount
    order.released += released
    order.closed = True
    order.canceled = True
    order.updated_at = state.clock.now()
    state.record_effect(order, "cancel", released, key)
    return json_reply(200, order_json(order))


def status(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """GET /v1/orders/{id} — the Order (``?expand=all`` inlines the payments)."""
    if not _authorized(request):
        return error(401, "unauthorized", "Missing or invalid secret key")
    order_id = request.match_info["order_id"]
    order = state.find("smartpay", order_id)
    if order is None:
        return error(404, "order.not-found", f"Order {order_id} not found")
    return json_reply(200, order_json(order, expand=request.query.get("expand") == "all"))


ROUTES: list[tuple[str, str, Route]] = [
    ("POST", "/smartpay/v1/payments", Route("smartpay", "capture", capture)),
    ("PUT", "/smartpay/v1/orders/{order_id}/cancellation", Route("smartpay", "cancel", cancel)),
    ("GET", "/smartpay/v1/orders/{order_id}", Route("smartpay", "status", status)),
]

DIALECT = SandboxDialect(
    name="smartpay",
    title_text="Smartpay",
    rank=10,
    mount="/smartpay/v1",
    routes=ROUTES,
    provider_status=lambda state, order: order_status(order),
    default_window=dt.timedelta(days=7),
    default_currency="JPY",
    credentials={"WATCHDOG_SMARTPAY_SECRET_KEY": SMARTPAY_SECRET_KEY},
    demo_orders=(
        ("order_demo_jp_1", 12800, "JPY", dt.timedelta(days=6, hours=2), {}),
        ("order_demo_jp_2", 5000, "JPY", dt.timedelta(days=1), {}),
    ),
)

__all__ = ["DIALECT", "ROUTES", "SMARTPAY_SECRET_KEY", "order_json", "order_status"]
