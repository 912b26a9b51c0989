"""Odd answers: never a crash, never a guessed success, raw kept for the audit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.support.providers import ALL, adapter_with, ref, respond, run
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome, ProviderState
from watchdog.providers.http import parse_retry_after

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


async def _all_ops(provider: ProviderName, answer: Any) -> dict[str, Any]:
    adapter, _, client = adapter_with(provider, answer)
    async with client:
        return {
            "capture": await adapter.capture(ref("o-1", 5000, "GBP"), 1820, "k", final=True),
            "cancel": await adapter.cancel(ref("o-1", 5000, "GBP"), "k"),
            "status": await adapter.status(ref("o-1", 5000, "GBP")),
        }


@pytest.mark.parametrize("provider", ALL)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_empty_5xx_is_retryable(provider: ProviderName, status: int) -> None:
    for op, result in run(_all_ops(provider, respond(status))).items():
        assert result.outcome is Outcome.RETRYABLE, (op, result.describe())
        assert result.http_status == status


@pytest.mark.parametrize("provider", ALL)
def test_html_error_page(provider: ProviderName) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1>" + "x" * 5000 + "</body></html>"
    for result in run(_all_ops(provider, respond(502, text=page))).values():
        assert result.outcome is Outcome.RETRYABLE
        assert isinstance(result.raw, str)
        assert result.raw.startswith("<html>")
        assert len(result.raw) <= 2048


@pytest.mark.parametrize("provider", ALL)
@pytest.mark.parametrize(
    "answer",
    [
        respond(200, text="{not json"),
        respond(200, text="<html>ok</html>"),
        respond(200),
        respond(200, {}),
        respond(200, []),
        respond(201, {"unexpected": True}),
        respond(200, {"response": {"response_status": "success"}}),
    ],
    ids=["bad-json", "html", "empty", "empty-object", "list", "missing-fields", "flitt-bare"],
)
def test_malformed_2xx_is_unknown_for_money_retryable_for_status(
    provider: ProviderName, answer: Any
) -> None:
    results = run(_all_ops(provider, answer))
    assert results["capture"].outcome is Outcome.UNKNOWN, results["capture"].describe()
    assert results["cancel"].outcome is Outcome.UNKNOWN, results["cancel"].describe()
    assert results["status"].outcome is Outcome.RETRYABLE, results["status"].describe()
    assert all(r.money_moved is not True for r in results.values())


@pytest.mark.parametrize("provider", [ProviderName.SMARTPAY, ProviderName.JPMMPS,
                                      ProviderName.CLEARPAY])
@pytest.mark.parametrize("retry_after", ["7", "Sat, 01 Mar 2025 12:00:30 GMT"])
def test_429_with_retry_after(provider: ProviderName, retry_after: str) -> None:
    results = run(_all_ops(provider, respond(429, {"errorCode": "rate_limited"},
                                             headers={"Retry-After": retry_after})))
    for result in results.values():
        assert result.outcome is Outcome.RETRYABLE
        assert result.retry_after is not None
        assert result.retry_after >= 0


def test_parse_retry_after() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 2.5 ", NOW) == 2.5
    assert parse_retry_after("-3", NOW) == 0.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("nan", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("", NOW) is None


@pytest.mark.parametrize("provider", ALL)
@pytest.mark.parametrize("status", [401, 403])
def test_bad_credentials(provider: ProviderName, status: int) -> None:
    async def scenario() -> Any:
        adapter, _, client = adapter_with(provider, respond(status, {"errorCode": "unauthorized",
                                                                     "errorId": "e-1"}))
        async with client:
            return await adapter.check()

    result = run(scenario())
    assert result.outcome is Outcome.REJECTED
    assert "credentials" in result.message
    assert result.http_status == status


# ---------------------------------------------------------------------- Smartpay specifics


@pytest.mark.parametrize(
    ("status", "code", "message", "outcome"),
    [
        (404, "order.not-found", "Order not found", Outcome.REJECTED),
        (409, "order.cannot-capture", "The order has already been captured",
         Outcome.ALREADY_DONE),
        (409, "order.cannot-capture", "The order has expired", Outcome.REJECTED),
        (409, "payment.excessive-amount", "Amount exceeds the remainder", Outcome.REJECTED),
        (400, "request.invalid", "bad", Outcome.REJECTED),
    ],
)
def test_smartpay_capture_errors(status: int, code: str, message: str, outcome: Outcome) -> None:
    body = {"errorCode": code, "message": message, "details": []}

    async def scenario() -> Any:
        adapter, _, client = adapter_with(
            ProviderName.SMARTPAY, respond(status, body, headers={"X-Request-Id": "rq-7"}))
        async with client:
            return await adapter.capture(ref("o", 5000, "JPY"), 5000, "k", final=True)

    result = run(scenario())
    assert result.outcome is outcome
    assert result.provider_code == code
    assert result.request_id == "rq-7"
    assert result.raw == body


def test_smartpay_cannot_cancel_is_rejected() -> None:
    async def scenario() -> Any:
        adapter, _, client = adapter_with(ProviderName.SMARTPAY, respond(
            409, {"errorCode": "order.cannot-cancel", "message": "succeeded"}))
        async with client:
            return await adapter.cancel(ref("o", 5000, "JPY"), "k")

    assert run(scenario()).outcome is Outcome.REJECTED


@pytest.mark.parametrize(
    ("order", "state", "captured", "open_amount"),
    [
        ({"status": "requires_capture", "amount": 8000, "payments": []},
         ProviderState.AUTHORIZED, 0, 8000),
        ({"status": "requires_capture", "amount": 8000,
          "payments": [{"id": "p1", "amount": 3000}]},
         ProviderState.PARTIALLY_CAPTURED, 3000, 5000),
        ({"status": "requires_capture", "amount": 8000, "payments": ["p1"]},
         ProviderState.PARTIALLY_CAPTURED, None, None),
        ({"status": "succeeded", "amount": 8000, "payments": [{"id": "p1", "amount": 8000}]},
         ProviderState.CAPTURED, 8000, 0),
        ({"status": "canceled", "amount": 8000, "expiresAt": 1_740_000_000_000,
          "updatedAt": 1_700_000_000_000}, ProviderState.CANCELED, None, 0),
        ({"status": "canceled", "amount": 8000, "expiresAt": 1_740_000_000_000,
          "updatedAt": 1_740_000_000_000}, ProviderState.EXPIRED, None, 0),
        ({"status": "rejected", "amount": 8000}, ProviderState.DECLINED, None, 0),
        ({"status": "requires_authorization", "amount": 8000}, ProviderState.PENDING, None,
         None),
    ],
)
def test_smartpay_status_mapping(
    order: dict[str, Any], state: ProviderState, captured: int | None, open_amount: int | None
) -> None:
    async def scenario() -> Any:
        adapter, _, client = adapter_with(ProviderName.SMARTPAY, respond(200, order))
        async with client:
            return await adapter.status(ref("o", 8000, "JPY"))

    result = run(scenario())
    assert result.outcome is Outcome.SUCCEEDED
    assert result.snapshot.state is state
    assert result.snapshot.captured_amount == captured
    assert result.snapshot.open_amount == open_amount


def test_smartpay_expires_at_is_aware_utc() -> None:
    order = {"status": "requires_capture", "amount": 1, "expiresAt": 1_740_830_400_000}

    async def scenario() -> Any:
        adapter, _, client = adapter_with(ProviderName.SMARTPAY, respond(200, order))
        async with client:
            return await adapter.status(ref("o", 1, "JPY"))

    expires = run(scenario()).snapshot.expires_at
    assert expires == dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


# ---------------------------------------------------------------------- unknown statuses


@pytest.mark.parametrize(
    ("provider", "body", "raw_state"),
    [
        (ProviderName.SMARTPAY, {"status": "on_fire", "amount": 1}, "on_fire"),
        (ProviderName.JPMMPS, {"paymentStatus": "REFUND_LIMBO"}, "REFUND_LIMBO"),
        (ProviderName.FLITT, {"response": {"response_status": "success",
                                           "order_status": "limbo"}}, "limbo"),
        (ProviderName.CLEARPAY, {"paymentState": "FROZEN"}, "FROZEN"),
    ],
)
def test_unknown_status_string_is_unrecognised(
    provider: ProviderName, body: dict[str, Any], raw_state: str
) -> None:
    async def scenario() -> Any:
        adapter, _, client = adapter_with(provider, respond(200, body))
        async with client:
            return await adapter.status(ref("o", 100, "EUR"))

    result = run(scenario())
    assert result.outcome is Outcome.UNKNOWN
    assert result.snapshot.state is ProviderState.UNRECOGNISED
    assert result.snapshot.raw_state == raw_state
    assert result.raw is not None


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("AUTHORIZATION_COMPLETED", ProviderState.AUTHORIZED),
        ("CAPTURE_PENDING", ProviderState.CAPTURE_PENDING),
        ("CAPTURED", ProviderState.CAPTURED),
        ("SETTLED", ProviderState.CAPTURED),
        ("CANCELLED", ProviderState.CANCELED),
        ("CREATED", ProviderState.PENDING),
        ("AUTORIZATION_INITIALIZED", ProviderState.PENDING),
        ("AUTHORIZATION_EXPIRED", ProviderState.EXPIRED),
    ],
)
def test_jpmmps_status_mapping(raw: str, state: ProviderState) -> None:
    body = {"paymentStatus": raw, "transactionOverview": {"amount": 18.2, "currencyCode": "EUR"}}

    async def scenario() -> Any:
        adapter, _, client = adapter_with(ProviderName.JPMMPS, respond(200, body))
        async with client:
            return await adapter.status(ref("o", 1820, "EUR"))

    result = run(scenario())
    assert result.outcome is Outcome.SUCCEEDED
    assert result.snapshot.state is state
    if state is ProviderState.AUTHORIZED:
        assert result.snapshot.open_amount == 1820


@pytest.mark.parametrize(
    ("raw", "outcome", "state"),
    [
        ("CAPTURED", Outcome.SUCCEEDED, ProviderState.CAPTURED),
        ("CAPTURE_PENDING", Outcome.PENDING, ProviderState.CAPTURE_PENDING),
        ("CANCELLED", Outcome.REJECTED, ProviderState.CANCELED),
        ("AUTHORIZATION_COMPLETED", Outcome.UNKNOWN, ProviderState.AUTHORIZED),
    ],
)
def test_jpmmps_capture_answer(raw: str, outcome: Outcome, state: ProviderState) -> None:
    async def scenario() -> Any:
        adapter, _, client = adapter_with(ProviderName.JPMMPS, respond(200, {"paymentStatus": raw}))
        async with client:
            return await adapter.capture(ref("o", 1820, "EUR"), 1820, "k", final=True)

    result = run(scenario())
    assert result.outcome is outcome
    assert result.snapshot.state is state


# ---------------------------------------------------------------------- Flitt specifics


def _flitt(**fields: Any) -> Any:
    return respond(200, {"response": fields})


@pytest.mark.parametrize(
    ("code", "outcome"),
    [("1018", Outcome.REJECTED), ("1014", Outcome.REJECTED), ("1007", Outcome.REJECTED),
     ("1000", Outcome.REJECTED), ("1002", Outcome.RETRYABLE), ("4242", Outcome.UNKNOWN)],
)
def test_flitt_failure_on_http_200(code: str, outcome: Outcome) -> None:
    answer = _flitt(response_status="failure", error_code=int(code), error_message="nope",
                    request_id="fl-req-1")
    results = run(_all_ops(ProviderName.FLITT, answer))
    assert results["capture"].outcome is outcome
    assert results["capture"].provider_code == code
    assert results["capture"].request_id == "fl-req-1"
    assert results["status"].outcome is (
        Outcome.RETRYABLE if outcome is Outcome.UNKNOWN else outcome)


def test_flitt_capture_hold_is_pending_not_success() -> None:
    result = run(_all_ops(ProviderName.FLITT, _flitt(response_status="success",
                                                     capture_status="hold")))["capture"]
    assert result.outcome is Outcome.PENDING
    assert result.money_moved is None
    assert result.snapshot.state is ProviderState.CAPTURE_PENDING


@pytest.mark.parametrize("reverse_status", ["created", "processing"])
def test_flitt_unfinished_reversal_is_pending(reverse_status: str) -> None:
    result = run(_all_ops(ProviderName.FLITT, _flitt(response_status="success",
                                                     reverse_status=reverse_status)))["cancel"]
    assert result.outcome is Outcome.PENDING, result.describe()


@pytest.mark.parametrize(
    ("mod_status", "state", "captured"),
    [
        (None, ProviderState.CAPTURED, 1820),
        ("COMPLETED", ProviderState.CAPTURED, 1820),
        ("PENDING", ProviderState.CAPTURE_PENDING, None),
        ("FAILED", ProviderState.CAPTURED, None),
        ("SOMETHING_NEW", ProviderState.UNRECOGNISED, None),
    ],
)
def test_jpmmps_capture_counts_only_by_its_own_status(
    mod_status: str | None, state: ProviderState, captured: int | None
) -> None:
    mod: dict[str, Any] = {"modificationData": {"type": "CAPTURE", "amount": 18.2,
                                                "currencyCode": "EUR"}}
    if mod_status is not None:
        mod["status"] = mod_status
    body = {"paymentStatus": "CAPTURED", "modifications": [mod],
            "transactionOverview": {"amount": 18.2, "currencyCode": "EUR"}}

    async def scenario() -> Any:
        adapter, _, client = adapter_with(ProviderName.JPMMPS, respond(200, body))
        async with client:
            return await adapter.status(ref("o", 1820, "EUR"))

    result = run(scenario())
    assert result.snapshot.state is state, result.describe()
    assert result.snapshot.captured_amount == captured


@pytest.mark.parametrize(
    ("order", "state", "captured"),
    [
        ({"order_status": "approved", "actual_amount": 1000,
          "additional_info": '{"capture_status": null}'}, ProviderState.AUTHORIZED, 0),
        ({"order_status": "approved", "actual_amount": 1000,
          "additional_info": '{"capture_status": "hold"}'}, ProviderState.AUTHORIZED, 0),
        ({"order_status": "approved", "actual_amount": 1000,
          "additional_info": '{"capture_status": "captured", "capture_amount": 600}'},
         ProviderState.CAPTURED, 600),
        ({"order_status": "reversed", "actual_amount": 1000}, ProviderState.CANCELED, 0),
        ({"order_status": "expired", "actual_amount": 1000}, ProviderState.EXPIRED, 0),
        ({"order_status": "declined", "actual_amount": 1000}, ProviderState.DECLINED, 0),
        ({"order_status": "processing"}, ProviderState.PENDING, None),
        ({"order_status": "approved", "additional_info": '{"capture_status": "weird"}'},
         ProviderState.UNRECOGNISED, None),
    ],
)
def test_flitt_status_mapping(order: dict[str, Any], state: ProviderState,
                              captured: int | None) -> None:
    result = run(_all_ops(ProviderName.FLITT, _flitt(response_status="success", **order)))
    snap = result["status"].snapshot
    assert snap.state is state
    assert snap.captured_amount == captured


# ---------------------------------------------------------------------- Clearpay specifics


@pytest.mark.parametrize(
    ("status", "code", "capture", "void"),
    [
        (409, "conflict", Outcome.RETRYABLE, Outcome.RETRYABLE),
        (410, "payment_captured", Outcome.ALREADY_DONE, Outcome.REJECTED),
        (412, "payment_voided", Outcome.REJECTED, Outcome.REJECTED),
        (412, "payment_expired", Outcome.REJECTED, Outcome.REJECTED),
        (412, "invalid_state", Outcome.REJECTED, Outcome.REJECTED),
        (412, "error", Outcome.REJECTED, Outcome.REJECTED),
        (422, "invalid_amount", Outcome.REJECTED, Outcome.REJECTED),
        (422, "invalid_object", Outcome.REJECTED, Outcome.REJECTED),
        (404, "not_found", Outcome.REJECTED, Outcome.REJECTED),
        (400, "invalid_json", Outcome.REJECTED, Outcome.REJECTED),
        (401, "unauthorized", Outcome.REJECTED, Outcome.REJECTED),
    ],
)
def test_clearpay_errors(status: int, code: str, capture: Outcome, void: Outcome) -> None:
    body = {"errorCode": code, "errorId": "cp-err-1", "message": "m", "httpStatusCode": status}
    results = run(_all_ops(ProviderName.CLEARPAY, respond(status, body)))
    assert results["capture"].outcome is capture
    assert results["cancel"].outcome is void
    assert results["capture"].request_id == "cp-err-1"
    assert results["capture"].provider_code == code


def test_clearpay_voided_with_expired_event_is_expired() -> None:
    body = {"paymentState": "VOIDED", "events": [{"type": "AUTH_APPROVED"},
                                                 {"type": "EXPIRED"}, {"type": "VOIDED"}]}
    snap = run(_all_ops(ProviderName.CLEARPAY, respond(200, body)))["status"].snapshot
    assert snap.state is ProviderState.EXPIRED


def test_redirect_is_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://elsewhere.test/"})

    results = run(_all_ops(ProviderName.CLEARPAY, answer))
    assert all(r.outcome is not Outcome.SUCCEEDED for r in results.values())


@pytest.mark.parametrize(
    ("overview_tx", "mod_amount", "outcome"),
    [("o", 18.2, Outcome.PENDING), ("someone-else", 18.2, Outcome.UNKNOWN),
     ("o", 99.0, Outcome.UNKNOWN)],
)
def test_jpmmps_replayed_answer_of_another_request_is_never_booked(
    overview_tx: str, mod_amount: float, outcome: Outcome,
) -> None:
    body = {"paymentStatus": "CAPTURE_PENDING",
            "transactionOverview": {"transactionId": overview_tx, "amount": 18.2,
                                    "currencyCode": "EUR"},
            "modification": {"modificationData": {"type": "CAPTURE", "amount": mod_amount,
                                                  "currencyCode": "EUR"}, "status": "PENDING"}}

    async def scenario() -> Any:
        adapter, _, client = adapter_with(ProviderName.JPMMPS, respond(200, body))
        async with client:
            return await adapter.capture(ref("o", 1820, "EUR"), 1820, "k", final=True)

    result = run(scenario())
    assert result.outcome is outcome, result.describe()
    assert result.money_moved is None
