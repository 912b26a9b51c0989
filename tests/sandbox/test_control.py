"""The /_sandbox control API and the server lifecycle."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from watchdog.sandbox import SandboxServer
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.smartpay import SMARTPAY_SECRET_KEY

pytestmark = pytest.mark.wallclock

ROOT = Path(__file__).resolve().parents[2]


def test_base_urls(sandbox: SandboxServer) -> None:
    urls = sandbox.base_urls()
    assert urls == {
        "smartpay": f"{sandbox.url}/smartpay/v1", "jpmmps": f"{sandbox.url}/jpmmps",
        "flitt": f"{sandbox.url}/flitt/api", "clearpay": f"{sandbox.url}/clearpay"}
    assert SANDBOX_ENV["WATCHDOG_SMARTPAY_SECRET_KEY"] == SMARTPAY_SECRET_KEY


def test_create_and_read_order(sandbox: SandboxServer, client: httpx.Client) -> None:
    r = client.post(f"{sandbox.url}/_sandbox/orders", json={
        "provider": "clearpay", "order_id": "123", "amount": 1050, "currency": "GBP",
        "authorized_at": "2030-01-01T10:00:00+02:00"})
    assert r.status_code == 201
    body = r.json()
    assert body["authorized_at"] == "2030-01-01T08:00:00.000Z"
    assert body["expires_at"] == "2030-01-14T08:00:00.000Z"
    assert body["provider_status"] == "AUTH_APPROVED"
    again = client.post(f"{sandbox.url}/_sandbox/orders", json={
        "provider": "clearpay", "order_id": "123", "amount": 1050, "currency": "GBP"})
    assert again.status_code == 409
    r = client.get(f"{sandbox.url}/_sandbox/orders/clearpay/123")
    assert r.json()["amount"] == 1050
    assert client.get(f"{sandbox.url}/_sandbox/orders/clearpay/999").status_code == 404


@pytest.mark.parametrize(("payload", "field"), [
    ({"provider": "paypal", "order_id": "1", "amount": 1, "currency": "GBP"}, "provider"),
    ({"provider": "smartpay", "amount": 1, "currency": "JPY"}, "order_id"),
    ({"provider": "smartpay", "order_id": "1", "amount": "10", "currency": "JPY"}, "amount"),
    ({"provider": "smartpay", "order_id": "1", "amount": 0, "currency": "JPY"}, "amount"),
    ({"provider": "smartpay", "order_id": "1", "amount": 1, "currency": "XXX"}, "currency"),
    ({"provider": "smartpay", "order_id": "1", "amount": 1, "currency": "JPY",
      "authorized_at": "2030-01-01T00:00:00"}, "authorized_at"),
    ({"provider": "smartpay", "order_id": "1", "amount": 1, "currency": "JPY",
      "expires_at": "tomorrow"}, "expires_at"),
    ({"provider": "smartpay", "order_id": "1", "amount": 1, "currency": "JPY",
      "state": "weird"}, "state"),
    ({"provider": "clearpay", "order_id": "abc", "amount": 1, "currency": "GBP"}, "order_id"),
    ({"provider": "flitt", "order_id": "1", "amount": 1, "currency": "GEL",
      "settle_seconds": -1}, "settle_seconds"),
    ({"provider": "flitt", "order_id": "1", "amount": 1, "currency": "GEL",
      "settle_outcome": "maybe"}, "settle_outcome"),
])
def test_order_validation(sandbox: SandboxServer, client: httpx.Client, payload: dict,
                          field: str) -> None:
    r = client.post(f"{sandbox.url}/_sandbox/orders", json=payload)
    assert r.status_code == 422
    assert r.json()["field"] == field


@pytest.mark.parametrize(("payload", "field"), [
    ({"provider": "x", "kind": "error"}, "provider"),
    ({"operation": "refund", "kind": "error"}, "operation"),
    ({"kind": "explode"}, "kind"),
    ({"kind": "error", "count": 0}, "count"),
    ({"kind": "error", "status": 418}, "status"),
    ({"kind": "latency"}, "seconds"),
    ({"kind": "hang", "apply": "sometimes"}, "apply"),
    ({"kind": "rate_limit", "retry_after": -1}, "retry_after"),
])
def test_fault_validation(sandbox: SandboxServer, client: httpx.Client, payload: dict,
                          field: str) -> None:
    r = client.post(f"{sandbox.url}/_sandbox/faults", json=payload)
    assert r.status_code == 422
    assert r.json()["field"] == field


def test_faults_endpoints(sandbox: SandboxServer, client: httpx.Client) -> None:
    r = client.post(f"{sandbox.url}/_sandbox/faults",
                    json={"provider": "flitt", "operation": "capture", "kind": "error",
                          "count": 3, "status": 502})
    assert r.status_code == 201
    assert r.json()["remaining"] == 3
    assert len(client.get(f"{sandbox.url}/_sandbox/faults").json()["faults"]) == 1
    assert client.delete(f"{sandbox.url}/_sandbox/faults").json() == {"cleared": 1}


def test_clock(sandbox: SandboxServer, client: httpx.Client) -> None:
    r = client.post(f"{sandbox.url}/_sandbox/clock",
                    json={"now": "2031-05-01T00:00:00Z", "freeze": True})
    assert r.json() == {"now": "2031-05-01T00:00:00.000Z", "frozen": True}
    r = client.post(f"{sandbox.url}/_sandbox/clock", json={"advance_seconds": 90})
    assert r.json()["now"] == "2031-05-01T00:01:30.000Z"
    assert sandbox.now() == dt.datetime(2031, 5, 1, 0, 1, 30, tzinfo=dt.UTC)
    for bad in ({}, {"now": "x"}, {"advance_seconds": "x"},
                {"now": "2031-05-01T00:00:00Z", "advance_seconds": 1}):
        assert client.post(f"{sandbox.url}/_sandbox/clock", json=bad).status_code == 422
    assert client.post(f"{sandbox.url}/_sandbox/clock", content=b"{").json()["field"] == "body"


def test_ledger_requests_reset_health(sandbox: SandboxServer, client: httpx.Client) -> None:
    sandbox.create_order("smartpay", "o1", 100, "JPY")
    client.put(f"{sandbox.base_urls()['smartpay']}/orders/o1/cancellation",
               headers={"Authorization": f"Basic {SMARTPAY_SECRET_KEY}"})
    ledger = client.get(f"{sandbox.url}/_sandbox/ledger").json()["entries"]
    assert [(e["seq"], e["operation"], e["amount"]) for e in ledger] == [(1, "cancel", 100)]
    assert client.get(f"{sandbox.url}/_sandbox/ledger?provider=flitt").json()["entries"] == []
    assert len(client.get(f"{sandbox.url}/_sandbox/requests").json()["entries"]) == 1
    assert client.get(f"{sandbox.url}/_sandbox/health").json()["orders"] == 1
    assert client.post(f"{sandbox.url}/_sandbox/reset").status_code == 200
    assert client.get(f"{sandbox.url}/_sandbox/ledger").json()["entries"] == []
    assert sandbox.order("smartpay", "o1") is None


def test_auto_create() -> None:
    with SandboxServer(auto_create=True) as server, httpx.Client() as client:
        r = client.get(f"{server.base_urls()['smartpay']}/orders/anything",
                       headers={"Authorization": f"Basic {SMARTPAY_SECRET_KEY}"})
        assert r.status_code == 200
        assert r.json()["status"] == "requires_capture"


def test_python_api_validation(sandbox: SandboxServer) -> None:
    with pytest.raises(ValueError, match="amount"):
        sandbox.create_order("smartpay", "o1", -1, "JPY")


@pytest.mark.slow
def test_cli_process() -> None:
    with subprocess.Popen(
            [sys.executable, "-m", "watchdog.sandbox", "--port", "0"], cwd=ROOT,
            stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = line.rsplit(" ", 1)[-1].strip()
            assert url.startswith("http://127.0.0.1:")
            assert httpx.get(f"{url}/_sandbox/health").json()["status"] == "ok"
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
