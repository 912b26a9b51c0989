"""The request pipeline shared by every provider route: latency, faults, apply, log.

A provider handler is a synchronous function ``(state, request, body) -> Reply``
that reads and changes ``SandboxState`` without awaiting, so every effect is
atomic on the event loop.  ``serve`` wraps it with the global latency, the
injected faults and the request log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from watchdog.accounts import account_problem
from watchdog.sandbox.accounts import ACCOUNT, scoped
from watchdog.sandbox.faults import Fault
from watchdog.sandbox.state import SandboxState

JSON = "application/json"
_ERROR_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)


@dataclass(frozen=True, slots=True)
class Reply:
    """A provider answer, before it becomes an aiohttp response."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), JSON, headers or {})


def parse_json(body: bytes) -> Any:
    """Decode a JSON body (decimals kept exact); raise ValueError when it is not JSON."""
    from decimal import Decimal

    return json.loads(body or b"null", parse_float=Decimal)


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """The (user, password) of an ``Authorization: Basic base64(user:password)`` header."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


Handler = Callable[[SandboxState, web.Request, bytes], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    """One provider endpoint."""

    provider: str
    operation: str  # capture | cancel | status
    handler: Handler
    #: For providers that answer "still in flight" (Clearpay 409): the dedupe key of a body.
    inflight_key: Callable[[bytes], str | None] | None = None
    conflict: Callable[[], Reply] | None = None


def to_response(reply: Reply) -> web.Response:
    """Turn a Reply into an aiohttp response."""
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type,
                        headers=reply.headers)


def _fault_reply(fault: Fault) -> Reply:
    if fault.kind == "rate_limit":
        return Reply(429, b"", None, {"Retry-After": str(fault.retry_after)})
    if fault.status == 502:
        return Reply(502, _ERROR_HTML, "text/html")
    return Reply(fault.status, b"", None)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp treats a cancelled handler as a vanished client: nothing is written or logged.
    raise asyncio.CancelledError


async def serve(state: SandboxState, route: Route, request: web.Request) -> web.Response:
    """Run one provider request through latency, faults, the handler and the request log."""
    body = await request.read()
    generation = state.generation
    handler = route.handler

    def apply(st: SandboxState, req: web.Request, data: bytes) -> Reply:
        if st.generation != generation:  # the sandbox was reset while this request waited
            return Reply(503, b"", None)
        return handler(st, req, data)

    extra, fault = state.faults.take(route.provider, route.operation)
    kind = fault.kind if fault is not None else None
    flight: tuple[str, str] | None = None
    if route.inflight_key is not None:
        key = route.inflight_key(body)
        if key is not None:
            flight = (scoped(route.provider), key)
            if flight in state.inflight and route.conflict is not None:
                return _finish(state, route, request, route.conflict(), kind)
            state.inflight.add(flight)
    try:
        delay = state.latency + extra
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is None or fault.kind == "latency":
            reply = apply(state, request, body)
        elif fault.kind in ("error", "rate_limit"):
            reply = _fault_reply(fault)
        elif fault.kind == "drop_before_apply":
            state.record_request(route.provider, route.operation, request.method,
                                 request.path, None, kind)
            _abort(request)
        elif fault.kind == "drop_after_apply":
            apply(state, request, body)
            state.record_request(route.provider, route.operation, request.method,
                                 request.path, None, kind)
            _abort(request)
        else:  # hang
            reply = Reply(504, b"", None)
            if fault.apply == "before":
                reply = apply(state, request, body)
            await asyncio.sleep(fault.seconds)
            if fault.apply == "after":
                reply = apply(state, request, body)
    finally:
        if flight is not None:
            state.inflight.discard(flight)
    return _finish(state, route, request, reply, kind)


def _finish(state: SandboxState, route: Route, request: web.Request, reply: Reply,
            fault: str | None) -> web.Response:
    state.record_request(route.provider, route.operation, request.method, request.path,
                         reply.status, fault)
    return to_response(reply)


def bind(state: SandboxState, route: Route) -> Callable[[web.Request], Any]:
    """An aiohttp handler for ``route`` over ``state``."""

    async def handle(request: web.Request) -> web.Response:
        account = request.match_info.get("account")
        if account is None:
            return await serve(state, route, request)
        if account_problem(account) is not None:
            raise web.HTTPNotFound()
        token = ACCOUNT.set(account)
        try:
            return await serve(state, route, request)
        finally:
            ACCOUNT.reset(token)

    return handle


def idempotent(
    state: SandboxState,
    scope: str,
    key: str | None,
    fingerprint: str,
    window: Any,
    compute: Callable[[], Reply],
    mismatch: Callable[[], Reply],
    replay_headers: Mapping[str, str] | None = None,
) -> Reply:
    """Answer from the stored reply for ``key`` if there is one, else compute and store.

    ``window`` is a ``timedelta`` (or None = kept forever).  A key reused for a
    different request gets ``mismatch()``.  5xx answers are not stored.
    """
    if key is None:
        return compute()
    scope = scoped(scope)  # each merchant account has its own keys
    stored = state.recall(scope, key, window)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            return mismatch()
        headers = dict(stored.headers)
        headers.update(replay_headers or {})
        return Reply(stored.status, stored.body, stored.content_type, headers)
    reply = compute()
    if reply.status < 500:
        state.remember(scope, key, fingerprint, reply.status, reply.body, reply.content_type,
                       tuple(reply.headers.items()))
    return reply
