"""Every way the network can fail maps to the right httpx class and the right Outcome.

Over real loopback sockets: our aiohttp transport raises the httpx class that says
whether the request can have been sent (``ConnectError`` / ``ConnectTimeout``:
never; ``ReadTimeout`` / ``ReadError`` / ``RemoteProtocolError``: maybe), the same
class httpx's own transport raises for the same failure, and every adapter turns
"never sent" into RETRYABLE and "maybe sent" into UNKNOWN for capture and cancel.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.support.providers import ALL, CLASSES, adapter_with, raising, ref, run, settings_for
from tests.support.rawserver import misbehaving_server, unaccepting_port
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome
from watchdog.providers.http import make_http_client, never_connected
from watchdog.providers.http.aiohttp_transport import AiohttpTransport, to_httpx

TRANSPORTS = ("default", "aiohttp")
LOST_ANSWER = ("close_before_reply", "hang", "partial_headers", "partial_body", "garbage",
               "reset", "reset_unread")
TIMEOUTS = {"connect": 0.3, "read": 0.3, "write": 0.3, "pool": 0.3}
# What our transport raises when the server, after accepting the connection, ...
MAYBE_SENT = {
    "close_before_reply": httpx.RemoteProtocolError,  # ... hangs up without an answer
    "hang": httpx.ReadTimeout,  # ... says nothing for read_timeout
    "partial_headers": httpx.RemoteProtocolError,  # ... hangs up inside the headers
    "partial_body": httpx.RemoteProtocolError,  # ... hangs up inside the body
    "garbage": httpx.RemoteProtocolError,  # ... answers something that is not HTTP
    "reset": httpx.ReadError,  # ... resets after reading the request
    "reset_unread": httpx.ReadError,  # ... resets before reading it (we cannot tell)
    "huge_headers": httpx.RemoteProtocolError,  # ... sends a header line past aiohttp's limit
}


class NoDns(AbstractResolver):
    """A resolver that knows no name, as when DNS answers NXDOMAIN (no network needed)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, f"Name or service not known: {host}")

    async def close(self) -> None:
        pass


async def _raised(client: httpx.AsyncClient, url: str) -> BaseException:
    """What ``client.send`` raises for a capture-like POST to ``url``."""
    request = httpx.Request("POST", url, content=b'{"amount":1}', extensions={
        "timeout": TIMEOUTS})
    with pytest.raises(httpx.TransportError) as caught:
        await client.send(request)
    return caught.value


def _client(kind: str) -> httpx.AsyncClient:
    return make_http_client() if kind == "aiohttp" else httpx.AsyncClient()


async def _call(adapter: Any, operation: str) -> Any:
    if operation == "capture":
        return await adapter.capture(ref(), 1000, "key-1", final=True)
    if operation == "cancel":
        return await adapter.cancel(ref(), "key-1")
    if operation == "check":
        return await adapter.check()
    return await adapter.status(ref())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("mode", LOST_ANSWER)
@pytest.mark.parametrize("provider", ALL)
def test_lost_answer_is_unknown_for_money_and_retryable_for_reads(
    kind: str, mode: str, provider: ProviderName
) -> None:
    async def scenario() -> dict[str, Any]:
        results = {}
        async with misbehaving_server(mode) as base, _client(kind) as client:
            settings = settings_for(provider, base_url=base, read_timeout=0.3)
            adapter = CLASSES[provider](settings, client)
            for operation in ("capture", "cancel", "status"):
                results[operation] = await _call(adapter, operation)
        return results

    results = run(scenario())
    assert results["capture"].outcome is Outcome.UNKNOWN, results["capture"].describe()
    assert results["cancel"].outcome is Outcome.UNKNOWN, results["cancel"].describe()
    assert results["status"].outcome is Outcome.RETRYABLE, results["status"].describe()
    for result in results.values():
        assert result.raw is not None
        assert result.money_moved is not True


@pytest.mark.parametrize("mode", sorted(MAYBE_SENT))
def test_aiohttp_failure_after_connecting_is_maybe_sent(mode: str) -> None:
    async def scenario() -> tuple[BaseException, BaseException | None]:
        async with misbehaving_server(mode) as base, make_http_client() as client:
            ours = await _raised(client, base + "/capture")
        theirs = None
        if mode != "huge_headers":  # httpx's own transport accepts a 64 KiB header line
            async with misbehaving_server(mode) as base, httpx.AsyncClient() as client:
                theirs = await _raised(client, base + "/capture")
        return ours, theirs

    ours, theirs = run(scenario())
    assert type(ours) is MAYBE_SENT[mode], repr(ours)
    assert not never_connected(ours)
    if theirs is not None:
        assert type(theirs) is type(ours)  # the same answer as httpx's own transport


def test_aiohttp_connection_refused_is_never_sent() -> None:
    async def scenario() -> BaseException:
        async with make_http_client() as client:
            return await _raised(client, f"http://127.0.0.1:{_free_port()}/capture")

    exc = run(scenario())
    assert type(exc) is httpx.ConnectError, repr(exc)
    assert never_connected(exc)


def test_aiohttp_dns_failure_is_never_sent() -> None:
    async def scenario() -> BaseException:
        async with make_http_client(transport=AiohttpTransport(resolver=NoDns())) as client:
            return await _raised(client, "http://provider.invalid/capture")

    exc = run(scenario())
    assert type(exc) is httpx.ConnectError, repr(exc)
    assert "provider.invalid" in str(exc)
    assert never_connected(exc)


