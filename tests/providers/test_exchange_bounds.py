"""Every provider exchange is bounded in time and size (issue 17).

A provider trickling one byte at a time never trips the per-read timeout; only a total
deadline per exchange (cut at the authorization's guard instant) ends it. An answer
larger than MAX_ANSWER_BYTES is not read. Both transports, every provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.providers import ALL, CLASSES, ref, run, settings_for
from watchdog.config import parse_config
from watchdog.domain import ProviderName
from watchdog.errors import ConfigError
from watchdog.providers.base import Outcome
from watchdog.providers.http import make_http_client
from watchdog.providers.http.transport import MAX_ANSWER_BYTES
from watchdog.providers.limits import SEND_GUARD

TRANSPORTS = ("default", "aiohttp")
pytestmark = pytest.mark.wallclock


def _client(kind: str) -> httpx.AsyncClient:
    return make_http_client() if kind == "aiohttp" else httpx.AsyncClient()


@contextlib.asynccontextmanager
async def answering(mode: str) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server: ``trickle`` (a byte every 50 ms), ``huge`` (a declared 2 MiB
    body) or ``huge_chunked`` (2 MiB, chunked, no length). Yields its URL and a counter of
    requests it received."""
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(1)
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":", 1)[1]))
            if mode == "trickle":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 4000\r\n\r\n")
                for _ in range(4000):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            elif mode == "huge":
                size = 2 * MAX_ANSWER_BYTES
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % size)
                writer.write(b" " * size)
                await writer.drain()
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                chunk = b" " * 65536
                for _ in range(2 * MAX_ANSWER_BYTES // len(chunk) + 1):
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


async def _call(adapter: Any, operation: str) -> Any:
    if operation == "capture":
        return await adapter.capture(ref(), 1000, "key-1", final=True)
    return await adapter.status(ref())


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("provider", ALL)
def test_a_trickling_answer_ends_at_the_total_deadline(kind: str, provider: ProviderName) -> None:
    async def scenario() -> tuple[Any, Any, float]:
        async with answering("trickle") as (base, _), _client(kind) as client:
            settings = settings_for(provider, base_url=base, connect_timeout=0.2,
                                    read_timeout=0.3)
            adapter = CLASSES[provider](settings, client)
            started = time.monotonic()
            capture = await _call(adapter, "capture")
            status = await _call(adapter, "status")
            return capture, status, time.monotonic() - started

    capture, status, elapsed = run(scenario())
    assert capture.outcome is Outcome.UNKNOWN, capture.describe()
    assert status.outcome is Outcome.RETRYABLE, status.describe()
    assert "deadline" in capture.message
    assert elapsed < 3.0  # two exchanges of at most 0.2 + 0.2 + 0.3 s each


@pytest.mark.parametrize("provider", ALL)
def test_no_exchange_outlives_the_guard_instant(provider: ProviderName) -> None:
    async def scenario() -> tuple[Any, Any, float, int]:
        async with answering("trickle") as (base, seen), make_http_client() as client:
            settings = settings_for(provider, base_url=base, connect_timeout=5, read_timeout=30)
            adapter = CLASSES[provider](settings, client)
            started = time.monotonic()
            token = SEND_GUARD.set(lambda: 0.4)  # seconds left before the guard
            try:
                capture = await _call(adapter, "capture")
            finally:
                SEND_GUARD.reset(token)
            elapsed = time.monotonic() - started
            token = SEND_GUARD.set(lambda: -1.0)  # the guard instant has passed
            try:
                late = await _call(adapter, "capture")
            finally:
                SEND_GUARD.reset(token)
            return capture, late, elapsed, len(seen)

    capture, late, elapsed, requests = run(scenario())
    assert capture.outcome is Outcome.UNKNOWN, capture.describe()
    assert elapsed < 2.0  # the guard, not the 35 s of timeouts
    assert late.outcome is Outcome.RETRYABLE and "nothing was sent" in late.message
    assert requests == 1  # the late capture never left


@pytest.mark.parametrize("mode", ["huge", "huge_chunked"])
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_an_oversized_answer_is_not_read(mode: str, kind: str) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with answering(mode) as (base, _), _client(kind) as client:
            adapter = CLASSES[ProviderName.SMARTPAY](
                settings_for(ProviderName.SMARTPAY, base_url=base), client)
            return await _call(adapter, "capture"), await _call(adapter, "status")

    capture, status = run(scenario())
    assert capture.outcome is Outcome.UNKNOWN, capture.describe()
    assert status.outcome is Outcome.RETRYABLE, status.describe()
    assert f"exceeded {MAX_ANSWER_BYTES} bytes" in capture.message


@pytest.mark.parametrize("url", ["http://api.smartpay.example/v1", "http://10.0.0.5:8080",
                                 "http://[2001:db8::1]/"])
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": {"smartpay": {"base_url": url}}}, environ={})
    assert "providers.smartpay.base_url" in str(caught.value)
    assert "https://" in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8700/smartpay", "http://localhost:1",
                                 "http://[::1]:80", "https://api.smartpay.example"])
def test_loopback_http_and_https_are_accepted(url: str) -> None:
    config = parse_config({"providers": {"smartpay": {"base_url": url}}}, environ={})
    assert config.providers[ProviderName.SMARTPAY].base_url == url.rstrip("/")
