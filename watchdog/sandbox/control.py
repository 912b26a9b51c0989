"""The ``/_sandbox`` control API (JSON, no auth) and the validation it shares with the Python API.

Bad input answers 422 ``{"error": "...", "field": "<name>"}``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from watchdog.accounts import DEFAULT_ACCOUNT, account_problem
from watchdog.money import CURRENCY_EXPONENTS
from watchdog.sandbox.dialect import dialect, names
from watchdog.sandbox.faults import ERROR_STATUSES, FAULT_KINDS, HANG_APPLY, Fault
from watchdog.sandbox.state import (
    OPERATIONS,
    ORDER_STATES,
    Order,
    SandboxState,
    iso,
    order_key,
)


class ControlError(ValueError):
    """A control request field is invalid."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DuplicateOrderError(ControlError):
    """The order id is already taken at that provider."""


def _instant(field: str, value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        instant = value
    elif isinstance(value, str):
        try:
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ControlError(field, "must be an ISO 8601 instant with an offset") from None
    else:
        raise ControlError(field, "must be an ISO 8601 instant with an offset")
    if instant.tzinfo is None:
        raise ControlError(field, "must carry a UTC offset (e.g. 2025-01-01T00:00:00Z)")
    return instant.astimezone(dt.UTC)


def _int(field: str, value: Any, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ControlError(field, f"must be an integer >= {minimum}")
    return value


def _number(field: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ControlError(field, "must be a number >= 0")
    return float(value)


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ControlError(field, f"must be one of {', '.join(choices)}")
    return str(value)


def provider_status(state: SandboxState, order: Order) -> str:
    """The status name the provider's own API shows for ``order``."""
    return dialect(order.provider).provider_status(state, order)


def snapshot(state: SandboxState, order: Order) -> dict[str, Any]:
    """An order as the control API shows it."""
    return {
        "provider": order.provider, "account": order.account,
        "order_id": order.order_id, "amount": order.amount,
        "currency": order.currency, "state": order.state,
        "authorized_at": iso(order.authorized_at), "expires_at": iso(order.expires_at),
        "captured": order.captured, "released": order.released, "refunded": order.refunded,
        "open_amount": order.open_amount, "capture_count": order.capture_count,
        "closed": order.closed, "canceled": order.canceled, "lapsed": order.lapsed,
        "provider_status": provider_status(state, order),
        "pending": order.pending.operation if order.pending is not None else None,
    }


def create_order(state: SandboxState, payload: Any) -> Order:
    """Validate and store an order described by a control-API payload."""
    if not isinstance(payload, dict):
        raise ControlError("body", "must be a JSON object")
    provider = _choice("provider", payload.get("provider"), names())
    order_id = payload.get("order_id")
    if not isinstance(order_id, str) or not order_id or "/" in order_id:
        raise ControlError("order_id", "must be a non-empty string without '/'")
    problem = dialect(provider).order_id_problem(order_id)
    if problem is not None:
        raise ControlError("order_id", problem)
    amount = _int("amount", payload.get("amount"), minimum=1)
    currency = payload.get("currency")
    if currency not in CURRENCY_EXPONENTS:
        raise ControlError("currency", "must be a supported ISO 4217 code")
    authorized_at = _instant("authorized_at", payload.get("authorized_at"))
    expires_at = _instant("expires_at", payload.get("expires_at"))
    if authorized_at and expires_at and expires_at <= authorized_at:
        raise ControlError("expires_at", "must be after authorized_at")
    order_state = _choice("state", payload.get("state", "authorized"), ORDER_STATES)
    settle = payload.get("settle_seconds")
    settle_seconds = None if settle is None else _number("settle_seconds", settle)
    outcome = _choice("settle_outcome", payload.get("settle_outcome", "succeed"),
                      ("succeed", "fail"))
    account = payload.get("account") or DEFAULT_ACCOUNT
    if account_problem(account) is not None:
        raise ControlError("account", str(account_problem(account)))
    try:
        order = state.create_order(provider, order_id, amount, str(currency),
                                   authorized_at=authorized_at, expires_at=expires_at,
                                   state=order_state,  # type: ignore[arg-type]
                                   account=account)
    except KeyError:
        raise DuplicateOrderError(
            "order_id", f"{provider} order {order_id!r} already exists") from None
    order.settle_seconds = settle_seconds
    order.settle_fails = outcome == "fail"
    return order


def add_fault(state: SandboxState, payload: Any) -> Fault:
    """Validate and register a fault described by a control-API payload."""
    if not isinstance(payload, dict):
        raise ControlError("body", "must be a JSON object")
    provider = _choice("provider", payload.get("provider", "*"), (*names(), "*"))
    operation = _choice("operation", payload.get("operation", "*"), (*OPERATIONS, "*"))
    kind = _choice("kind", payload.get("kind"), FAULT_KINDS)
    count = _int("count", payload.get("count", 1), minimum=1)
    seconds = _number("seconds", payload.get("seconds", 30.0 if kind == "hang" else 0.0))
    if kind == "latency" and "seconds" not in payload:
        raise ControlError("seconds", "is required for a latency fault")
    status = payload.get("status", 503)
    if status not in ERROR_STATUSES:
        raise ControlError("status", "must be one of 500, 502, 503")
    retry_after = _int("retry_after", payload.get("retry_after", 1), minimum=0)
    apply = _choice("apply", payload.get("apply", "after"), HANG_APPLY)
    return state.faults.add(provider, operation, kind, count, seconds=seconds, status=status,
                            retry_after=retry_after, apply=apply)


def set_clock(state: SandboxState, payload: Any) -> None:
    """Apply ``{now: ISO, freeze?: bool}`` or ``{advance_seconds: N}``."""
    if not isinstance(payload, dict):
        raise ControlError("body", "must be a JSON object")
    has_now, has_advance = "now" in payload, "advance_seconds" in payload
    if has_now == has_advance:
        raise ControlError("now", "give exactly one of now, advance_seconds")
    freeze = payload.get("freeze", state.clock.frozen)
    if not isinstance(freeze, bool):
        raise ControlError("freeze", "must be true or false")
    if has_now:
        instant = _instant("now", payload["now"])
        if instant is None:
            raise ControlError("now", "must be an ISO 8601 instant with an offset")
        state.clock.set(instant, freeze=freeze)
    else:
        value = payload["advance_seconds"]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ControlError("advance_seconds", "must be a number of seconds")
        state.clock.advance(dt.timedelta(seconds=value))


def _ok(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode(),
                        content_type="application/json")


def _invalid(exc: ControlError) -> web.Response:
    return _ok({"error": exc.message, "field": exc.field}, 422)


async def _json(request: web.Request) -> Any:
    body = await request.read()
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError:
        raise ControlError("body", "is not valid JSON") from None


def _filtered(rows: Any, request: web.Request) -> list[dict[str, Any]]:
    provider = request.query.get("provider")
    order_id = request.query.get("order_id")
    return [r for r in rows if (provider is None or r.get("provider") == provider)
            and (order_id is None or r.get("order_id") == order_id)]


def routes(state: SandboxState) -> list[tuple[str, str, Callable[[web.Request],
                                                                   Awaitable[web.Response]]]]:
    """The control endpoints bound to ``state``."""

    async def post_order(request: web.Request) -> web.Response:
        try:
            order = create_order(state, await _json(request))
        except DuplicateOrderError as exc:
            return _ok({"error": exc.message, "field": exc.field}, 409)
        except ControlError as exc:
            return _invalid(exc)
        return _ok(snapshot(state, order), 201)

    async def get_order(request: web.Request) -> web.Response:
        order = state.orders.get(order_key(
            request.match_info["provider"], request.match_info["order_id"],
            request.query.get("account", DEFAULT_ACCOUNT)))
        if order is None:
            return _ok({"error": "no such order"}, 404)
        state.refresh(order)
        return _ok(snapshot(state, order))

    async def post_fault(request: web.Request) -> web.Response:
        try:
            fault = add_fault(state, await _json(request))
        except ControlError as exc:
            return _invalid(exc)
        return _ok(fault.as_json(), 201)

    async def get_faults(request: web.Request) -> web.Response:
        return _ok({"faults": [f.as_json() for f in state.faults.active()]})

    async def delete_faults(request: web.Request) -> web.Response:
        return _ok({"cleared": state.faults.clear()})

    async def get_ledger(request: web.Request) -> web.Response:
        return _ok({"entries": _filtered(state.ledger, request)})

    async def get_requests(request: web.Request) -> web.Response:
        return _ok({"entries": _filtered(state.requests, request)})

    async def get_clock(request: web.Request) -> web.Response:
        return _ok({"now": iso(state.clock.now()), "frozen": state.clock.frozen})

    async def post_clock(request: web.Request) -> web.Response:
        try:
            set_clock(state, await _json(request))
        except ControlError as exc:
            return _invalid(exc)
        return await get_clock(request)

    async def post_reset(request: web.Request) -> web.Response:
        state.reset()
        return _ok({"ok": True})

    async def get_health(request: web.Request) -> web.Response:
        return _ok({"status": "ok", "now": iso(state.clock.now()), "orders": len(state.orders)})

    return [
        ("POST", "/_sandbox/orders", post_order),
        ("GET", "/_sandbox/orders/{provider}/{order_id}", get_order),
        ("POST", "/_sandbox/faults", post_fault),
        ("GET", "/_sandbox/faults", get_faults),
        ("DELETE", "/_sandbox/faults", delete_faults),
        ("GET", "/_sandbox/ledger", get_ledger),
        ("GET", "/_sandbox/requests", get_requests),
        ("GET", "/_sandbox/clock", get_clock),
        ("POST", "/_sandbox/clock", post_clock),
        ("POST", "/_sandbox/reset", post_reset),
        ("GET", "/_sandbox/health", get_health),
    ]
