"""JPMMPS SmartPay behaviour of the sandbox, over real HTTP."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from watchdog.sandbox import SandboxServer
from watchdog.sandbox.jpmmps import JPMMPS_AUTHENTICATION_KEY, JPMMPS_MERCHANT_KEY

AUTH = (JPMMPS_MERCHANT_KEY, JPMMPS_AUTHENTICATION_KEY)
TX = "tx-0001"


def _capture(client: httpx.Client, sandbox: SandboxServer, mod: str, amount: float | None = None,
             *, auth: tuple[str, str] = AUTH, tx: str = TX) -> httpx.Response:
    body: dict[str, object] = {"transactionId": tx, "merchantKey": JPMMPS_MERCHANT_KEY,
                               "modificationId": mod}
    if amount is not None:
        body["modifiedAmount"] = {"amount": amount, "currencyCode": "EUR"}
    return client.post(f"{sandbox.base_urls()['jpmmps']}/payment/capture", json=body, auth=auth)


def _cancel(client: httpx.Client, sandbox: SandboxServer, mod: str) -> httpx.Response:
    body = {"transactionId": TX, "merchantKey": JPMMPS_MERCHANT_KEY, "modificationId": mod}
    return client.post(f"{sandbox.base_urls()['jpmmps']}/payment/cancel", json=body, auth=AUTH)


def _status(client: httpx.Client, sandbox: SandboxServer, tx: str = TX) -> dict:
    r = client.get(f"{sandbox.base_urls()['jpmmps']}/payment/status/{tx}", auth=AUTH)
    assert r.status_code == 200
    return r.json()


@pytest.fixture
def order(sandbox: SandboxServer) -> dict:
    return sandbox.create_order("jpmmps", TX, 1820, "EUR")


def test_auth_refused(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _capture(client, sandbox, "m1", auth=(JPMMPS_MERCHANT_KEY, "wrong"))
    assert r.status_code == 401
    r = client.get(f"{sandbox.base_urls()['jpmmps']}/payment/status/{TX}")
    assert r.status_code == 401
    body = {"transactionId": TX, "merchantKey": "other", "modificationId": "m"}
    r = client.post(f"{sandbox.base_urls()['jpmmps']}/payment/capture", json=body, auth=AUTH)
    assert r.status_code == 403
    assert sandbox.ledger() == []


def test_validation(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    body = {"transactionId": TX, "merchantKey": JPMMPS_MERCHANT_KEY, "extra": 1}
    r = client.post(f"{sandbox.base_urls()['jpmmps']}/payment/capture", json=body, auth=AUTH)
    assert r.status_code == 400
    assert "modificationId" in r.json()["message"]
    assert r.json()["ignoredProperties"] == ["extra"]
    assert _capture(client, sandbox, "x" * 65).status_code == 400
    assert _capture(client, sandbox, "m", tx="t" * 37).status_code == 400
    assert _capture(client, sandbox, "m", tx="unknown").status_code == 404


def test_full_capture_is_pending_then_captured(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    assert _status(client, sandbox)["paymentStatus"] == "AUTHORIZATION_COMPLETED"
    r = _capture(client, sandbox, "m1")
    assert r.status_code == 200
    assert r.json()["paymentStatus"] == "CAPTURE_PENDING"
    assert r.json()["modification"]["modificationData"]["type"] == "CAPTURE"
    status = _status(client, sandbox)
    assert status["paymentStatus"] == "CAPTURED"
    assert status["transactionOverview"]["amount"] == 18.2
    assert status["transactionOverview"]["currencyCode"] == "EUR"
    [entry] = sandbox.ledger()
    assert (entry["operation"], entry["amount"], entry["idempotency_key"]) == (
        "capture", 1820, "m1")


def test_settle_delay() -> None:
    with SandboxServer(jpmmps_capture_settle_seconds=60) as server, httpx.Client() as client:
        server.create_order("jpmmps", TX, 1820, "EUR")
        _capture(client, server, "m1")
        assert _status(client, server)["paymentStatus"] == "CAPTURE_PENDING"
        server.advance(dt.timedelta(seconds=61))
        assert _status(client, server)["paymentStatus"] == "CAPTURED"


def test_partial_capture_releases_rest_and_second_refused(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _capture(client, sandbox, "m1", 10.5)
    assert r.status_code == 200
    assert sandbox.order("jpmmps", TX)["released"] == 770  # type: ignore[index]
    r = _capture(client, sandbox, "m2", 1.0)
    assert r.status_code == 400
    assert r.json()["errorCode"] == "INVALID_PAYMENT_STATUS"
    assert [e["amount"] for e in sandbox.ledger()] == [1050]


def test_over_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _capture(client, sandbox, "m1", 18.21)
    assert r.status_code == 400
    assert r.json()["errorCode"] == "INVALID_AMOUNT"
    assert _capture(client, sandbox, "m2", 1.001).status_code == 400


def test_cancel_then_capture(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    r = _cancel(client, sandbox, "c1")
    assert r.status_code == 200
    assert r.json()["paymentStatus"] == "CANCELLED"
    assert _status(client, sandbox)["paymentStatus"] == "CANCELLED"
    r = _capture(client, sandbox, "m1")
    assert r.status_code == 400
    assert r.json()["errorCode"] == "INVALID_PAYMENT_STATUS"
    assert [(e["operation"], e["amount"]) for e in sandbox.ledger()] == [("cancel", 1820)]


def test_cancel_after_capture_refused(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    _capture(client, sandbox, "m1")
    assert _cancel(client, sandbox, "c1").json()["errorCode"] == "INVALID_PAYMENT_STATUS"


def test_capture_after_expiry(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.advance(dt.timedelta(days=5, seconds=1))
    assert _status(client, sandbox)["paymentStatus"] == "EXPIRED"
    r = _capture(client, sandbox, "m1")
    assert r.status_code == 400
    assert r.json()["errorCode"] == "AUTHORIZATION_EXPIRED"
    assert sandbox.ledger() == []


def test_modification_id_replay(sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    first = _capture(client, sandbox, "m1", 5.0)
    second = _capture(client, sandbox, "m1", 5.0)
    assert first.json() == second.json()
    assert len(sandbox.ledger()) == 1
    assert _capture(client, sandbox, "m1", 6.0).json()["errorCode"] == "MODIFICATION_ID_REUSED"


def test_drop_after_apply_then_retry(
        sandbox: SandboxServer, client: httpx.Client, order: dict) -> None:
    sandbox.add_fault("jpmmps", "capture", "drop_after_apply")
    with pytest.raises(httpx.TransportError):
        _capture(client, sandbox, "m1")
    r = _capture(client, sandbox, "m1")
    assert r.status_code == 200
    assert r.json()["paymentStatus"] == "CAPTURE_PENDING"
    assert len(sandbox.ledger()) == 1


def test_pending_capture_that_fails_opens_the_money_again(sandbox: SandboxServer,
                                                          client: httpx.Client) -> None:
    sandbox.create_order("jpmmps", "tx-fail-1", 1000, "EUR", settle_seconds=30,
                         settle_outcome="fail")
    sandbox.set_now(sandbox.now(), freeze=True)
    r = _capture(client, sandbox, "m-fail-1", tx="tx-fail-1")
    assert r.json()["paymentStatus"] == "CAPTURE_PENDING"
    assert r.json()["modification"]["status"] == "PENDING"
    sandbox.advance(dt.timedelta(seconds=29))
    assert _status(client, sandbox, "tx-fail-1")["paymentStatus"] == "CAPTURE_PENDING"
    sandbox.advance(dt.timedelta(seconds=1))
    status = _status(client, sandbox, "tx-fail-1")
    assert status["paymentStatus"] == "AUTHORIZATION_COMPLETED"
    assert [m["status"] for m in status["modifications"]] == ["FAILED"]
    order = sandbox.order("jpmmps", "tx-fail-1")
    assert order is not None and order["open_amount"] == 1000
    assert [e["operation"] for e in sandbox.ledger()] == ["capture", "capture_failed"]
