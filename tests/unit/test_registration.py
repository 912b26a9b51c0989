"""Registration records: each bad field is a ValidationError naming the field."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.domain import OnDeadline, ProviderName
from watchdog.errors import ValidationError
from watchdog.registration import parse_instant, validate_record

GOOD: dict[str, Any] = {
    "provider": "smartpay", "order_id": "order_123", "amount": 10_000, "currency": "JPY",
    "authorized_at": "2026-11-20T10:00:00+09:00",
}


def record(**changes: Any) -> dict[str, Any]:
    """The good record with ``changes``; a value of ``...`` removes the field."""
    data = dict(GOOD, **changes)
    return {k: v for k, v in data.items() if v is not ...}


def test_a_good_record() -> None:
    new = validate_record(record(reference=" ref-1 ", expires_at="2026-11-25T00:00:00Z",
                                 on_deadline="Cancel", capture_amount="6000"))
    assert new.provider is ProviderName.SMARTPAY
    assert new.order_id == "order_123"
    assert new.amount == 10_000
    assert new.authorized_at == dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
    assert new.authorized_at.utcoffset() == dt.timedelta(0)
    assert new.expires_at == dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    assert new.on_deadline is OnDeadline.CANCEL
    assert new.capture_amount == 6_000
    assert new.reference == "ref-1"


def test_csv_style_strings_are_accepted() -> None:
    new = validate_record({k: str(v) for k, v in GOOD.items()})
    assert new.amount == 10_000


def test_aware_datetime_objects_are_accepted_and_normalised() -> None:
    local = dt.datetime(2026, 3, 28, 1, 30, tzinfo=ZoneInfo("Europe/London"))
    new = validate_record(record(authorized_at=local))
    assert new.authorized_at == local
    assert new.authorized_at.tzinfo is dt.UTC


BAD: list[tuple[dict[str, Any], str, str]] = [
    (record(provider=...), "provider", "required"),
    (record(provider="paypal"), "provider", "not one of"),
    (record(provider=""), "provider", "required"),
    (record(order_id=...), "order_id", "required"),
    (record(order_id="has space"), "order_id", "1-64 characters"),
    (record(order_id="x" * 65), "order_id", "1-64"),
    (record(order_id="ordér"), "order_id", "1-64"),
    (record(provider="jpmmps", order_id="x" * 37), "order_id", "36"),
    (record(amount=...), "amount", "required"),
    (record(amount=1000.0), "amount", "integer number of minor units"),
    (record(amount=18.20), "amount", "integer number of minor units"),
    (record(amount=float("nan")), "amount", "integer"),
    (record(amount=-1), "amount", "positive"),
    (record(amount=0), "amount", "positive"),
    (record(amount="0"), "amount", "positive"),
    (record(amount="-100"), "amount", "not an integer"),
    (record(amount="ten"), "amount", "not an integer"),
    (record(amount="18.20"), "amount", "not an integer"),
    (record(amount="1e3"), "amount", "not an integer"),
    (record(amount="\u0661\u0660\u0660"), "amount", "not an integer"),
    (record(amount=True), "amount", "integer"),
    (record(amount=[100]), "amount", "integer"),
    (record(amount=10**16), "amount", "implausibly large"),
    (record(currency=...), "currency", "required"),
    (record(currency="jpy"), "currency", "upper-case"),
    (record(currency="XYZ"), "currency", "not a supported"),
    (record(currency="YEN"), "currency", "not a supported"),
    (record(currency="JPYY"), "currency", "upper-case"),
    (record(authorized_at=...), "authorized_at", "required"),
    (record(authorized_at="2026-11-20T10:00:00"), "authorized_at", "no UTC offset"),
    (record(authorized_at="2026-11-20"), "authorized_at", "is a date"),
    (record(authorized_at="yesterday"), "authorized_at", "not an ISO 8601"),
    (record(authorized_at="2026-02-30T10:00:00Z"), "authorized_at", "not an ISO 8601"),
    (record(authorized_at=1_763_600_000), "authorized_at", "ISO 8601"),
    (record(authorized_at=dt.datetime(2026, 11, 20, 10)), "authorized_at", "naive"),
    (record(expires_at="2026-11-20T01:00:00Z"), "expires_at", "after authorized_at"),
    (record(expires_at="2026-11-19T00:00:00+00:00"), "expires_at", "after authorized_at"),
    (record(expires_at="2026-11-25T00:00:00"), "expires_at", "no UTC offset"),
    (record(on_deadline="explode"), "on_deadline", "capture, cancel or alert"),
    (record(capture_amount=10_001), "capture_amount", "exceeds amount"),
    (record(capture_amount=0), "capture_amount", "positive"),
    (record(capture_amount=12.5), "capture_amount", "integer"),
    (record(reference="r" * 129), "reference", "128"),
    (record(amout=100), "amout", "unknown field"),
    (record(secret_key="sk_live_x"), "secret_key", "unknown field"),
]


@pytest.mark.parametrize(("data", "field", "reason"), BAD,
                         ids=[f"{field}-{i}" for i, (_, field, _) in enumerate(BAD)])
def test_each_bad_field_is_named(data: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_record(data)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_a_float_amount_is_refused_even_when_whole() -> None:
    """Regression: 18.0 was accepted as 18 minor units; a float is how major units arrive
    (GBP 18.00 would have become 18 pence) and floats do not carry money exactly."""
    with pytest.raises(ValidationError, match=r"^amount: "):
        validate_record(record(currency="GBP", amount=18.0))


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1),
                    timezones=st.sampled_from([dt.UTC, ZoneInfo("Europe/London"),
                                               ZoneInfo("Asia/Tokyo"),
                                               dt.timezone(dt.timedelta(hours=-9, minutes=-30))]),
                    allow_imaginary=False))
def test_parse_instant_keeps_the_exact_instant(value: dt.datetime) -> None:
    parsed = parse_instant(value.isoformat(), "authorized_at")
    # astimezone(UTC) first: PEP 495 makes == across zones False for an ambiguous wall time.
    assert parsed == value.astimezone(dt.UTC)
    assert parsed.tzinfo is dt.UTC


@pytest.mark.parametrize("text", ["2026-11-20T10:00:00Z", "2026-11-20T10:00:00+00:00",
                                  "2026-11-20T19:00:00+09:00", "2026-11-20T05:00:00-05:00",
                                  "2026-11-20T10:00:00.000+00", "2026-11-20 10:00:00Z"])
def test_parse_instant_spellings_of_one_instant(text: str) -> None:
    assert parse_instant(text, "authorized_at") == dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
