"""SmartPay by J.P. Morgan Mobility Payment Solutions on loopback: base ``{url}/jpmmps``.

Documented behaviour (providers.md §2) is followed as written: Basic
``base64(merchantKey:authenticationKey)``, ``merchantKey`` in the body,
mandatory ``modificationId`` (≤64), ``transactionId`` ≤36, amounts as JSON
decimal numbers in major units, capture without ``modifiedAmount`` takes the
whole amount, a partial capture releases the rest, cancel only while
authorized, ``modificationId`` replay returns the original answer.

Choices where providers.md says UNCONFIRMED:

- Error body: ``{"errorCode", "message", "httpStatus", "ignoredProperties"}``.
  401 ``UNAUTHORIZED`` (bad/missing Basic auth); 403 ``FORBIDDEN`` (body
  ``merchantKey`` is not the authenticated one); 400 ``VALIDATION_ERROR``
  (missing/too long field, bad amount, invalid JSON); 400 ``CURRENCY_MISMATCH``;
  404 ``TRANSACTION_NOT_FOUND``.  Business refusals use 400 (the only 4xx the
  OpenAPI lists besides 401/403/404): ``INVALID_AMOUNT`` (more than the
  authorized amount), ``AUTHORIZATION_EXPIRED`` (capture or cancel after the
  window), ``INVALID_PAYMENT_STATUS`` (second capture, capture after cancel,
  cancel after capture; the message names the current status),
  ``MODIFICATION_ID_REUSED`` (same modificationId, different request).
- Single capture per transaction.  The capture answer always says
  ``CAPTURE_PENDING`` (its ``modification.status`` ``PENDING``); a status read
  once the order's ``settle_seconds`` (else the server's
  ``capture_settle_seconds``, default 0: the next read) of sandbox time have
  passed shows ``CAPTURED`` with the modification ``COMPLETED`` — or, for an
  order created with ``settle_outcome: fail``, ``AUTHORIZATION_COMPLETED`` again
  with the modification ``FAILED`` and the money open (ledger ``capture_failed``).
- Status names: pending → ``AUTORIZATION_INITIALIZED`` (sic), declined →
  ``FAILED``, lapsed → ``EXPIRED`` (the window ends when the sandbox time
  reaches ``expires_at``), cancelled → ``CANCELLED``.
- ``modificationId`` answers are kept for the sandbox's lifetime; replays carry
  no marker header.  Modification answers are HTTP 200 with a top-level
  ``modification`` object for the request just made.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from watchdog.money import CurrencyError, from_major, to_major
from watchdog.sandbox.accounts import for_account
from watchdog.sandbox.dialect import DemoAccount, SandboxDialect
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
JPMMPS_MERCHANT_KEY = "sandbox-jpmmps-merchant"
JPMMPS_AUTHENTICATION_KEY = "sandbox-jpmmps-authkey"

CAPTURE_FIELDS = frozenset(
    {"transactionId", "merchantKey", "modificationId", "customReferences", "modifiedAmount"})
CANCEL_FIELDS = frozenset(
    {"transactionId", "merchantKey", "modificationId", "description", "customReferences"})


def _credentials() -> tuple[str, str]:
    """The Basic credentials of the merchant account the request is addressed to."""
    return for_account(JPMMPS_MERCHANT_KEY), for_account(JPMMPS_AUTHENTICATION_KEY)

def error(status: int, code: str, message: str, ignored: list[str] | None = None) -> Reply:
    """A JPMMPS error answer."""
    return json_reply(status, {"errorCode": code, "message": message, "httpStatus": status,
                               "ignoredProperties": ignored or []})


def payment_status(state: SandboxState, order: Order) -> str:
    """The JPMMPS ``paymentStatus`` of an order."""
    if order.state == "pending":
        return "AUTORIZATION_INITIALIZED"
    if order.state == "declined":
        return "FAILED"
    if order.pending is not None and order.pending.operation == "capture":
        return "CAPTURE_PENDING"
    if order.captured > 0:
        return "CAPTURED"
    if order.canceled:
        return "CANCELLED"
    if order.lapsed:
        return "EXPIRED"
    return "AUTHORIZATION_COMPLETED"


def _decimal(minor: int, currency: str) -> float:
    return float(to_major(minor, currency))


def model(state: SandboxState, order: Order, ignored: list[str],
          status_override: str | None = None) -> dict[str, Any]:
    """The shared response model of modification and status calls."""
    last = order.updated_at
    status = status_override or payment_status(state, order)
    if status == "CAPTURED" and order.settles_at is not None:
        last = max(last, order.settles_at)
    modifications = [dict(mod) for mod in order.history]  # each with its own status
    return {
        "reconciliationReferenceId": f"rr-{order.order_id}",
        "description": None,
        "paymentStatus": status,
        "creationDate": iso(order.created_at),
        "lastStatusDate": iso(last),
        "transactionOverview": {
            "transactionId": order.order_id,
            "paymentMethod": "CREDIT_CARD",
            "customerAccountId": "sandbox-customer",
            "amount": _decimal(order.amount, order.currency),
            "currencyCode": order.currency,
        },
        "modifications": modifications,
        "ignoredProperties": ignored,
    }


def _common(request: web.Request, body: bytes,
            known: frozenset[str]) -> tuple[dict[str, Any], list[str]] | Reply:
    creds = basic_credentials(request)
    if creds != _credentials():
        return error(401, "UNAUTHORIZED", "Invalid merchantKey or authenticationKey")
    try:
        payload = parse_json(body)
    except ValueError:
        return error(400, "VALIDATION_ERROR", "Request body is not valid JSON")
    if not isinstance(payload, dict):
        return error(400, "VALIDATION_ERROR", "Request body must be a JSON object")
    ignored = sorted(k for k in payload if k not in known)
    if payload.get("merchantKey") != creds[0]:
        return error(403, "FORBIDDEN", "merchantKey does not match the credentials", ignored)
    for name, limit in (("transactionId", 36), ("modificationId", 64)):
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            return error(400, "VALIDATION_ERROR", f"{name} is mandatory", ignored)
        if len(value) > limit:
            return error(400, "VALIDATION_ERROR", f"{name} must be at most {limit} characters",
                         ignored)
    return payload, ignored


def _fingerprint(operation: str, payload: dict[str, Any]) -> str:
    return f"{operation} {json.dumps(payload, sort_keys=True, default=str)}"


def _mismatch() -> Reply:
    return error(400, "MODIFICATION_ID_REUSED",
                 "modificationId was already used for a different request")


def capture(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /payment/capture."""
    parsed = _common(request, body, CAPTURE_FIELDS)
    if isinstance(parsed, Reply):
        return parsed
    payload, ignored = parsed
    key = payload["modificationId"]
    return idempotent(state, "jpmmps", key, _fingerprint("capture", payload), None,
                      lambda: _capture(state, payload, ignored, key), _mismatch)


