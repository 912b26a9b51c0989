"""Durations as operators write them; money in exact minor units."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.durations import format_duration, parse_duration
from watchdog.money import (
    CURRENCY_EXPONENTS,
    CurrencyError,
    exponent,
    format_money,
    from_major,
    to_major,
    to_major_string,
)

# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", dt.timedelta(seconds=90)),
        ("15m", dt.timedelta(minutes=15)),
        ("48h", dt.timedelta(hours=48)),
        ("7d", dt.timedelta(days=7)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        ("2w", dt.timedelta(days=14)),
        ("1h30m15s", dt.timedelta(hours=1, minutes=30, seconds=15)),
        (" 1d 12h ", dt.timedelta(days=1, hours=12)),
        ("0s", dt.timedelta(0)),
        ("3650d", dt.timedelta(days=3650)),
    ],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "48", "h", "-5m", "-48h", "+5m", "1.5h", "5 minutes", "1y", "5x", "d7",
     "1d-12h", "48h!", "forever", "\u0661\u0665m", "\uff11\uff15m"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer"):
        parse_duration(text)


def test_a_huge_duration_is_a_value_error_not_an_overflow() -> None:
    """Regression: "99999999999999999d" raised OverflowError out of timedelta()."""
    with pytest.raises(ValueError, match="longer than any deadline"):
        parse_duration("99999999999999999d")


@given(st.integers(0, 3650 * 86400))
def test_format_then_parse_round_trips(seconds: int) -> None:
    delta = dt.timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


# ------------------------------------------------------------------ money


@pytest.mark.parametrize(
    ("currency", "digits"), [("JPY", 0), ("GBP", 2), ("EUR", 2), ("GEL", 2), ("BHD", 3)]
)
def test_exponents(currency: str, digits: int) -> None:
    assert exponent(currency) == digits


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [(1820, "GBP", "18.20"), (5, "EUR", "0.05"), (1000, "JPY", "1000"), (1, "BHD", "0.001"),
     (12_345, "BHD", "12.345"), (999, "GEL", "9.99"), (0, "GBP", "0.00")],
)
def test_to_major(minor: int, currency: str, major: str) -> None:
    assert to_major_string(minor, currency) == major
    assert to_major(minor, currency) == Decimal(major)
    assert from_major(major, currency) == minor


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [("18.2", "GBP", 1820), (18, "GBP", 1800), (Decimal("18.20"), "GBP", 1820),
     ("1000", "JPY", 1000), ("1000.0", "JPY", 1000), ("1.5", "BHD", 1500), (0.1, "EUR", 10),
     ("1E+3", "JPY", 1000)],
)
def test_from_major(value: str | int | float | Decimal, currency: str, minor: int) -> None:
    assert from_major(value, currency) == minor


@pytest.mark.parametrize(
    ("value", "currency"),
    [("18.205", "GBP"), ("0.001", "EUR"), ("10.5", "JPY"), ("1.0001", "BHD"), ("abc", "GBP"),
     ("", "GBP"), ("1,00", "EUR"), (True, "GBP"), ("NaN", "GBP"), ("Infinity", "GBP"),
     ("-Infinity", "JPY"), ("sNaN", "GBP"), ("1e999999999", "GBP"), ("1e18", "GBP"),
     ("1.0000000000000000000000000001", "GBP"), ("1e-999999999", "EUR")],
)
def test_from_major_rejects_what_is_not_exact(
    value: str | int | float | Decimal, currency: str
) -> None:
    """Regression for the last seven: OverflowError / InvalidOperation / decimal.Overflow
    escaped instead of a ValueError, and scaleb() rounding to 28 digits (or flushing a tiny
    exponent to zero) made an inexact amount look whole."""
    with pytest.raises(ValueError, match=r"not a number|not a finite|decimals|implausibly"):
        from_major(value, currency)


@pytest.mark.parametrize("currency", ["XXX", "gbp", "", "GBPX", "BTC"])
def test_unknown_currency(currency: str) -> None:
    with pytest.raises(CurrencyError, match="not a supported ISO 4217"):
        exponent(currency)
    with pytest.raises(CurrencyError):
        to_major(100, currency)
    with pytest.raises(CurrencyError):
        from_major("1.00", currency)


def test_format_money() -> None:
    assert format_money(1820, "GBP") == "18.20 GBP"
    assert format_money(1820, "XXX") == "1820 (minor units) XXX"


@given(st.integers(-(10**15), 10**15), st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_to_major_then_from_major_round_trips(minor: int, currency: str) -> None:
    assert from_major(to_major(minor, currency), currency) == minor
    assert from_major(to_major_string(minor, currency), currency) == minor


@given(st.integers(0, 10**15), st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_major_string_has_exactly_the_currency_digits(minor: int, currency: str) -> None:
    text = to_major_string(minor, currency)
    digits = exponent(currency)
    if digits == 0:
        assert "." not in text
    else:
        assert len(text.split(".")[1]) == digits
