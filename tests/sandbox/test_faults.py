"""Fault injection and the request log."""

from __future__ import annotations

import time

import httpx
import pytest

from watchdog.sandbox import SandboxServer
from watchdog.sandbox.smartpay import SMARTPAY_SECRET_KEY

AUTH = {"Authorization": f"Basic {SMARTPAY_SECRET_KEY}"}


def _capture(client: httpx.Client, sandbox: SandboxServer, key: str = "k") -> httpx.Response:
    return client.post(f"{sandbox.base_urls()['smartpay']}/payments",
                       json={"order": "o1", "amount": 100, "currency": "JPY"},
                       headers={**AUTH, "Idempotency-Key": key})


@pytest.fixture
def order(sandbox: SandboxServer) -> dict:
    return sandbox.create_order("smartpay", "o1", 100, "JPY")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_error_applies_nothing(sandbox: SandboxServer, client: httpx.Client, order: dict,
                               status: int) -> None:
    sandbox.add_fault("smartpay", "capture", "error", status=status)
    r = _capture(client, sandbox)
    assert r.status_code == status
    assert (r.text == "") == (status != 502)
    assert sandbox.ledger() == []
    assert _capture(client, sandbox).status_code == 201  # count used up


def test_rate_limit(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("*", "*", "rate_limit", count=2, retry_after=7)
    for _ in range(2):
        r = _capture(client, sandbox)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "7"
    assert _capture(client, sandbox).status_code == 201
    assert len(sandbox.ledger()) == 1


def test_drop_before_apply(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("smartpay", "capture", "drop_before_apply")
    with pytest.raises(httpx.TransportError):
        _capture(client, sandbox)
    assert sandbox.ledger() == []
    r = _capture(client, sandbox)
    assert r.status_code == 201
    assert "Idempotency-Replayed" not in r.headers


def test_operation_filter(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("smartpay", "status", "error")
    sandbox.add_fault("clearpay", "*", "error")
    assert _capture(client, sandbox).status_code == 201
    r = client.get(f"{sandbox.base_urls()['smartpay']}/orders/o1", headers=AUTH)
    assert r.status_code == 503
    assert sandbox.clear_faults() == 1


def test_latency(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("smartpay", "capture", "latency", seconds=0.1)
    started = time.monotonic()
    assert _capture(client, sandbox).status_code == 201
    assert time.monotonic() - started >= 0.1


def test_hang_applies_after_by_default(sandbox: SandboxServer, order: dict) -> None:
    sandbox.add_fault("smartpay", "capture", "hang", seconds=0.2)
    with httpx.Client(timeout=0.05) as impatient, pytest.raises(httpx.ReadTimeout):
        _capture(impatient, sandbox, key="h")
    with httpx.Client(timeout=5.0) as client:
        deadline = time.monotonic() + 5
        while not sandbox.ledger() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(sandbox.ledger()) == 1
        r = _capture(client, sandbox, key="h")
        assert r.headers["Idempotency-Replayed"] == "true"
    assert len(sandbox.ledger()) == 1


def test_request_log(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("smartpay", "capture", "drop_before_apply")
    with pytest.raises(httpx.TransportError):
        _capture(client, sandbox)
    _capture(client, sandbox)
    log = sandbox.requests()
    assert [(e["operation"], e["status"], e["fault"]) for e in log] == [
        ("capture", None, "drop_before_apply"), ("capture", 201, None)]
    assert log[1]["method"] == "POST"
    assert log[1]["path"] == "/smartpay/v1/payments"


def test_global_latency() -> None:
    with SandboxServer(latency=0.05) as server, httpx.Client() as client:
        server.create_order("smartpay", "o1", 100, "JPY")
        started = time.monotonic()
        client.get(f"{server.base_urls()['smartpay']}/orders/o1", headers=AUTH)
        assert time.monotonic() - started >= 0.05
        started = time.monotonic()
        client.get(f"{server.url}/_sandbox/health")
        assert time.monotonic() - started < 0.05