def _capture(state: SandboxState, payload: dict[str, Any], ignored: list[str],
             key: str) -> Reply:
    tx = payload["transactionId"]
    modified = payload.get("modifiedAmount")
    amount: int | None = None
    currency: str | None = None
    if modified is not None:
        if not isinstance(modified, dict):
            return error(400, "VALIDATION_ERROR", "modifiedAmount must be an object", ignored)
        raw = modified.get("amount")
        currency = modified.get("currencyCode")
        if not isinstance(currency, str) or len(currency) != 3:
            return error(400, "VALIDATION_ERROR", "modifiedAmount.currencyCode is mandatory",
                         ignored)
        if not isinstance(raw, int | Decimal) or isinstance(raw, bool):
            return error(400, "VALIDATION_ERROR", "modifiedAmount.amount must be a number",
                         ignored)
        try:
            amount = from_major(raw, currency)
        except (CurrencyError, ValueError) as exc:
            return error(400, "VALIDATION_ERROR", f"modifiedAmount.amount: {exc}", ignored)
        if amount <= 0:
            return error(400, "VALIDATION_ERROR", "modifiedAmount.amount must be positive",
                         ignored)
    order = state.find("jpmmps", tx, currency=currency, amount=amount)
    if order is None:
        return error(404, "TRANSACTION_NOT_FOUND", f"Transaction {tx} not found", ignored)
    if currency is not None and currency != order.currency:
        return error(400, "CURRENCY_MISMATCH",
                     f"currencyCode {currency} is not the transaction currency {order.currency}",
                     ignored)
    if order.lapsed and order.captured == 0:
        return error(400, "AUTHORIZATION_EXPIRED", f"Authorization of {tx} has expired", ignored)
    current = payment_status(state, order)
    if current != "AUTHORIZATION_COMPLETED":
        return error(400, "INVALID_PAYMENT_STATUS",
                     f"Transaction {tx} cannot be captured in status {current}", ignored)
    amount = order.amount if amount is None else amount
    if amount > order.open_amount:
        return error(400, "INVALID_AMOUNT",
                     f"Amount exceeds the authorized amount "
                     f"{to_major(order.open_amount, order.currency)}", ignored)
    now = state.clock.now()
    released = order.open_amount - amount
    order.captured = amount
    order.capture_count = 1
    order.released += released
    order.closed = True
    order.settles_at = now + state.capture_settle("jpmmps")
    order.updated_at = now
    modification = {
        "modificationId": key,
        "creationDate": iso(now),
        "modificationData": {"type": "CAPTURE", "amount": _decimal(amount, order.currency),
                             "currencyCode": order.currency},
        "status": "PENDING",
    }
    order.history.append(modification)
    state.record_effect(order, "capture", amount, key)
    effect = state.pend(order, "capture", amount, applied=True, released=released, key=key,
                        record=modification,
                        default_seconds=state.capture_settle("jpmmps").total_seconds())
    if effect is not None:
        order.settles_at = effect.settles_at
    answer = model(state, order, ignored, status_override="CAPTURE_PENDING")
    answer["modification"] = dict(modification)
    return json_reply(200, answer)


