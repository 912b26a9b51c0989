"""Clearpay behaviour of the sandbox, over real HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from watchdog.sandbox import SandboxServer
from watchdog.sandbox.clearpay import CLEARPAY_MERCHANT_ID, CLEARPAY_SECRET_KEY

AUTH = (CLEARPAY_MERCHANT_ID, CLEARPAY_SECRET_KEY)
ORDER = "400100200"


def _post(client: httpx.Client, sandbox: SandboxServer, op: str, body: dict[str, Any],
          order: str = ORDER, auth: tuple[str, str] = AUTH) -> httpx.Response:
    return client.post(f"{sandbox.base_urls()['clearpay']}/v2/payments/{order}/{op}",
                       json=body, auth=auth)


def _capture(client: httpx.Client, sandbox: SandboxServer, amount: str,
             request_id: str | None = None, order: str = ORDER) -> httpx.Response:
    body: dict[str, Any] = {"amount": {"amount": amount, "currency": "GBP"}}
    if request_id:
        body["requestId"] = request_id
    return _post(client, sandbox, "capture", body, order)


def _get(client: httpx.Client, sandbox: SandboxServer) -> dict[str, Any]:
    r = client.get(f"{sandbox.base_urls()['clearpay']}/v2/payments/{ORDER}", auth=AUTH)
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def order(sandbox: SandboxServer) -> dict:
    return sandbox.create_order("clearpay", ORDER, 10_000, "GBP")


def test_auth_refused(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _post(client, sandbox, "capture", {}, auth=(CLEARPAY_MERCHANT_ID, "bad"))
    assert r.status_code == 401
    assert set(r.json()) == {"errorCode", "errorId", "message", "httpStatusCode"}
    assert r.json()["errorCode"] == "unauthorized"


def test_status_and_expiry_event(sandbox: SandboxServer, client: httpx.Client,
                                 order: dict) -> None:
    payment = _get(client, sandbox)
    assert payment["paymentState"] == "AUTH_APPROVED"
    assert payment["openToCaptureAmount"] == {"amount": "100.00", "currency": "GBP"}
    [auth] = payment["events"]
    assert auth["type"] == "AUTH_APPROVED"
    assert auth["expires"] == order["expires_at"]


def test_partial_then_full_capture(sandbox: SandboxServer, client: httpx.Client,
                                   order: dict) -> None:
    r = _capture(client, sandbox, "40.00", "r1")
    assert r.status_code == 201
    assert r.json()["paymentState"] == "PARTIALLY_CAPTURED"
    assert r.json()["openToCaptureAmount"]["amount"] == "60.00"
    r = _capture(client, sandbox, "60.01", "r2")
    assert (r.status_code, r.json()["errorCode"]) == (422, "invalid_amount")
    r = _capture(client, sandbox, "60.00", "r3")
    assert r.json()["paymentState"] == "CAPTURED"
    r = _capture(client, sandbox, "1.00", "r4")
    assert (r.status_code, r.json()["errorCode"]) == (410, "payment_captured")
    assert [e["amount"] for e in sandbox.ledger()] == [4000, 6000]


def test_capture_validation(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    assert _capture(client, sandbox, "0.99").json()["errorCode"] == "invalid_amount"
    assert _capture(client, sandbox, "abc").json()["errorCode"] == "invalid_object"
    assert _post(client, sandbox, "capture", {}).json()["errorCode"] == "invalid_object"
    r = _capture(client, sandbox, "1.00", order="abc")
    assert (r.status_code, r.json()["errorCode"]) == (404, "not_found")
    r = _capture(client, sandbox, "1.00", order="999")
    assert (r.status_code, r.json()["errorCode"]) == (412, "error")
    r = client.post(f"{sandbox.base_urls()['clearpay']}/v2/payments/{ORDER}/capture",
                    content=b"{nope", headers={"Content-Type": "application/json"}, auth=AUTH)
    assert (r.status_code, r.json()["errorCode"]) == (400, "invalid_json")


def test_void_then_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _post(client, sandbox, "void", {"requestId": "v1",
                                        "amount": {"amount": "30.00", "currency": "GBP"}})
    assert r.status_code == 201
    assert r.json()["openToCaptureAmount"]["amount"] == "70.00"
    r = _post(client, sandbox, "void", {"requestId": "v2"})
    assert r.json()["paymentState"] == "VOIDED"
    assert len(r.json()["refunds"]) == 2
    r = _capture(client, sandbox, "1.00")
    assert (r.status_code, r.json()["errorCode"]) == (412, "payment_voided")
    assert [(e["operation"], e["amount"]) for e in sandbox.ledger()] == [
        ("void", 3000), ("void", 7000)]


def test_capture_after_expiry(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    _capture(client, sandbox, "10.00")
    sandbox.advance(dt.timedelta(days=13))
    payment = _get(client, sandbox)
    assert payment["paymentState"] == "CAPTURED"
    assert payment["events"][-1]["type"] == "EXPIRED"
    assert payment["events"][-1]["amount"]["amount"] == "90.00"
    r = _capture(client, sandbox, "1.00")
    assert (r.status_code, r.json()["errorCode"]) == (412, "payment_expired")


def test_declined(sandbox: SandboxServer, client: httpx.Client) -> None:
    sandbox.create_order("clearpay", ORDER, 100, "GBP", state="declined")
    r = _capture(client, sandbox, "1.00")
    assert (r.status_code, r.json()["errorCode"]) == (412, "invalid_state")


def test_request_id_replay(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    first = _capture(client, sandbox, "25.00", "same")
    second = _capture(client, sandbox, "25.00", "same")
    assert second.status_code == 201
    assert first.json() == second.json()
    assert len(sandbox.ledger()) == 1
    sandbox.advance(dt.timedelta(hours=24))
    assert _capture(client, sandbox, "25.00", "same").status_code == 201
    assert len(sandbox.ledger()) == 2


def test_in_flight_conflict(sandbox: SandboxServer, order: dict) -> None:
    sandbox.add_fault("clearpay", "capture", "hang", seconds=0.5, apply="never")
    with httpx.Client(timeout=0.1) as slow, pytest.raises(httpx.ReadTimeout):
        _capture(slow, sandbox, "10.00", "inflight")
    with httpx.Client(timeout=5.0) as client:
        r = _capture(client, sandbox, "10.00", "inflight")
        assert r.status_code == 409
        assert r.json()["errorCode"] == "conflict"


def test_drop_after_apply_then_retry(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("clearpay", "capture", "drop_after_apply")
    with pytest.raises(httpx.TransportError):
        _capture(client, sandbox, "100.00", "once")
    r = _capture(client, sandbox, "100.00", "once")
    assert r.json()["paymentState"] == "CAPTURED"
    assert len(sandbox.ledger()) == 1
