"""Flitt behaviour of the sandbox, over real HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import httpx
import pytest

from watchdog.sandbox import SandboxServer
from watchdog.sandbox.flitt import FLITT_MERCHANT_ID, FLITT_SECRET_KEY, sign, signature_string

ORDER = "TestOrder2"


def _call(client: httpx.Client, sandbox: SandboxServer, op: str, secret: str = FLITT_SECRET_KEY,
          **params: Any) -> dict[str, Any]:
    params = {"merchant_id": int(FLITT_MERCHANT_ID), "order_id": ORDER, "version": "1.0.1",
              **params}
    params["signature"] = sign(secret, params)
    r = client.post(f"{sandbox.base_urls()['flitt']}/{op}/order_id", json={"request": params})
    assert r.status_code == 200
    response: dict[str, Any] = r.json()["response"]
    if response["response_status"] == "success":
        assert response["signature"] == sign(FLITT_SECRET_KEY, response)
    return response


def _status(client: httpx.Client, sandbox: SandboxServer) -> dict[str, Any]:
    return _call(client, sandbox, "status")


@pytest.fixture
def order(sandbox: SandboxServer) -> dict:
    return sandbox.create_order("flitt", ORDER, 1000, "GEL")


def test_signature_string_orders_values_by_parameter_name() -> None:
    params = {"merchant_id": 1549901, "order_id": "TestOrder2", "order_desc": "Test payment",
              "currency": "GEL", "amount": 1000, "server_callback_url": "http://myshop/callback/"}
    expected = "test|1000|GEL|1549901|Test payment|TestOrder2|http://myshop/callback/"
    assert signature_string("test", params) == expected
    digest = hashlib.sha1(expected.encode(), usedforsecurity=False).hexdigest()
    assert sign("test", params) == digest
    # empty values are skipped, zero is kept, signature fields are excluded
    assert signature_string("s", {"b": "", "a": 0, "c": None, "signature": "x",
                                   "response_signature_string": "y"}) == "s|0"


def test_bad_signature_refused(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _call(client, sandbox, "capture", secret="wrong", amount=1000, currency="GEL")
    assert r["response_status"] == "failure"
    assert r["error_code"] == 1014
    assert "request_id" in r
    assert sandbox.ledger() == []


def test_full_capture_and_status(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    before = _status(client, sandbox)
    assert before["order_status"] == "approved"
    assert json.loads(before["additional_info"])["capture_status"] == "hold"
    r = _call(client, sandbox, "capture", amount=1000, currency="GEL")
    assert r["response_status"] == "success"
    assert r["capture_status"] == "captured"
    after = _status(client, sandbox)
    info = json.loads(after["additional_info"])
    assert info["capture_status"] == "captured"
    assert info["capture_amount"] == after["actual_amount"] == 1000
    assert sandbox.ledger()[0]["idempotency_key"] is None


def test_partial_capture_once_only(sandbox: SandboxServer, client: httpx.Client,
                                   order: dict) -> None:
    assert _call(client, sandbox, "capture", amount=600, currency="GEL")["capture_status"] == \
        "captured"
    again = _call(client, sandbox, "capture", amount=600, currency="GEL")
    assert again["response_status"] == "success"
    assert again["capture_status"] == "captured"
    other = _call(client, sandbox, "capture", amount=400, currency="GEL")
    assert other["response_status"] == "failure"
    assert other["error_code"] == 1019
    assert json.loads(_status(client, sandbox)["additional_info"])["capture_amount"] == 600
    assert [e["amount"] for e in sandbox.ledger()] == [600]


def test_over_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _call(client, sandbox, "capture", amount=1001, currency="GEL")
    assert (r["response_status"], r["error_code"]) == ("failure", 1007)


def test_reverse_then_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    partial = _call(client, sandbox, "reverse", amount=500, currency="GEL", reverse_id="r0")
    assert partial["error_code"] == 1007
    r = _call(client, sandbox, "reverse", amount=1000, currency="GEL", reverse_id="r1")
    assert r["response_status"] == "success"
    assert r["reverse_status"] == "approved"
    replay = _call(client, sandbox, "reverse", amount=1000, currency="GEL", reverse_id="r1")
    assert replay == r
    assert _status(client, sandbox)["order_status"] == "reversed"
    cap = _call(client, sandbox, "capture", amount=1000, currency="GEL")
    assert (cap["response_status"], cap["error_code"]) == ("failure", 1019)
    assert [(e["operation"], e["amount"], e["idempotency_key"]) for e in sandbox.ledger()] == [
        ("reverse", 1000, "r1")]


def test_capture_after_expiry(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.advance(dt.timedelta(days=5))
    assert _status(client, sandbox)["order_status"] == "expired"
    r = _call(client, sandbox, "capture", amount=1000, currency="GEL")
    assert r["response_status"] == "failure"
    assert r["error_code"] == 1000


def test_unknown_order(sandbox: SandboxServer, client: httpx.Client) -> None:
    assert _status(client, sandbox)["error_code"] == 1018


def test_drop_after_apply_then_retry(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("flitt", "capture", "drop_after_apply")
    with pytest.raises(httpx.TransportError):
        _call(client, sandbox, "capture", amount=1000, currency="GEL")
    r = _call(client, sandbox, "capture", amount=1000, currency="GEL")
    assert r["capture_status"] == "captured"
    assert len(sandbox.ledger()) == 1


def test_form_encoded(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    params: dict[str, Any] = {"merchant_id": FLITT_MERCHANT_ID, "order_id": ORDER}
    params["signature"] = sign(FLITT_SECRET_KEY, params)
    r = client.post(f"{sandbox.base_urls()['flitt']}/status/order_id", data=params)
    assert r.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert "order_status=approved" in r.text
