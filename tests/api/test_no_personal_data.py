"""Provider answers full of consumer data (names, e-mails, addresses, phone numbers, card
fragments) go through every provider's adapter and a real scan pass; none of it lands in the
audit, the logs or the API — only the allow-listed fields, the digest and the size."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.support.api import Api
from tests.support.cli import DUE_ORDERS
from tests.support.providers import CLASSES, settings_for
from watchdog import service
from watchdog.db import transaction
from watchdog.domain import ProviderName
from watchdog.models import AuditRow
from watchdog.providers.flitt.signing import flitt_signature
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer
from watchdog.scan import Scanner

pytestmark = pytest.mark.wallclock

PERSONAL = {
    "name": "Ada PII-Lovelace",
    "email": "ada.pii-lovelace@example.org",
    "phone": "+44 20 7946 0PII",
    "address": "12 PII Analytical Row, London N1 9GU",
    "card": "491748PII7712",
}
MARKERS = [*PERSONAL.values(), "PII"]
CURRENCY = {ProviderName.SMARTPAY: "JPY", ProviderName.JPMMPS: "EUR",
            ProviderName.FLITT: "GEL", ProviderName.CLEARPAY: "GBP"}
# Authorized long enough ago that the pass reads the status and captures.
AGE = {ProviderName(p): age for p, _, age in DUE_ORDERS}


def _consumer() -> dict[str, Any]:
    return {"givenNames": PERSONAL["name"], "email": PERSONAL["email"],
            "phoneNumber": PERSONAL["phone"],
            "billing": {"line1": PERSONAL["address"], "name": PERSONAL["name"]},
            "card": {"maskedNumber": PERSONAL["card"], "last4": PERSONAL["card"][-4:]}}


def _stuff(value: Any) -> Any:
    """Every object in the answer gets consumer data beside its real fields."""
    if isinstance(value, dict):
        return {**{k: _stuff(v) for k, v in value.items()}, "consumer": _consumer(),
                "customerEmail": PERSONAL["email"], "description": f"for {PERSONAL['name']}"}
    if isinstance(value, list):
        return [_stuff(v) for v in value]
    return value


def _flitt(data: dict[str, Any]) -> dict[str, Any]:
    """Flitt answers are flat and signed: add its own consumer fields and re-sign."""
    response = {**data["response"], "sender_email": PERSONAL["email"],
                "sender_cell_phone": PERSONAL["phone"], "masked_card": PERSONAL["card"],
                "sender_account": PERSONAL["name"], "card_bin": 491748}
    response.pop("signature", None)
    response["signature"] = flitt_signature(response, SANDBOX_ENV["WATCHDOG_FLITT_SECRET_KEY"])
    return {"response": response}


class StuffingTransport(httpx.AsyncBaseTransport):
    """The real sandbox over HTTP; its JSON answers come back stuffed with consumer data."""

    def __init__(self, provider: ProviderName) -> None:
        self.provider = provider
        self.inner = httpx.AsyncHTTPTransport()
        self.stuffed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        try:
            data = json.loads(body)
        except ValueError:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        data = _flitt(data) if self.provider is ProviderName.FLITT else _stuff(data)
        self.stuffed += 1
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-encoding")}
        return httpx.Response(response.status_code, headers=headers, json=data)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


def test_consumer_data_never_reaches_audit_logs_or_api(
    api: Api, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.reset()
    sandbox.set_now(api.clock.now(), freeze=True)
    ids: dict[ProviderName, int] = {}
    for n, provider in enumerate(ProviderName):
        order_id = str(410_000 + n) if provider is ProviderName.CLEARPAY else f"pii-{n}"
        authorized_at = api.clock.now() - AGE[provider]
        sandbox.create_order(provider.value, order_id, 5000, CURRENCY[provider],
                             authorized_at=authorized_at)
        ids[provider] = service.register(api.engine, api.config, {
            "provider": provider.value, "order_id": order_id, "amount": 5000,
            "currency": CURRENCY[provider], "authorized_at": authorized_at.isoformat(),
        }, actor="test", clock=api.clock).authorization.id

    transports = {p: StuffingTransport(p) for p in ProviderName}

    async def one_pass() -> None:
        clients = {p: httpx.AsyncClient(transport=t) for p, t in transports.items()}
        try:
            adapters = {p: CLASSES[p](settings_for(p, base_url=sandbox.base_urls()[p.value],
                                                   secrets=SANDBOX_ENV), clients[p])
                        for p in ProviderName}

            async def no_sleep(_: float) -> None:
                return None

            scanner = Scanner(api.engine, api.config, adapters, api.clock, "w1",
                              sleep=no_sleep)
            await scanner.run_pass()
        finally:
            for client in clients.values():
                await client.aclose()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(one_pass())
    assert all(t.stuffed for t in transports.values()), "every provider answered, stuffed"

    with transaction(api.engine) as session:
        rows = list(session.scalars(select(AuditRow).order_by(AuditRow.id)))
        reads = [r for r in rows if r.event == "scan:status:read"]
        assert {r.authorization_id for r in reads} == set(ids.values()), "each answer audited"
        stored = json.dumps([{c.name: getattr(r, c.name) for c in AuditRow.__table__.columns}
                             for r in rows], default=str)
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    answers = [api.get(f"/v1/authorizations/{auth_id}/audit").text for auth_id in ids.values()]
    answers += [api.get(f"/v1/authorizations/{auth_id}").text for auth_id in ids.values()]
    for marker in MARKERS:
        assert marker not in stored, f"{marker!r} in the audit table"
        assert marker not in logs, f"{marker!r} in the logs"
        for answer in answers:
            assert marker not in answer, f"{marker!r} in the API"
    for read in reads:  # what the auditor still has: the allow-listed fields and a digest
        detail = json.loads(read.detail)
        assert len(detail["answer_sha256"]) == 64 and detail["answer_bytes"] > 0
        assert detail["answer"], read.provider
