"""Smartpay behaviour of the sandbox, over real HTTP."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from watchdog.sandbox import SandboxServer
from watchdog.sandbox.smartpay import SMARTPAY_SECRET_KEY

pytestmark = pytest.mark.wallclock

AUTH = {"Authorization": f"Basic {SMARTPAY_SECRET_KEY}"}


def _capture(client: httpx.Client, sandbox: SandboxServer, amount: int, *, key: str | None = None,
             remainder: str | None = None, order: str = "order_test_1") -> httpx.Response:
    headers = dict(AUTH)
    if key:
        headers["Idempotency-Key"] = key
    body: dict[str, object] = {"order": order, "amount": amount, "currency": "JPY"}
    if remainder:
        body["cancelRemainder"] = remainder
    return client.post(f"{sandbox.base_urls()['smartpay']}/payments", json=body, headers=headers)


def _order(client: httpx.Client, sandbox: SandboxServer, order: str = "order_test_1") -> dict:
    r = client.get(f"{sandbox.base_urls()['smartpay']}/orders/{order}", headers=AUTH)
    assert r.status_code == 200
    return r.json()


@pytest.fixture
def order(sandbox: SandboxServer) -> dict:
    return sandbox.create_order("smartpay", "order_test_1", 10_000, "JPY")


def test_auth_refused(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    base = sandbox.base_urls()["smartpay"]
    r = client.get(f"{base}/orders/order_test_1", headers={"Authorization": "Basic wrong"})
    assert r.status_code == 401
    assert r.json()["errorCode"] == "unauthorized"
    import base64

    b64 = base64.b64encode(SMARTPAY_SECRET_KEY.encode()).decode()
    r = client.get(f"{base}/orders/order_test_1", headers={"Authorization": f"Basic {b64}"})
    assert r.status_code == 401


def test_full_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    before = _order(client, sandbox)
    assert before["status"] == "requires_capture"
    assert before["expiresAt"] == int(
        dt.datetime.fromisoformat(order["expires_at"]).timestamp() * 1000)
    r = _capture(client, sandbox, 10_000, key="k1")
    assert r.status_code == 201
    payment = r.json()
    assert payment["object"] == "payment"
    assert payment["amount"] == 10_000
    assert payment["status"] == "processed"
    after = _order(client, sandbox)
    assert after["status"] == "succeeded"
    assert after["payments"] == [payment["id"]]
    [entry] = sandbox.ledger()
    assert entry["operation"] == "capture"
    assert entry["amount"] == 10_000
    assert entry["idempotency_key"] == "k1"


def test_partial_capture_automatic_cancels_remainder(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    assert _capture(client, sandbox, 4_000).status_code == 201
    assert _order(client, sandbox)["status"] == "succeeded"
    r = _capture(client, sandbox, 1_000)
    assert r.status_code == 409
    assert r.json()["errorCode"] == "order.cannot-capture"


def test_manual_remainder_allows_more_captures(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    assert _capture(client, sandbox, 4_000, remainder="manual").status_code == 201
    assert _order(client, sandbox)["status"] == "requires_capture"
    r = _capture(client, sandbox, 7_000, remainder="manual")
    assert r.status_code == 409
    assert r.json()["errorCode"] == "payment.excessive-amount"
    assert _capture(client, sandbox, 6_000, remainder="manual").status_code == 201
    assert _order(client, sandbox)["status"] == "succeeded"
    assert [e["amount"] for e in sandbox.ledger()] == [4_000, 6_000]


def test_over_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _capture(client, sandbox, 10_001)
    assert r.status_code == 409
    assert r.json()["errorCode"] == "payment.excessive-amount"
    assert sandbox.ledger() == []


def test_unknown_order(sandbox: SandboxServer, client: httpx.Client) -> None:
    r = _capture(client, sandbox, 100, order="nope")
    assert r.status_code == 404
    assert r.json()["errorCode"] == "order.not-found"


def test_cancel_then_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    base = sandbox.base_urls()["smartpay"]
    r = client.put(f"{base}/orders/order_test_1/cancellation", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["status"] == "canceled"
    r = _capture(client, sandbox, 100)
    assert r.status_code == 409
    assert r.json()["errorCode"] == "order.cannot-capture"
    # canceled is cancellable again, without a second effect
    assert client.put(f"{base}/orders/order_test_1/cancellation", headers=AUTH).status_code == 200
    assert [(e["operation"], e["amount"]) for e in sandbox.ledger()] == [("cancel", 10_000)]


def test_cancel_after_full_capture_refused(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    _capture(client, sandbox, 10_000)
    r = client.put(f"{sandbox.base_urls()['smartpay']}/orders/order_test_1/cancellation",
                   headers=AUTH)
    assert r.status_code == 409
    assert r.json()["errorCode"] == "order.cannot-cancel"


def test_capture_after_expiry(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.advance(dt.timedelta(days=7, seconds=1))
    assert _order(client, sandbox)["status"] == "canceled"
    r = _capture(client, sandbox, 100)
    assert r.status_code == 409
    assert r.json()["errorCode"] == "order.cannot-capture"
    assert "expired" in r.json()["message"]


def test_expiry_boundary(sandbox: SandboxServer, client: httpx.Client) -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    sandbox.set_now(start, freeze=True)
    sandbox.create_order("smartpay", "o2", 500, "JPY", authorized_at=start)
    sandbox.set_now(start + dt.timedelta(days=7, seconds=-1), freeze=True)
    assert _order(client, sandbox, "o2")["status"] == "requires_capture"
    sandbox.set_now(start + dt.timedelta(days=7), freeze=True)
    assert _order(client, sandbox, "o2")["status"] == "canceled"


def test_idempotent_replay(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    first = _capture(client, sandbox, 3_000, key="same")
    second = _capture(client, sandbox, 3_000, key="same")
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first.headers
    assert len(sandbox.ledger()) == 1
    reused = _capture(client, sandbox, 2_000, key="same")
    assert reused.status_code == 400
    # after 6 hours the key is forgotten
    sandbox.advance(dt.timedelta(hours=6))
    assert _capture(client, sandbox, 3_000, key="same").status_code == 409


def test_drop_after_apply_then_retry(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("smartpay", "capture", "drop_after_apply")
    with pytest.raises(httpx.TransportError):
        _capture(client, sandbox, 10_000, key="retry-me")
    r = _capture(client, sandbox, 10_000, key="retry-me")
    assert r.status_code == 201
    assert r.headers["Idempotency-Replayed"] == "true"
    assert len(sandbox.ledger()) == 1
