"""Money in integer minor units, converted to each provider's wire format only at the edge."""

from __future__ import annotations

from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact, InvalidOperation, Overflow

# ISO 4217 minor-unit exponents for the currencies the four providers settle in,
# plus the common ones a merchant may hold. A currency not listed is rejected.
CURRENCY_EXPONENTS: dict[str, int] = {
    "JPY": 0, "KRW": 0, "HUF": 2, "ISK": 0, "CLP": 0, "VND": 0,
    "GBP": 2, "EUR": 2, "USD": 2, "GEL": 2, "AUD": 2, "NZD": 2, "CAD": 2,
    "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "UAH": 2,
    "KZT": 2, "AZN": 2, "AMD": 2, "MDL": 2, "RON": 2, "BGN": 2, "TRY": 2,
    "SGD": 2, "HKD": 2, "TWD": 2, "MXN": 2,
    "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}


# Larger than any real authorization, small enough that ``int()`` of a hostile "1e999999999"
# is refused instead of building a billion-digit integer.
MAX_MINOR = 10**18


class CurrencyError(ValueError):
    """The currency is not one the watchdog can represent exactly."""


def exponent(currency: str) -> int:
    """Return the number of minor-unit digits of ``currency``; raise CurrencyError if unknown."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise CurrencyError(
            f"currency {currency!r} is not a supported ISO 4217 code "
            f"(supported: {', '.join(sorted(CURRENCY_EXPONENTS))})"
        ) from None


def to_major(minor: int, currency: str) -> Decimal:
    """Convert integer minor units to an exact major-unit Decimal (1820 GBP -> 18.20)."""
    exp = exponent(currency)
    return (Decimal(minor) / (Decimal(10) ** exp)).quantize(Decimal(1).scaleb(-exp))


def to_major_string(minor: int, currency: str) -> str:
    """Render minor units as a major-unit decimal string with the currency's digits ("18.20")."""
    return format(to_major(minor, currency), "f")


def from_major(value: str | int | float | Decimal, currency: str) -> int:
    """Convert a provider's major-unit amount back to minor units; refuse one that is not exact."""
    exp = exponent(currency)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"amount {value!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"amount {value!r} is not a finite number")
    if amount.copy_abs() > MAX_MINOR:
        raise ValueError(f"amount {value!r} is implausibly large for {currency}")
    # scaleb() rounds to the context's precision (28 digits by default) and flushes tiny
    # exponents to zero, which would turn "1.0000…0001" or "1e-999999999" into a whole
    # number; a context as precise as the amount itself keeps the shift exact.
    exact = Context(prec=max(len(amount.as_tuple().digits), 1), Emin=MIN_EMIN, Emax=MAX_EMAX,
                    traps=[InvalidOperation, Inexact, Overflow])
    minor = amount.scaleb(exp, context=exact)
    if minor != minor.to_integral_value(context=exact):
        raise ValueError(f"amount {value!r} has more than {exp} decimals for {currency}")
    if minor.copy_abs() > MAX_MINOR:
        raise ValueError(f"amount {value!r} is implausibly large for {currency}")
    return int(minor)


def format_money(minor: int, currency: str) -> str:
    """Human display: ``18.20 GBP``."""
    try:
        return f"{to_major_string(minor, currency)} {currency}"
    except CurrencyError:
        return f"{minor} (minor units) {currency}"
