"""Our httpx transport over aiohttp: aiohttp's speed, httpx's error tree.

httpx's own transport collapses under our load (measured: see ``make_http_client``),
so the provider client sends through aiohttp. This module is the seam: an
``httpx.AsyncBaseTransport`` like ``httpx.MockTransport``, so production and the
tests go through the same ``client.send`` and the same code after it, and every
aiohttp failure leaves here as an httpx exception, mapped once
(``map_aiohttp_errors``) the way httpx maps httpcore's:

* ``httpx.ConnectError`` / ``httpx.ConnectTimeout`` — no connection was made or
  none was free in time (DNS, refused, TLS handshake, connect or pool-wait
  timeout): nothing was sent;
* ``httpx.ReadTimeout``, ``httpx.ReadError``, ``httpx.RemoteProtocolError`` — a
  connection was made and the request may have been written: no complete answer
  came back (timeout between bytes, reset, server closed early, not HTTP);
* ``httpx.UnsupportedProtocol`` — the URL cannot be sent at all.

Anything aiohttp raises that is not known to be "before the connection" is one of
the "may have been sent" kind: money safety wants the doubt on that side. The
library ``httpx-aiohttp`` maps every ``ClientConnectionError`` (a server that
hung up after reading our request included) to ``ConnectTimeout``, i.e. "never
sent", which is why this transport is ours.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver

CHUNK_SIZE = 64 * 1024


def to_httpx(exc: BaseException) -> httpx.TransportError:
    """The httpx exception that says what ``exc`` (raised by aiohttp) means for the request.

    Order matters: ``ClientConnectorError`` and ``ConnectionTimeoutError`` are
    subclasses of the broader classes checked after them.
    """
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS: before any byte
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connect or wait for a pool slot
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):  # sock_read: no byte for read_timeout
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)  # hung up early, cut body, not HTTP
    return httpx.ReadError(message)  # reset mid-exchange, or anything else: may have been sent


@contextlib.contextmanager
def map_aiohttp_errors() -> Iterator[None]:
    """Re-raise aiohttp's exceptions (and bare socket errors) as httpx's (see ``to_httpx``)."""
    try:
        yield
    except (aiohttp.ClientError, OSError) as exc:
        raise to_httpx(exc) from exc


class AiohttpResponseStream(httpx.AsyncByteStream):
    """The body of one aiohttp response as an httpx stream, errors mapped."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The body in chunks as they arrive."""
        with map_aiohttp_errors():
            async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
                yield chunk

    async def aclose(self) -> None:
        """Give the connection back when the body was read whole, else close it."""
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends over one aiohttp session (HTTP/1.1, keep-alive).

    ``max_connections`` bounds the pool; a request waits for a free connection at
    most its ``pool`` timeout. The session keeps no cookies (``DummyCookieJar``):
    every provider authenticates each request with its own headers, and a cookie
    set by one answer must not ride along on the next request. ``resolver`` is for
    tests (a DNS failure without a DNS server).
    """

    def __init__(
        self, *, max_connections: int = 256, keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None, resolver: AbstractResolver | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, made on first use (aiohttp needs the running event loop)."""
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, keepalive_timeout=self._keepalive_expiry,
            ssl=self._ssl_context, resolver=self._resolver,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the answer's body streams (``AiohttpResponseStream``).

        Timeouts from the request's ``timeout`` extension: ``connect`` bounds the TCP
        connect, ``pool`` the wait for a pooled connection plus the connect, ``read``
        the wait for each chunk of the answer. The whole exchange's budget is the
        caller's (``exchange``).
        """
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        with map_aiohttp_errors():
            response = await session.request(
                request.method, str(request.url), headers=request.headers.multi_items(),
                data=request.content or None, allow_redirects=False,
                auto_decompress=False, compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        return httpx.Response(
            status_code=response.status, headers=response.raw_headers,
            stream=AiohttpResponseStream(response), request=request,
            extensions={"http_version": b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode("latin-1", "replace")},
        )

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
