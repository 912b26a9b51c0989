"""Structured logs: one JSON line per event (journald/stdout), human text on a terminal.

Every event carries a stable ``action`` key (``scan:capture``, ``daemon:start`` ...).
Under systemd (stderr connected to the journal) each line starts with its syslog
priority (``<4>`` for a warning), so ``journalctl -p warning`` finds what went wrong.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_SECRETS: set[str] = set()
MASK = "***"
SCRUB_MIN_LENGTH = 8


def register_secrets(*values: str | None) -> None:
    """Remember secrets (the database password's spellings, keys, tokens) so that no log
    line and no CLI error shows them, even inside a driver's message or a traceback.

    Values shorter than 8 characters are not scrubbed everywhere (masking every "test" in
    a path would garble the output); the database password is also redacted where it is
    known to stand, whatever its length (``watchdog.dberrors.redact``)."""
    for value in values:
        if value and len(value) >= SCRUB_MIN_LENGTH:
            _SECRETS.add(value)
            _SECRETS.add(json.dumps(value)[1:-1])  # as it reads inside a JSON log line


def scrub(text: str) -> str:
    """``text`` with every registered secret masked, longest first."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


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
        return scrub(json.dumps(payload, default=str))


# syslog priorities (sd-daemon(3) prefixes) of our levels.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """Another formatter's line with the ``<N>`` priority prefix journald understands."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 3 if record.levelno > logging.WARNING else 6)
        return f"<{priority}>{self.inner.format(record)}"


def stderr_is_journal() -> bool:
    """Whether stderr is the journal stream systemd set up ($JOURNAL_STREAM = device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


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
        return scrub(text)


def setup_logging(verbose: bool = False, json_logs: bool | None = None) -> None:
    """Log to stderr: JSON unless attached to a terminal (or told otherwise)."""
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = JsonFormatter() if json_logs else HumanFormatter()
    if stderr_is_journal():
        formatter = JournalFormatter(formatter)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("apscheduler", "httpx", "httpcore", "aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A tick skipped because the previous pass is still running is normal (coalesce,
    # max_instances=1); job failures still log at ERROR.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
