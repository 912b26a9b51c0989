"""Every way the network can fail maps to the right Outcome, on both transports.

The aiohttp transport reports a dropped connection as ``httpx.ConnectTimeout``
(its cause is ``ServerDisconnectedError`` / ``ClientOSError``): these tests pin
that we still call it UNKNOWN for money calls.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.support.providers import ALL, CLASSES, adapter_with, raising, ref, run, settings_for
from tests.support.rawserver import misbehaving_server
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome
from watchdog.providers.http import make_http_client

TRANSPORTS = ("default", "aiohttp")
LOST_ANSWER = ("close_before_reply", "hang", "partial_headers", "partial_body", "garbage",
               "reset")


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