def cancel(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """POST /payment/cancel — release the full authorized amount."""
    parsed = _common(request, body, CANCEL_FIELDS)
    if isinstance(parsed, Reply):
        return parsed
    payload, ignored = parsed
    key = payload["modificationId"]
    return idempotent(state, "jpmmps", key, _fingerprint("cancel", payload), None,
                      lambda: _cancel(state, payload, ignored, key), _mismatch)


def _cancel(state: SandboxState, payload: dict[str, Any], ignored: list[str],
            key: str) -> Reply:
    tx = payload["transactionId"]
    order = state.find("jpmmps", tx)
    if order is None:
        return error(404, "TRANSACTION_NOT_FOUND", f"Transaction {tx} not found", ignored)
    current = payment_status(state, order)
    if current == "EXPIRED":
        return error(400, "AUTHORIZATION_EXPIRED", f"Authorization of {tx} has expired", ignored)
    if current != "AUTHORIZATION_COMPLETED":
        return error(400, "INVALID_PAYMENT_STATUS",
                     f"Transaction {tx} cannot be cancelled in status {current}; "
                     "use refund or cancelOrRefund", ignored)
    now = state.clock.now()
    released = order.open_amount
    order.released += released
    order.closed = True
    order.canceled = True
    order.updated_at = now
    modification = {
        "modificationId": key,
        "creationDate": iso(now),
        "modificationData": {"type": "CANCELLATION",
                             "amount": _decimal(released, order.currency),
                             "currencyCode": order.currency,
                             "description": payload.get("description")},
        "status": "COMPLETED",
    }
    order.history.append(modification)
    state.record_effect(order, "cancel", released, key)
    answer = model(state, order, ignored)
    answer["modification"] = modification
    return json_reply(200, answer)


def status(state: SandboxState, request: web.Request, body: bytes) -> Reply:
    """GET /payment/status/{transactionId}."""
    if basic_credentials(request) != _credentials():
        return error(401, "UNAUTHORIZED", "Invalid merchantKey or authenticationKey")
    tx = request.match_info["transaction_id"]
    order = state.find("jpmmps", tx)
    if order is None:
        return error(404, "TRANSACTION_NOT_FOUND", f"Transaction {tx} not found")
    return json_reply(200, model(state, order, []))


ROUTES: list[tuple[str, str, Route]] = [
    ("POST", "/jpmmps/payment/capture", Route("jpmmps", "capture", capture)),
    ("POST", "/jpmmps/payment/cancel", Route("jpmmps", "cancel", cancel)),
    ("GET", "/jpmmps/payment/status/{transaction_id}", Route("jpmmps", "status", status)),
]


def _order_id_problem(order_id: str) -> str | None:
    return "JPMMPS transaction ids are at most 36 characters" if len(order_id) > 36 else None


DIALECT = SandboxDialect(
    name="jpmmps",
    title_text="JPMMPS",
    rank=20,
    mount="/jpmmps",
    routes=ROUTES,
    provider_status=payment_status,
    default_window=dt.timedelta(days=5),
    default_currency="EUR",
    credentials={"WATCHDOG_JPMMPS_MERCHANT_KEY": JPMMPS_MERCHANT_KEY,
                 "WATCHDOG_JPMMPS_AUTHENTICATION_KEY": JPMMPS_AUTHENTICATION_KEY},
    order_id_problem=_order_id_problem,
    settle_help="sandbox seconds a JPMMPS capture stays CAPTURE_PENDING",
    demo_orders=(
        ("demo-jpm-0001", 18250, "EUR", dt.timedelta(days=4, hours=6), {}),
        ("demo-jpm-0002", 9900, "EUR", dt.timedelta(days=3, hours=12),
         {"on_deadline": "alert"}),
    ),
    # JPMMPS sets the window per merchant: the second account's is 4 days. At 3d6h old its
    # demo-jpm-0001 is due for its deadline capture now, as the default account's order of
    # that id is at 4d6h with 5 days.
    demo_account=DemoAccount("uk-shop", dt.timedelta(days=4), (
        ("demo-jpm-0001", 7450, "EUR", dt.timedelta(days=3, hours=6), {}),
    )),
)
