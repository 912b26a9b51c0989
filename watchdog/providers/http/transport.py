"""The HTTP boundary shared by every adapter: one client, one send, one failure taxonomy.

``exchange`` is the only place that calls the network, always through
``client.send`` (production's ``StatelessClient`` over our ``AiohttpTransport``,
or a test's client over ``httpx.MockTransport``: one path). It turns every
transport failure into an ``Outcome`` once, for all adapters, by httpx's
exception classes alone (the transport maps aiohttp's onto them):

* the connection was never established (connect error, connect timeout, pool
  timeout) -> RETRYABLE: nothing can have reached the provider;
* the request may have been written and no complete answer came back (read or
  write timeout, connection dropped, protocol error, anything else) -> UNKNOWN for
  capture and cancel (money may have moved), RETRYABLE for reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import ProviderSettings
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome, ProviderResult, ProviderSnapshot
from watchdog.providers.http.aiohttp_transport import AiohttpTransport
from watchdog.providers.limits import SEND_GUARD
from watchdog.secrets import MASK, Secret, redact

log = logging.getLogger("watchdog.providers")

RAW_TEXT_LIMIT = 2048
# An answer larger than this is not read further: a provider's JSON answer is a few KiB,
# and a hostile or broken one must not fill the daemon's memory.
MAX_ANSWER_BYTES = 1024 * 1024
REQUEST_ID_HEADERS = (
    "x-request-id", "request-id", "x-correlation-id", "cf-ray", "x-amzn-requestid",
)
MONEY_OPERATIONS = frozenset({"capture", "cancel"})


def make_http_client(
    max_connections: int = 256, *, transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The provider client: a ``StatelessClient`` on our aiohttp transport by default.

    httpx's default transport collapses under load; aiohttp does not (measured:
    ``bench/capture_throughput``). ``transport`` replaces it — a test passes an
    ``httpx.MockTransport`` and gets the production client around it. Adapters set
    their own per-request timeouts; redirects are never followed (a payment API
    that redirects is misconfigured, and a redirected POST is a guess).
    """
    if transport is None:
        transport = AiohttpTransport(max_connections=max_connections)
    return StatelessClient(transport=transport)


class NoCookies(httpx.Cookies):
    """A jar that keeps nothing: no provider cookie is stored or sent back."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore Set-Cookie."""

    def set_cookie_header(self, request: httpx.Request) -> None:
        """Add no Cookie header."""


