"""Structured logs: one JSON line per event (journald/stdout), human text on a terminal.

Every event carries a stable ``action`` key (``scan:capture``, ``daemon:start`` ...).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts":..., "level":..., "action":..., "msg":..., ...extra}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class HumanFormatter(logging.Formatter):
    """``HH:MM:SS level action msg key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        action = extras.pop("action", "")
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        when = self.formatTime(record, "%H:%M:%S")
        level = record.levelname.lower()
        text = f"{when} {level:7} {action} {record.getMessage()} {tail}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(verbose: bool = False, json_logs: bool | None = None) -> None:
    """Log to stderr: JSON unless attached to a terminal (or told otherwise)."""
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("apscheduler", "httpx", "httpcore", "aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A tick skipped because the previous pass is still running is normal (coalesce,
    # max_instances=1); job failures still log at ERROR.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
