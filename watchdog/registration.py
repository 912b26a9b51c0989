"""Validation of an authorization record, shared by the CLI, the import, the API and Python."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pendulum

from watchdog.accounts import DEFAULT_ACCOUNT, parse_account
from watchdog.domain import OnDeadline, ProviderName
from watchdog.errors import ValidationError
from watchdog.money import CurrencyError, exponent, format_money
from watchdog.providers import registry
from watchdog.text import printable

FIELDS = (
    "provider", "order_id", "amount", "currency", "authorized_at",
    "reference", "expires_at", "on_deadline", "capture_amount", "account",
)
REQUIRED = ("provider", "order_id", "amount", "currency", "authorized_at")
_ORDER_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")  # fullmatch: "$" allows a final newline


@dataclass(frozen=True, slots=True)
class NewAuthorization:
    """A validated record, ready to store."""

    provider: ProviderName
    order_id: str
    amount: int
    currency: str
    authorized_at: dt.datetime
    reference: str | None = None
    expires_at: dt.datetime | None = None
    on_deadline: OnDeadline | None = None
    capture_amount: int | None = None
    #: The merchant account at the provider (``watchdog.accounts``); checked against the
    #: configuration by the service, which knows it.
    account: str = DEFAULT_ACCOUNT

    def comparable(self) -> dict[str, Any]:
        """Fields that decide whether a re-registration is identical."""
        return {
            "amount": self.amount, "currency": self.currency,
            "authorized_at": self.authorized_at, "reference": self.reference,
            "expires_at": self.expires_at,
            "on_deadline": self.on_deadline.value if self.on_deadline else None,
            "capture_amount": self.capture_amount,
        }


def parse_instant(value: Any, field: str) -> dt.datetime:
    """An ISO 8601 instant with an explicit offset, as aware UTC; naive times are refused."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValidationError(field, "naive datetime; include a UTC offset")
        return value.astimezone(dt.UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be an ISO 8601 timestamp with an offset")
    text = value.strip()
    try:
        parsed = pendulum.parse(text, exact=True)
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        raise ValidationError(field, f"{value!r} is not an ISO 8601 timestamp") from None
    if not isinstance(parsed, dt.datetime):
        raise ValidationError(field, f"{value!r} is a date, not a timestamp with time and offset")
    if not re.search(r"(Z|[+-]\d{2}(:?\d{2})?)$", text):
        raise ValidationError(
            field, f"{value!r} has no UTC offset; write e.g. 2026-11-20T10:00:00+09:00"
        )
    return dt.datetime.fromtimestamp(parsed.timestamp(), tz=dt.UTC).replace(
        microsecond=parsed.microsecond
    )


def _amount(value: Any, field: str, allow_none: bool = False) -> int | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise ValidationError(field, "is required")
    if isinstance(value, bool):
        raise ValidationError(field, "must be an integer number of minor units")
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+", value.strip()):
            raise ValidationError(field, f"{value!r} is not an integer number of minor units")
        value = int(value.strip())
    if isinstance(value, float):
        # Even 1820.0 is refused: a float is how major units arrive (18.0 meaning GBP 18.00
        # would silently become 18 pence), and floats do not carry money exactly.
        raise ValidationError(
            field, f"{value!r} is a decimal number; give an integer number of minor units"
        )
    if not isinstance(value, int):
        raise ValidationError(field, "must be an integer number of minor units")
    if value <= 0:
        raise ValidationError(field, f"must be positive, got {value}")
    if value > 10**15:
        raise ValidationError(field, f"{value} is implausibly large")
    return value


def validate_record(data: Mapping[str, Any]) -> NewAuthorization:
    """Validate one record; raise ValidationError naming the first bad field."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationError(unknown[0], f"unknown field (known: {', '.join(FIELDS)})")
    for name in REQUIRED:
        if data.get(name) in (None, ""):
            raise ValidationError(name, "is required")
    try:
        provider = ProviderName(str(data["provider"]).strip().lower())
    except ValueError:
        known = ", ".join(p.value for p in ProviderName)
        raise ValidationError("provider", f"{data['provider']!r} is not one of {known}") from None
    order_id = str(data["order_id"]).strip()
    if not _ORDER_ID.fullmatch(order_id):
        raise ValidationError("order_id", "must be 1-64 characters of letters, digits, _ . : -")
    account = parse_account(data.get("account"))
    problem = registry.spec(provider).order_id_problem(order_id)
    if problem is not None:
        raise ValidationError("order_id", problem)
    currency = str(data["currency"]).strip()
    if currency != currency.upper() or len(currency) != 3:
        raise ValidationError("currency", f"{currency!r} is not an upper-case ISO 4217 code")
    try:
        exponent(currency)
    except CurrencyError as exc:
        raise ValidationError("currency", str(exc)) from None
    amount = _amount(data["amount"], "amount")
    assert amount is not None
    authorized_at = parse_instant(data["authorized_at"], "authorized_at")
    expires_at = None
    if data.get("expires_at") not in (None, ""):
        expires_at = parse_instant(data["expires_at"], "expires_at")
        if expires_at <= authorized_at:
            raise ValidationError("expires_at", "must be after authorized_at")
    on_deadline = None
    if data.get("on_deadline") not in (None, ""):
        try:
            on_deadline = OnDeadline(str(data["on_deadline"]).strip().lower())
        except ValueError:
            raise ValidationError("on_deadline", "must be capture, cancel or alert") from None
    capture_amount = _amount(data.get("capture_amount"), "capture_amount", allow_none=True)
    if capture_amount is not None and capture_amount > amount:
        raise ValidationError(
            "capture_amount",
            f"{capture_amount} exceeds amount {amount} (minor units: "
            f"{format_money(capture_amount, currency)} > {format_money(amount, currency)})")
    reference = data.get("reference")
    if reference is not None:
        reference = printable("reference", str(reference)).strip() or None
        if reference is not None and len(reference) > 128:
            raise ValidationError("reference", "at most 128 characters")
    return NewAuthorization(
        provider=provider, order_id=order_id, amount=amount, currency=currency,
        authorized_at=authorized_at, reference=reference, expires_at=expires_at,
        on_deadline=on_deadline, capture_amount=capture_amount, account=account,
    )