class StatelessClient(httpx.AsyncClient):
    """An httpx client without a cookie jar, auth, hooks or redirects: a request goes
    straight to the transport.

    Every provider authenticates each request with its own headers; a cookie set by one
    provider's answer must not ride along on the next request, and parsing every answer
    for cookies was a tenth of the client's CPU time per call (measured). With nothing
    of that to do, ``AsyncClient.send``'s layers (auth flow, redirect loop, hooks,
    timers) were a fifth of a call's CPU time (measured), so ``send`` here is the
    transport call itself; a MockTransport test runs this very method.
    """

    _no_cookies = NoCookies()

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        super().__init__(transport=transport, follow_redirects=False)
        self.transport = transport

    @property
    def cookies(self) -> httpx.Cookies:
        """Always empty."""
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("the provider client keeps no cookies")

    async def send(
        self, request: httpx.Request, *, stream: bool = False,
        auth: httpx._types.AuthTypes | httpx._client.UseClientDefault | None = (
            httpx.USE_CLIENT_DEFAULT),
        follow_redirects: bool | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        """Hand ``request`` to the transport; read the body unless ``stream``.

        ``auth`` and ``follow_redirects`` must be left unset: this client has neither.
        """
        if auth not in (None, httpx.USE_CLIENT_DEFAULT) or follow_redirects is True:
            raise ValueError("the provider client sends without auth and never redirects")
        response = await self.transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response


class AnswerTooLarge(Exception):
    """The provider's answer exceeded MAX_ANSWER_BYTES (it was not read further)."""


def total_timeout(timeout: httpx.Timeout) -> float:
    """The whole exchange's budget: connecting, then one read timeout's worth of answer.

    The per-read timeout alone restarts with every byte, so a provider trickling its
    answer could hold a capture open indefinitely.
    """
    return float((timeout.connect or 0.0) + (timeout.pool or 0.0) + (timeout.read or 0.0))


def timeout_for(settings: ProviderSettings) -> httpx.Timeout:
    """Explicit per-request timeouts: connect (also pool wait) and read (also write)."""
    return httpx.Timeout(
        connect=settings.connect_timeout, read=settings.read_timeout,
        write=settings.read_timeout, pool=settings.connect_timeout,
    )


# --------------------------------------------------------------------------- redaction


def redact_value(value: Any, secrets: Iterable[Secret | str | None]) -> Any:
    """A parsed JSON value with every secret masked (strings and numbers); the value
    itself when no secret occurs in it (the usual case, checked on its JSON text)."""
    secrets = tuple(secrets)
    if not _may_contain(value, secrets):
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return MASK if redact(str(value), secrets) != str(value) else value
    if isinstance(value, Mapping):
        return {redact(str(k), secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    return redact(str(value), secrets)


def _may_contain(value: Any, secrets: tuple[Secret | str | None, ...]) -> bool:
    revealed = [s.reveal() if isinstance(s, Secret) else s for s in secrets]
    plain = [s for s in revealed if s and len(s) >= 3]
    if not plain:
        return False
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return True
    # A secret with characters JSON escapes might hide in the text: take the long way.
    return any(s in text or json.dumps(s, ensure_ascii=False)[1:-1] != s for s in plain)


# --------------------------------------------------------------------------- Retry-After


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from Retry-After (delta-seconds or HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


# --------------------------------------------------------------------------- the exchange


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling, for what, and which secrets must never leave in a result."""

    provider: ProviderName
    operation: str  # "status" | "capture" | "cancel" | "check"
    secrets: tuple[Secret | str, ...]
    clock: Clock = SYSTEM_CLOCK

    @property
    def moves_money(self) -> bool:
        """Capture and cancel may move money; status and check never do."""
        return self.operation in MONEY_OPERATIONS

    def result(self, outcome: Outcome, message: str, **fields: Any) -> ProviderResult:
        """Build a ProviderResult with message and raw redacted; log it (redacted) once."""
        raw = fields.pop("raw", None)
        provider_code = fields.pop("provider_code", None)
        snapshot = fields.get("snapshot")
        if isinstance(snapshot, ProviderSnapshot):
            fields["snapshot"] = replace(snapshot, raw_state=redact(snapshot.raw_state,
                                                                    self.secrets))
        if isinstance(fields.get("request_id"), str):
            fields["request_id"] = redact(fields["request_id"], self.secrets)
        res = ProviderResult(
            outcome=outcome, operation=self.operation, provider=self.provider,
            message=redact(message, self.secrets),
            provider_code=(
                None if provider_code is None else redact(str(provider_code), self.secrets)
            ),
            raw=redact_value(raw, self.secrets), **fields,
        )
        log.info(
            "provider call finished: %s", res.describe(),
            extra={"action": f"provider.{self.operation}", "provider": str(self.provider),
                   "outcome": str(outcome)},
        )
        return res

    def answered(
        self, outcome: Outcome, message: str, answer: Answer, **fields: Any
    ) -> ProviderResult:
        """A result carrying the answer as evidence: its HTTP status, request id and raw body.

        ``request_id`` in ``fields`` overrides the header's (a provider may name its
        own in the body); every other field passes through to ``result``.
        """
        fields.setdefault("request_id", answer.request_id)
        return self.result(outcome, message, http_status=answer.status, raw=answer.raw(),
                           **fields)


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete HTTP answer: the provider said something (maybe nonsense)."""

    status: int
    headers: httpx.Headers
    text: str
    data: Any  # parsed JSON, or None when the body is not JSON
    is_json: bool
    request_id: str | None
    retry_after: float | None

    def raw(self) -> Any:
        """Parsed JSON, or the first ~2 KB of text (unredacted: CallContext.result redacts)."""
        if self.is_json:
            return self.data
        return self.text[:RAW_TEXT_LIMIT]

    @property
    def ok(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status < 300


def _request_id_from(headers: httpx.Headers) -> str | None:
    """The provider's request id from the first of the usual headers that carries one."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if isinstance(value, str) and value:
            return value
    return None


_NEVER_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError,
)


def never_connected(exc: BaseException) -> bool:
    """True when the request certainly never reached the provider (httpx's classes say so).

    Every other failure, whatever its class, may have been sent.
    """
    return isinstance(exc, _NEVER_SENT)


def transport_failure(ctx: CallContext, exc: BaseException) -> ProviderResult:
    """The one translation of a network failure into an Outcome."""
    kind = type(exc).__name__
    detail = str(exc) or kind
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ctx.result(
            Outcome.REJECTED, f"the base URL is unusable ({kind}: {detail}); fix the "
            f"configuration of providers.{ctx.provider}", raw={"exception": kind},
        )
    if never_connected(exc):
        return ctx.result(
            Outcome.RETRYABLE, f"could not connect ({kind}: {detail}); nothing was sent, "
            "retry with the same key", raw={"exception": kind},
        )
    if ctx.moves_money:
        return ctx.result(
            Outcome.UNKNOWN, f"no answer after the request may have reached the provider "
            f"({kind}: {detail}); money may have moved: confirm with a status read or "
            "replay with the same key", raw={"exception": kind},
        )
    return ctx.result(
        Outcome.RETRYABLE, f"no usable answer ({kind}: {detail}); a read moves no money, "
        "retry", raw={"exception": kind},
    )


async def _send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``client.send`` streaming, then the body read here, at most ``MAX_ANSWER_BYTES``.

    The same for every client: production's and a test's go through ``send`` and
    their transport, and the size limit holds for both.
    """
    response = await client.send(request, stream=True)
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise AnswerTooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise AnswerTooLarge
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what aread() would have set
    finally:
        await response.aclose()
    return response


async def exchange(
    client: httpx.AsyncClient, request: httpx.Request, ctx: CallContext
) -> Answer | ProviderResult:
    """Send ``request``; return the Answer, or a ProviderResult when no complete answer came."""
    budget = _budget(request, ctx)
    if budget <= 0:
        return ctx.result(Outcome.RETRYABLE, "not sent: the authorization's guard instant has "
                          "passed; nothing was sent", raw={"exception": "GuardReached"})
    try:
        async with asyncio.timeout(budget) as scope:
            response = await _send(client, request)
    except AnswerTooLarge:
        return _too_large(ctx)
    except TimeoutError as exc:
        if scope.expired():
            return _out_of_time(ctx, budget)
        return transport_failure(ctx, exc)
    except (httpx.RequestError, OSError) as exc:  # OSError: a transport that maps nothing
        return transport_failure(ctx, exc)
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = response.content.decode("utf-8", errors="replace")
    data: Any = None
    is_json = False
    if text.strip():
        try:
            data = json.loads(text)
            is_json = True
        except ValueError:
            pass
    return Answer(
        status=response.status_code, headers=response.headers, text=text, data=data,
        is_json=is_json, request_id=_request_id_from(response.headers),
        retry_after=parse_retry_after(response.headers.get("retry-after"), ctx.clock.now()),
    )


def _budget(request: httpx.Request, ctx: CallContext) -> float:
    """Seconds this exchange may take: its total timeout, cut at the guard instant of the
    capture or cancel being sent (``SEND_GUARD``, measured on the scan's clock), so no
    exchange outlives the guard however slowly bytes trickle."""
    timeout = request.extensions.get("timeout")
    budget = total_timeout(httpx.Timeout(**timeout)) if isinstance(timeout, dict) else 60.0
    guard = SEND_GUARD.get()
    if guard is not None:
        budget = min(budget, guard())
    return budget


def _out_of_time(ctx: CallContext, budget: float) -> ProviderResult:
    if ctx.moves_money:
        return ctx.result(
            Outcome.UNKNOWN, f"no complete answer within the exchange's deadline ({budget:.1f}s);"
            " money may have moved: confirm with a status read or replay with the same key",
            raw={"exception": "ExchangeDeadline"})
    return ctx.result(
        Outcome.RETRYABLE, f"no complete answer within the exchange's deadline ({budget:.1f}s);"
        " a read moves no money, retry", raw={"exception": "ExchangeDeadline"})


def _too_large(ctx: CallContext) -> ProviderResult:
    outcome = Outcome.UNKNOWN if ctx.moves_money else Outcome.RETRYABLE
    tail = ("money may have moved: confirm with a status read" if ctx.moves_money
            else "a read moves no money, retry")
    return ctx.result(outcome, f"the answer exceeded {MAX_ANSWER_BYTES} bytes and was not "
                      f"read; {tail}", raw={"exception": "AnswerTooLarge"})


def generic_http_failure(
    ctx: CallContext, answer: Answer, *, code: str | None = None, text: str = "",
    request_id: str | None = None,
) -> ProviderResult | None:
    """Classify what every provider means the same way: 401/403, 408, 429 and 5xx.

    Returns None when the status is provider-specific (the adapter decides).
    """
    said = f": {text}" if text else ""
    common: dict[str, Any] = {"provider_code": code, "request_id": request_id or answer.request_id}
    if answer.status in (401, 403):
        return ctx.answered(
            Outcome.REJECTED, f"bad credentials (HTTP {answer.status}){said}; check the "
            f"{ctx.provider} credentials", answer, **common,
        )
    if answer.status == 429:
        return ctx.answered(
            Outcome.RETRYABLE, f"rate limited{said}; retry later with the same key", answer,
            retry_after=answer.retry_after, **common,
        )
    if answer.status == 408 or answer.status >= 500:
        return ctx.answered(
            Outcome.RETRYABLE, f"provider error HTTP {answer.status}{said}; a replay with the "
            "same key is safe", answer, retry_after=answer.retry_after, **common,
        )
    return None


def malformed(ctx: CallContext, answer: Answer, why: str, **fields: Any) -> ProviderResult:
    """A 2xx we cannot read: UNKNOWN for money calls (it may have worked), RETRYABLE for reads."""
    outcome = Outcome.UNKNOWN if ctx.moves_money else Outcome.RETRYABLE
    tail = ("money may have moved: confirm with a status read" if ctx.moves_money
            else "a read moves no money, retry")
    return ctx.answered(outcome, f"unusable answer (HTTP {answer.status}): {why}; {tail}",
                        answer, **fields)

