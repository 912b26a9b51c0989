"""Every rejection has one shape: ``{"errors": [{"field": ..., "reason": ...}]}``.

Our typed errors map to 4xx here; anything else is a bug and stays a logged 500, which
the schemathesis suite proves no request can reach. The body limits are an ASGI
middleware: a declared oversized body is refused before any handler runs, and a body is
counted (size) and timed (deadline) as the handler reads it, after authentication.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchdog.errors import (
    ConflictError,
    DatabaseUnavailable,
    InstructionError,
    NotFoundError,
    TransitionError,
    ValidationError,
)

log = logging.getLogger("watchdog.api")

MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT = 30.0  # seconds for the whole body, from the handler's first read
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


class ErrorResponse(JSONResponse):
    """A JSON error body, ASCII-escaped so any echoed input always encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class ApiError(Exception):
    """A rejection with its status and field errors (raised by handlers and dependencies)."""

    def __init__(self, status: int, errors: Sequence[tuple[str, str]],
                 headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.errors = list(errors)
        self.headers = dict(headers or {})
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.errors))


def error_response(status: int, errors: Sequence[tuple[str, str]],
                   headers: Mapping[str, str] | None = None) -> ErrorResponse:
    """The one error shape."""
    return ErrorResponse(
        {"errors": [{"field": f, "reason": r} for f, r in errors]}, status_code=status,
        headers=dict(headers or {}),
    )


def _field(loc: Sequence[Any], kind: str = "") -> str:
    if kind in ("json_invalid", "json_type"):
        return "body"
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    if kind in ("json_invalid", "json_type"):
        return "is not valid JSON"
    if kind == "model_type":
        return "must be a JSON object"
    return str(err.get("msg", "is invalid"))


def _rejected(request: Request, status: int, errors: Sequence[tuple[str, str]]) -> None:
    log.info("request rejected", extra={
        "action": "api:reject", "status": status, "method": request.method,
        "path": request.url.path, "fields": [f for f, _ in errors],
    })


def install_error_handlers(app: FastAPI) -> None:
    """Map validation failures and our typed errors to the one error shape."""

    def reply(request: Request, status: int, errors: Sequence[tuple[str, str]],
              headers: Mapping[str, str] | None = None) -> ErrorResponse:
        _rejected(request, status, errors)
        return error_response(status, errors, headers)

    async def on_api_error(request: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, ApiError)
        return reply(request, exc.status, exc.errors, exc.headers)

    async def on_request_validation(request: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [(_field(e.get("loc", ()), e.get("type", "")), _reason(e)) for e in exc.errors()]
        return reply(request, 422, errors or [("body", "is invalid")])

    async def on_http(request: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # FastAPI could not parse the body at all
            return reply(request, 422, [("body", "is not valid JSON")])
        reasons = {404: "no such endpoint", 405: "method not allowed"}
        reason = reasons.get(exc.status_code, str(exc.detail))
        return reply(request, exc.status_code, [("request", reason)], exc.headers)

    async def on_validation(request: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, ValidationError)
        return reply(request, 422, [(exc.field, exc.reason)])

    async def on_conflict(request: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, ConflictError)
        errors = [
            (name, f"already registered as {_show(stored)}, given {_show(given)}")
            for name, (stored, given) in exc.differences.items()
        ]
        return reply(request, 409, errors or [("order_id", str(exc))])

    async def on_not_found(request: Request, exc: Exception) -> ErrorResponse:
        return reply(request, 404, [("authorization_id", str(exc))])

    async def on_transition(request: Request, exc: Exception) -> ErrorResponse:
        return reply(request, 409, [("state", str(exc))])

    async def on_instruction(request: Request, exc: Exception) -> ErrorResponse:
        return reply(request, 422, [("amount", str(exc))])

    async def on_unavailable(request: Request, exc: Exception) -> ErrorResponse:
        log.warning("database unavailable", extra={
            "action": "api:db_unavailable", "path": request.url.path,
            "error": type(exc).__name__,
        })
        return error_response(503, [("database", "unavailable; retry shortly")],
                              {"Retry-After": "5"})

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(ConflictError, on_conflict)
    app.add_exception_handler(NotFoundError, on_not_found)
    app.add_exception_handler(TransitionError, on_transition)
    app.add_exception_handler(InstructionError, on_instruction)
    app.add_exception_handler(DatabaseUnavailable, on_unavailable)
    app.add_exception_handler(OperationalError, on_unavailable)


def _show(value: object) -> str:
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return str(iso())
    return repr(value)


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413 and bodies slower than
    ``timeout`` seconds with 408, without waiting on the body before the app runs.

    A declared Content-Length over the limit is refused at once. Otherwise the body is
    counted as the app reads it, and the handlers read it only after authentication: a
    client without a valid token cannot hold a request open by trickling its body.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES,
                 timeout: float = BODY_TIMEOUT) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await self._refuse(send)
                    return
        size = 0
        deadline: float | None = None
        loop = asyncio.get_running_loop()

        async def bounded() -> Message:
            nonlocal size, deadline
            if deadline is None:
                deadline = loop.time() + self.timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                log.info("request body too slow", extra={"action": "api:reject", "status": 408})
                raise ApiError(408, [("body", f"not received within {self.timeout:g}s")],
                               {"Connection": "close"}) from None
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise ApiError(413, [("body", f"larger than {self.limit} bytes")],
                                   {"Connection": "close"})
            return message

        await self.app(scope, bounded, send)

    async def _refuse(self, send: Send) -> None:
        log.info("request body too large", extra={"action": "api:reject", "status": 413})
        response = error_response(413, [("body", f"larger than {self.limit} bytes")])
        await send({"type": "http.response.start", "status": 413,
                    "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
