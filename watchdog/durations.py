"""Durations as operators write them: ``90s``, ``15m``, ``48h``, ``7d``; combined: ``1d12h``."""

from __future__ import annotations

import datetime as dt
import re

_PART = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_SECONDS = 3650 * 86400  # ten years: far beyond any window, far below timedelta.max


def parse_duration(text: str) -> dt.timedelta:
    """Parse an operator-written duration; raise ValueError saying what is accepted."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _PART.sub("", compact):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit, e.g. 90s, 15m, 48h, 7d"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    if seconds > _MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than any deadline could be (at most 3650d)")
    return dt.timedelta(seconds=seconds)


def format_duration(delta: dt.timedelta) -> str:
    """Render a duration in the same notation ``parse_duration`` reads."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return sign + "".join(parts)