def test_aiohttp_connect_timeout_is_never_sent() -> None:
    async def scenario() -> BaseException:
        with unaccepting_port() as port:
            async with make_http_client() as client:
                return await _raised(client, f"http://127.0.0.1:{port}/capture")

    exc = run(scenario())
    assert type(exc) is httpx.ConnectTimeout, repr(exc)
    assert never_connected(exc)


def test_aiohttp_pool_wait_timeout_is_never_sent() -> None:
    """With the only connection busy, the second request times out waiting: never sent."""
    seen: list[int] = []

    async def scenario() -> BaseException:
        accepted = asyncio.Event()

        def on_accept() -> None:
            seen.append(1)
            accepted.set()

        async with misbehaving_server("hang", on_accept) as base, \
                make_http_client(max_connections=1) as client:
            request = httpx.Request("POST", base + "/first", content=b"{}", extensions={
                "timeout": {**TIMEOUTS, "read": 5.0}})
            first = asyncio.create_task(client.send(request))
            await accepted.wait()
            exc = await _raised(client, base + "/second")
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            return exc

    exc = run(scenario())
    assert type(exc) is httpx.ConnectTimeout, repr(exc)
    assert never_connected(exc)
    assert len(seen) == 1  # the server never saw a second connection


@pytest.mark.parametrize(
    ("raised", "mapped"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ServerTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientConnectionResetError("closing transport"), httpx.ReadError),
        (aiohttp.ClientConnectionError("closed"), httpx.ReadError),
        (aiohttp.ClientError("unknown"), httpx.ReadError),
        (ConnectionResetError(104, "reset"), httpx.ReadError),
        (aiohttp.InvalidURL("x"), httpx.UnsupportedProtocol),
        (aiohttp.NonHttpUrlClientError("ftp://x"), httpx.UnsupportedProtocol),
    ],
)
def test_to_httpx_puts_every_doubt_on_the_maybe_sent_side(
    raised: BaseException, mapped: type[httpx.TransportError]
) -> None:
    exc = to_httpx(raised)
    assert type(exc) is mapped
    assert never_connected(exc) is (mapped is httpx.ConnectTimeout)


@pytest.mark.parametrize("where", ["dns", "connect_timeout"])
@pytest.mark.parametrize("provider", ALL)
def test_never_connected_is_retryable_everywhere(where: str, provider: ProviderName) -> None:
    async def scenario() -> list[Any]:
        with unaccepting_port() as port:
            if where == "dns":
                base, transport = "http://provider.invalid", AiohttpTransport(resolver=NoDns())
            else:
                base, transport = f"http://127.0.0.1:{port}", AiohttpTransport()
            async with make_http_client(transport=transport) as client:
                settings = settings_for(provider, base_url=base, connect_timeout=0.2)
                adapter = CLASSES[provider](settings, client)
                return [await _call(adapter, op) for op in ("capture", "cancel", "status")]

    for result in run(scenario()):
        assert result.outcome is Outcome.RETRYABLE, result.describe()
        assert "could not connect" in result.message


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("provider", ALL)
def test_connection_refused_is_retryable_everywhere(kind: str, provider: ProviderName) -> None:
    base = f"http://127.0.0.1:{_free_port()}"

    async def scenario() -> list[Any]:
        async with _client(kind) as client:
            adapter = CLASSES[provider](settings_for(provider, base_url=base), client)
            return [await _call(adapter, op) for op in ("capture", "cancel", "status", "check")]

    for result in run(scenario()):
        assert result.outcome is Outcome.RETRYABLE, result.describe()
        assert "could not connect" in result.message


@pytest.mark.parametrize(
    ("exc", "money", "read"),
    [
        (httpx.ConnectError("refused"), Outcome.RETRYABLE, Outcome.RETRYABLE),
        (httpx.ConnectTimeout("slow"), Outcome.RETRYABLE, Outcome.RETRYABLE),
        (httpx.PoolTimeout("pool"), Outcome.RETRYABLE, Outcome.RETRYABLE),
        (httpx.ReadTimeout("slow"), Outcome.UNKNOWN, Outcome.RETRYABLE),
        (httpx.WriteTimeout("slow"), Outcome.UNKNOWN, Outcome.RETRYABLE),
        (httpx.WriteError("broken"), Outcome.UNKNOWN, Outcome.RETRYABLE),
        (httpx.ReadError("reset"), Outcome.UNKNOWN, Outcome.RETRYABLE),
        (httpx.RemoteProtocolError("dropped"), Outcome.UNKNOWN, Outcome.RETRYABLE),
        (httpx.UnsupportedProtocol("ftp"), Outcome.REJECTED, Outcome.REJECTED),
    ],
)
@pytest.mark.parametrize("provider", ALL)
def test_mock_transport_exceptions(
    provider: ProviderName, exc: Exception, money: Outcome, read: Outcome
) -> None:
    async def scenario() -> list[Any]:
        adapter, _, client = adapter_with(provider, raising(exc))
        async with client:
            return [await _call(adapter, op) for op in ("capture", "cancel", "status")]

    capture, cancel, status = run(scenario())
    assert capture.outcome is money
    assert cancel.outcome is money
    assert status.outcome is read
    assert capture.raw == {"exception": type(exc).__name__}
