"""Shared helpers: settings with known fake secrets, and adapters over a MockTransport."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from watchdog.config import ProviderSettings
from watchdog.domain import ProviderName
from watchdog.providers import registry
from watchdog.providers.base import AuthRef, ProviderAdapter
from watchdog.providers.http import make_http_client
from watchdog.secrets import Secret

T = TypeVar("T")

# Known fake secrets (wire tests check their encodings); a provider not listed here gets
# "<variable>-UNIT" for each of its SPEC.secret_variables.
_KNOWN_SECRETS: dict[str, str] = {
    "WATCHDOG_SMARTPAY_SECRET_KEY": "sk_test_Zq8vUNIT-smartpay-key",
    "WATCHDOG_JPMMPS_MERCHANT_KEY": "merchant-UNIT-jpm-7731",
    "WATCHDOG_JPMMPS_AUTHENTICATION_KEY": "authkey-UNIT-jpm-9942",
    "WATCHDOG_FLITT_MERCHANT_ID": "7654321",
    "WATCHDOG_FLITT_SECRET_KEY": "flitt-UNIT-secret-5510",
    "WATCHDOG_CLEARPAY_MERCHANT_ID": "3304455",
    "WATCHDOG_CLEARPAY_SECRET_KEY": "clearpay-UNIT-secret-8812",
}
SECRETS: dict[str, str] = {
    variable: _KNOWN_SECRETS.get(variable, f"{variable.lower()}-UNIT")
    for spec in registry.specs() for variable in spec.secret_variables
}
# Hosts the wire tests name; any other provider is served at https://<name>.test.
_KNOWN_BASE_URLS = {
    "smartpay": "https://api.smartpay.test/v1",
    "jpmmps": "https://jpmmps.test/api",
    "flitt": "https://pay.flitt.test/api",
    "clearpay": "https://clearpay.test",
}
BASE_URLS = {p: _KNOWN_BASE_URLS.get(p.value, f"https://{p}.test") for p in ProviderName}
CLASSES: dict[ProviderName, Any] = {s.name: s.adapter for s in registry.specs()}
ALL = list(ProviderName)
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion (tests stay synchronous)."""
    return asyncio.run(coro)


def settings_for(
    name: ProviderName, base_url: str | None = None, secrets: dict[str, str] | None = None,
    **overrides: Any,
) -> ProviderSettings:
    values = SECRETS if secrets is None else secrets
    wanted = registry.spec(name).secret_variables
    creds = {k: Secret(v) for k, v in values.items() if k in wanted}
    fields: dict[str, Any] = {
        "name": name, "base_url": base_url or BASE_URLS[name], "window": dt.timedelta(days=5),
        "connect_timeout": 3.0, "read_timeout": 7.0, "user_agent": "expiry-watchdog/test",
        "credentials": creds,
    }
    fields.update(overrides)
    return ProviderSettings(**fields)


def ref(order_id: str = "ord_1", amount: int = 1820, currency: str = "EUR") -> AuthRef:
    return AuthRef(authorization_id=1, order_id=order_id, amount=amount, currency=currency)


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed function."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def adapter_with(
    name: ProviderName, answer: Callable[[httpx.Request], httpx.Response], **overrides: Any,
) -> tuple[ProviderAdapter, Recorder, httpx.AsyncClient]:
    """An adapter on the production client (``make_http_client``) over a MockTransport."""
    recorder = Recorder(answer)
    client = make_http_client(transport=httpx.MockTransport(recorder))
    adapter = CLASSES[name](settings_for(name, **overrides), client)
    return adapter, recorder, client


def respond(status: int = 200, body: Any = None, text: str | None = None,
            headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return answer


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer
