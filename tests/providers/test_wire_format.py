"""Exact wire format per providers.md: URL, method, headers, auth encoding, body, amounts."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import httpx
import pytest

from tests.support.providers import ALL, SECRETS, adapter_with, ref, respond, run
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome, ProviderState
from watchdog.providers.clearpay import request_id
from watchdog.providers.flitt import reverse_id
from watchdog.providers.flitt.signing import flitt_signature
from watchdog.providers.jpmmps import modification_id


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ----------------------------------------------------------------------------- Smartpay

SMARTPAY_PAYMENT = {"id": "payment_test_1", "object": "payment", "amount": 5000,
                    "currency": "JPY", "order": "order_test_1", "status": "processed"}


@pytest.mark.parametrize(("final", "remainder"), [(True, "automatic"), (False, "manual")])
def test_smartpay_capture_wire(final: bool, remainder: str) -> None:
    async def scenario() -> tuple[object, object]:
        adapter, rec, client = adapter_with(ProviderName.SMARTPAY, respond(201, SMARTPAY_PAYMENT))
        async with client:
            result = await adapter.capture(ref("order_test_1", 8000, "JPY"), 5000, "idem-1",
                                           final=final)
        return result, rec

    result, rec = run(scenario())
    assert result.outcome is Outcome.SUCCEEDED
    req = rec.requests[0]
    assert req.method == "POST"
    assert str(req.url) == "https://api.smartpay.test/v1/payments"
    assert req.headers["authorization"] == "Basic " + SECRETS["WATCHDOG_SMARTPAY_SECRET_KEY"]
    assert req.headers["idempotency-key"] == "idem-1"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {"order": "order_test_1", "amount": 5000,
                                       "currency": "JPY", "cancelRemainder": remainder}
    assert req.extensions["timeout"] == {"connect": 3.0, "read": 7.0, "write": 7.0, "pool": 3.0}


def test_smartpay_cancel_and_status_wire() -> None:
    order = {"id": "order_test_1", "status": "canceled", "amount": 8000, "currency": "JPY",
             "expiresAt": 1_800_000_000_000, "updatedAt": 1_700_000_000_000, "payments": []}

    async def scenario() -> tuple[object, object, object]:
        adapter, rec, client = adapter_with(ProviderName.SMARTPAY, respond(200, order))
        async with client:
            cancel = await adapter.cancel(ref("order_test_1"), "idem-2")
            status = await adapter.status(ref("order_test_1"))
        return cancel, status, rec

    cancel, status, rec = run(scenario())
    put, get = rec.requests
    assert put.method == "PUT"
    assert str(put.url) == "https://api.smartpay.test/v1/orders/order_test_1/cancellation"
    assert put.headers["idempotency-key"] == "idem-2"
    assert put.content == b""
    assert get.method == "GET"
    assert str(get.url) == "https://api.smartpay.test/v1/orders/order_test_1?expand=all"
    assert cancel.outcome is Outcome.SUCCEEDED
    assert status.snapshot.state is ProviderState.CANCELED


# ----------------------------------------------------------------------------- JPMMPS

JPM_CAPTURED = {"paymentStatus": "CAPTURED", "transactionOverview": {
    "transactionId": "tx-1", "amount": 25.0, "currencyCode": "EUR"}}


# A full capture names its amount too: without it JPMMPS takes whatever it holds.
@pytest.mark.parametrize(("amount", "modified"), [(1820, 18.2), (2500, 25.0)])
def test_jpmmps_capture_wire(amount: int, modified: float) -> None:
    async def scenario() -> tuple[object, object]:
        adapter, rec, client = adapter_with(ProviderName.JPMMPS, respond(200, JPM_CAPTURED),
                                            origin="https://shop.example")
        async with client:
            result = await adapter.capture(ref("tx-1", 2500, "EUR"), amount, "idem-3",
                                           final=True)
        return result, rec

    result, rec = run(scenario())
    assert result.outcome is Outcome.SUCCEEDED
    req = rec.requests[0]
    assert req.method == "POST"
    assert str(req.url) == "https://jpmmps.test/api/payment/capture"
    assert req.headers["authorization"] == _basic(
        SECRETS["WATCHDOG_JPMMPS_MERCHANT_KEY"], SECRETS["WATCHDOG_JPMMPS_AUTHENTICATION_KEY"])
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept-language"] == "en-US"
    assert req.headers["origin"] == "https://shop.example"
    assert req.headers["user-agent"] == "expiry-watchdog/test"
    body = json.loads(req.content)
    expected = {"transactionId": "tx-1", "merchantKey": SECRETS["WATCHDOG_JPMMPS_MERCHANT_KEY"],
                "modificationId": "idem-3",
                "modifiedAmount": {"amount": modified, "currencyCode": "EUR"}}
    assert f'"amount":{modified}'.encode() in req.content  # a JSON number, not a string
    assert body == expected


def test_jpmmps_cancel_status_wire_and_modification_id_limit() -> None:
    long_key = "k" * 100
    cancelled = {"paymentStatus": "CANCELLED"}

    async def scenario() -> tuple[object, object]:
        adapter, rec, client = adapter_with(ProviderName.JPMMPS, respond(200, cancelled))
        async with client:
            cancel = await adapter.cancel(ref("tx-1"), long_key)
            await adapter.status(ref("tx 1/2"))
        return cancel, rec

    cancel, rec = run(scenario())
    post, get = rec.requests
    assert str(post.url) == "https://jpmmps.test/api/payment/cancel"
    body = json.loads(post.content)
    assert body == {"transactionId": "tx-1", "modificationId": modification_id(long_key),
                    "merchantKey": SECRETS["WATCHDOG_JPMMPS_MERCHANT_KEY"]}
    assert len(body["modificationId"]) == 64
    assert body["modificationId"] == hashlib.sha256(long_key.encode()).hexdigest()
    assert post.headers["origin"] == "https://jpmmps.test"  # default: the base URL's origin
    assert get.method == "GET"
    assert get.url.raw_path == b"/api/payment/status/tx%201%2F2"
    assert cancel.outcome is Outcome.SUCCEEDED
    assert modification_id("x" * 64) == "x" * 64


# ----------------------------------------------------------------------------- Flitt


def _flitt_ok(**fields: object) -> dict[str, object]:
    return {"response": {"response_status": "success", **fields}}


def test_flitt_capture_wire() -> None:
    answer = _flitt_ok(capture_status="captured", order_id="o-1")

    async def scenario() -> tuple[object, object]:
        adapter, rec, client = adapter_with(ProviderName.FLITT, respond(200, answer))
        async with client:
            result = await adapter.capture(ref("o-1", 1500, "GEL"), 1000, "idem", final=True)
        return result, rec

    result, rec = run(scenario())
    assert result.outcome is Outcome.SUCCEEDED
    req = rec.requests[0]
    assert str(req.url) == "https://pay.flitt.test/api/capture/order_id"
    assert req.method == "POST"
    assert "authorization" not in req.headers
    inner = json.loads(req.content)["request"]
    assert inner["amount"] == 1000
    assert inner["merchant_id"] == 7654321
    assert inner["version"] == "1.0.1"
    assert inner["currency"] == "GEL"
    assert inner["order_id"] == "o-1"
    secret = SECRETS["WATCHDOG_FLITT_SECRET_KEY"]
    plain = f"{secret}|1000|GEL|7654321|o-1|1.0.1"
    assert inner["signature"] == hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324


def test_flitt_reverse_and_status_wire() -> None:
    long_key = "r" * 80

    async def scenario() -> object:
        adapter, rec, client = adapter_with(
            ProviderName.FLITT, respond(200, _flitt_ok(reverse_status="approved")))
        async with client:
            result = await adapter.cancel(ref("o-1", 1500, "GEL"), long_key)
            assert result.outcome is Outcome.SUCCEEDED
            await adapter.status(ref("o-1", 1500, "GEL"))
        return rec

    rec = run(scenario())
    reverse, status = rec.requests
    assert str(reverse.url) == "https://pay.flitt.test/api/reverse/order_id"
    inner = json.loads(reverse.content)["request"]
    assert inner["amount"] == 1500  # the full held amount
    assert inner["reverse_id"] == reverse_id(long_key)
    assert len(inner["reverse_id"]) == 50
    assert inner["signature"] == flitt_signature(inner, SECRETS["WATCHDOG_FLITT_SECRET_KEY"])
    assert str(status.url) == "https://pay.flitt.test/api/status/order_id"
    assert set(json.loads(status.content)["request"]) == {
        "order_id", "merchant_id", "version", "signature"}
    assert reverse_id("short") == "short"


# ----------------------------------------------------------------------------- Clearpay

CLEARPAY_PAYMENT = {
    "id": "100101", "paymentState": "PARTIALLY_CAPTURED",
    "originalAmount": {"amount": "50.00", "currency": "GBP"},
    "openToCaptureAmount": {"amount": "31.80", "currency": "GBP"},
    "events": [
        {"type": "AUTH_APPROVED", "expires": "2025-03-10T12:00:00.000Z",
         "amount": {"amount": "50.00", "currency": "GBP"}},
        {"type": "CAPTURED", "amount": {"amount": "18.20", "currency": "GBP"}},
    ],
}


def test_clearpay_capture_wire() -> None:
    async def scenario() -> tuple[object, object]:
        adapter, rec, client = adapter_with(ProviderName.CLEARPAY, respond(201, CLEARPAY_PAYMENT))
        async with client:
            result = await adapter.capture(ref("100101", 5000, "GBP"), 1820, "idem-9",
                                           final=False)
        return result, rec

    result, rec = run(scenario())
    assert result.outcome is Outcome.SUCCEEDED
    snap = result.snapshot
    assert (snap.state, snap.captured_amount, snap.open_amount) == (
        ProviderState.PARTIALLY_CAPTURED, 1820, 3180)
    assert snap.expires_at.isoformat() == "2025-03-10T12:00:00+00:00"
    req = rec.requests[0]
    assert str(req.url) == "https://clearpay.test/v2/payments/100101/capture"
    assert req.headers["authorization"] == _basic(
        SECRETS["WATCHDOG_CLEARPAY_MERCHANT_ID"], SECRETS["WATCHDOG_CLEARPAY_SECRET_KEY"])
    assert req.headers["accept"] == "application/json"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("expiry-watchdog/test")
    assert SECRETS["WATCHDOG_CLEARPAY_MERCHANT_ID"] in req.headers["user-agent"]
    body = json.loads(req.content)
    assert body == {"requestId": request_id("idem-9"),
                    "amount": {"amount": "18.20", "currency": "GBP"}}
    assert uuid.UUID(body["requestId"]).version == 5


def test_clearpay_request_id_is_stable_uuid() -> None:
    assert request_id("k1") == request_id("k1")
    assert request_id("k1") != request_id("k2")
    assert str(uuid.UUID(request_id("k1"))) == request_id("k1")


def test_clearpay_void_and_status_wire() -> None:
    voided = {**CLEARPAY_PAYMENT, "paymentState": "VOIDED",
              "openToCaptureAmount": {"amount": "0.00", "currency": "GBP"}}

    async def scenario() -> object:
        adapter, rec, client = adapter_with(ProviderName.CLEARPAY, respond(200, voided))
        async with client:
            assert (await adapter.cancel(ref("100101", 5000, "GBP"), "v-1")).outcome is (
                Outcome.SUCCEEDED)
            await adapter.status(ref("100101", 5000, "GBP"))
        return rec

    rec = run(scenario())
    void, get = rec.requests
    assert str(void.url) == "https://clearpay.test/v2/payments/100101/void"
    assert json.loads(void.content) == {"requestId": request_id("v-1")}
    assert get.method == "GET"
    assert str(get.url) == "https://clearpay.test/v2/payments/100101"


# ----------------------------------------------------------------------------- all


@pytest.mark.parametrize("provider", ALL)
@pytest.mark.parametrize("currency", ["XXX", "gbp", ""])
def test_unrepresentable_currency_is_rejected_before_any_request(
    provider: ProviderName, currency: str
) -> None:
    async def scenario() -> tuple[object, object]:
        adapter, rec, client = adapter_with(provider, respond(200, {}))
        async with client:
            result = await adapter.capture(ref("o", 1000, currency), 1000, "k", final=True)
        return result, rec

    result, rec = run(scenario())
    assert result.outcome is Outcome.REJECTED
    assert rec.requests == []


@pytest.mark.parametrize("provider", ALL)
def test_non_positive_amount_is_rejected_before_any_request(provider: ProviderName) -> None:
    async def scenario() -> tuple[object, object]:
        adapter, rec, client = adapter_with(provider, respond(200, {}))
        async with client:
            result = await adapter.capture(ref("o", 1000, "EUR"), 0, "k", final=True)
        return result, rec

    result, rec = run(scenario())
    assert result.outcome is Outcome.REJECTED
    assert rec.requests == []


def test_client_is_injected_not_created() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"errorCode": "order.not-found"})

    async def scenario() -> object:
        adapter, _, client = adapter_with(ProviderName.SMARTPAY, answer)
        async with client:
            return await adapter.check()

    result = run(scenario())
    assert result.outcome is Outcome.SUCCEEDED
    assert len(seen) == 1
