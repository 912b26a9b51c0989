"""No secret in any message, raw field, describe() or log line, whatever happens."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import pytest

from tests.support.providers import ALL, SECRETS, adapter_with, ref, run
from watchdog.domain import ProviderName
from watchdog.providers.base import ProviderResult

ENCODED = [
    base64.b64encode(f"{SECRETS['WATCHDOG_JPMMPS_MERCHANT_KEY']}:"
                     f"{SECRETS['WATCHDOG_JPMMPS_AUTHENTICATION_KEY']}".encode()).decode(),
    base64.b64encode(f"{SECRETS['WATCHDOG_CLEARPAY_MERCHANT_ID']}:"
                     f"{SECRETS['WATCHDOG_CLEARPAY_SECRET_KEY']}".encode()).decode(),
]
FORBIDDEN = [*SECRETS.values(), *ENCODED]


def _echo(status: int, wrap_flitt: bool = False) -> Any:
    """A provider that echoes our request (headers and body) back, as a careless one might."""

    def answer(request: httpx.Request) -> httpx.Response:
        echoed = {"headers": dict(request.headers), "body": request.content.decode(),
                  "message": f"bad auth {request.headers.get('authorization')}",
                  "errorCode": request.headers.get("authorization"),
                  "paymentStatus": request.headers.get("authorization"),
                  "status": request.headers.get("authorization")}
        if wrap_flitt:
            echoed = {"response": {"response_status": "failure", "error_code": 1014,
                                   "error_message": request.content.decode(),
                                   "merchant_id": int(SECRETS["WATCHDOG_FLITT_MERCHANT_ID"])}}
        return httpx.Response(status, json=echoed)

    return answer


def _text_echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, text=f"<html>{request.headers} {request.content!r}</html>")


def _raising(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout(f"timed out sending {request.headers} {request.content!r}")


@pytest.mark.parametrize("provider", ALL)
@pytest.mark.parametrize("kind", ["200", "401", "409", "500-text", "timeout"])
def test_no_secret_anywhere(provider: ProviderName, kind: str,
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = {"200": _echo(200, provider is ProviderName.FLITT),
              "401": _echo(401), "409": _echo(409), "500-text": _text_echo,
              "timeout": _raising}[kind]

    async def scenario() -> list[ProviderResult]:
        adapter, _, client = adapter_with(provider, answer)
        async with client:
            return [
                await adapter.capture(ref("o", 1820, "EUR"), 1000, "k", final=True),
                await adapter.cancel(ref("o", 1820, "EUR"), "k"),
                await adapter.status(ref("o", 1820, "EUR")),
                await adapter.check(),
            ]

    results = run(scenario())
    texts = [caplog.text]
    for result in results:
        texts += [result.message, result.describe(), repr(result.raw), repr(result),
                  str(result.provider_code), str(result.request_id)]
    blob = "\n".join(texts)
    for secret in FORBIDDEN:
        assert secret not in blob, f"secret leaked in {kind} for {provider}"
    assert caplog.records, "adapters log each call"
