"""Reading one table of the TOML configuration: unknown keys, wrong types and bad values,
each a ConfigError that names the field by its full path (``providers.flitt.window``,
``alerts.sinks[1].url``) and says what is wrong.

Every section parser (``watchdog.config`` for the core tables and ``[metrics]``,
``watchdog.alerts.settings`` for ``[alerts]``) reads its values through these, so a
key is checked, and its problem worded, the same way in every table. ``where`` is the
path of the table being read (``""`` at the top level).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from watchdog.durations import parse_duration
from watchdog.errors import ConfigError


def join(where: str, key: str) -> str:
    """The full path of ``key`` in the table at ``where``."""
    return f"{where}.{key}" if where else key


def table(data: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    """The sub-table ``key`` (empty when absent); it must be a table."""
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{join(where, key)}: must be a table, got {type(value).__name__}")
    return value


def only_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Refuse the first unknown key, listing the ones allowed here (a typo is never ignored)."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{join(where, unknown[0])}: unknown key (allowed here: {', '.join(sorted(allowed))})"
        )


def duration(
    data: Mapping[str, Any], key: str, where: str, default: dt.timedelta, example: str = "48h"
) -> dt.timedelta:
    """A duration written as a string (``"48h"``, ``"2d"``); ``example`` is shown when it is not."""
    if key not in data:
        return default
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f"{join(where, key)}: write durations as strings like \"{example}\"")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{join(where, key)}: {exc}") from None


def string(data: Mapping[str, Any], key: str, where: str, default: str) -> str:
    """A non-empty string."""
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{join(where, key)}: must be a non-empty string")
    return value


def boolean(data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    """``true`` or ``false`` (not 0/1, not a string)."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{join(where, key)}: must be true or false")
    return value


def number(data: Mapping[str, Any], key: str, where: str, default: float) -> float:
    """A positive integer or float (a boolean is not a number here)."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{join(where, key)}: must be a positive number")
    return float(value)


def integer(
    data: Mapping[str, Any], key: str, where: str, default: int,
    minimum: int = 0, maximum: int | None = None,
) -> int:
    """An integer within ``minimum``..``maximum``; the error gives the bound and the value."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{join(where, key)}: must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{join(where, key)}: must be {bound}, got {value}")
    return value


def positive_integer(data: Mapping[str, Any], key: str, where: str, default: int) -> int:
    """An integer of at least 1 (a count or a batch size)."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{join(where, key)}: must be a positive integer")
    return value
