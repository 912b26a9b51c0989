"""What anchors the audit chain outside the database: the MAC key and the checkpoints.

The key never sits in the database. Looked up, in order: ``$WATCHDOG_AUDIT_KEY`` (or the
systemd credential of that name in ``$CREDENTIALS_DIRECTORY``); the file named by
``$WATCHDOG_AUDIT_KEY_FILE``; for a SQLite database, the key file beside it
(``watchdog.db.audit-key``, mode 0600, created by ``db upgrade``). A PostgreSQL database
with none of these has no key, and nothing is appended to its audit trail.

A checkpoint (last row id, row count, head MAC, time) is written after every pass to a
file outside the database, logged (``action=audit:checkpoint``) and exported as metrics,
so deleting the newest rows, truncating the table or rewriting history is caught by
``audit verify`` even by someone who can write the database. Its file: the one
``$WATCHDOG_AUDIT_CHECKPOINT`` names; else beside a SQLite database
(``watchdog.db.audit-checkpoint.json``); else ``$STATE_DIRECTORY/audit-checkpoint.json``
(systemd's ``StateDirectory=``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from watchdog.errors import WatchdogError
from watchdog.private import write_private
from watchdog.secrets import read_secret

KEY_VARIABLE = "WATCHDOG_AUDIT_KEY"
KEY_FILE_VARIABLE = "WATCHDOG_AUDIT_KEY_FILE"
CHECKPOINT_VARIABLE = "WATCHDOG_AUDIT_CHECKPOINT"
MIN_KEY_CHARS = 32
log = logging.getLogger("watchdog.audit")


class AuditKeyError(WatchdogError):
    """The audit MAC key is missing, too short or readable by others."""


def _sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL (None for in-memory or another backend)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


def key_file_for(url: str | URL, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the key file is (or would be) for the database at ``url``."""
    env = os.environ if environ is None else environ
    explicit = env.get(KEY_FILE_VARIABLE)
    if explicit:
        return Path(explicit)
    db = _sqlite_path(make_url(url) if isinstance(url, str) else url)
    return db.with_name(db.name + ".audit-key") if db is not None else None


_MEMORY_KEY = secrets.token_hex(32)  # an in-memory database dies with the process; so does this


def load_key(url: str | URL, environ: Mapping[str, str] | None = None) -> bytes:
    """The audit MAC key for the database at ``url``; AuditKeyError when there is none."""
    env = os.environ if environ is None else environ
    parsed = make_url(url) if isinstance(url, str) else url
    secret = read_secret(KEY_VARIABLE, env)
    if secret:
        value = secret.reveal()
        where = f"${KEY_VARIABLE}"
    else:
        path = key_file_for(parsed, env)
        if path is None:
            if parsed.get_backend_name() == "sqlite":
                return _MEMORY_KEY.encode()
            raise AuditKeyError(
                f"no audit key for the {parsed.get_backend_name()} database: set "
                f"${KEY_VARIABLE} (or the systemd credential {KEY_VARIABLE}) or "
                f"${KEY_FILE_VARIABLE}; the key must never be stored in the database")
        try:
            mode = path.stat().st_mode
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise AuditKeyError(
                f"audit key file {path} is missing: run `expiry-watchdog db upgrade` to create "
                f"it, or restore it from your backup of the key (without it the chain "
                f"cannot be verified)") from None
        except OSError as exc:
            raise AuditKeyError(f"audit key file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditKeyError(
                f"audit key file {path} is readable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it")
        where = str(path)
    if len(value) < MIN_KEY_CHARS:
        raise AuditKeyError(f"audit key in {where} is shorter than {MIN_KEY_CHARS} characters")
    return value.encode()


def create_key_file(url: str | URL, environ: Mapping[str, str] | None = None) -> Path | None:
    """Create the key file for ``url`` (mode 0600) unless a key is configured another way or
    the file exists; return the path created, or None."""
    env = os.environ if environ is None else environ
    if read_secret(KEY_VARIABLE, env):
        return None
    path = key_file_for(url, env)
    if path is None or path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    log.warning("created audit key file %s: back it up apart from the database", path,
                extra={"action": "audit:key:created", "path": str(path)})
    return path


_KEYS: dict[str, bytes] = {}


def key_for(url: URL) -> bytes:
    """``load_key`` cached per database (an append must not read a file each time)."""
    name = url.render_as_string(hide_password=True)
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = load_key(url)
    return key


def forget_keys() -> None:
    """Drop cached keys (after a key change, and between tests)."""
    _KEYS.clear()


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's head as seen at ``at``: an anchor kept outside the database."""

    last_id: int
    rows: int
    head: str
    at: str  # ISO 8601 UTC

    def describe(self) -> str:
        """One line for people."""
        return f"{self.rows} rows up to id {self.last_id}, head {self.head}, at {self.at}"


class CheckpointError(WatchdogError):
    """A checkpoint file cannot be read or does not hold a checkpoint."""


def checkpoint_path(url: str | URL, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where checkpoints of the database at ``url`` go (None: only the log and metrics)."""
    env = os.environ if environ is None else environ
    explicit = env.get(CHECKPOINT_VARIABLE)
    if explicit:
        return Path(explicit)
    db = _sqlite_path(make_url(url) if isinstance(url, str) else url)
    if db is not None:
        return db.with_name(db.name + ".audit-checkpoint.json")
    state = env.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0]) / "audit-checkpoint.json"
    return None


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint in ``path``; None when the file does not exist."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint file {path} is unreadable: {exc}") from None
    try:
        return Checkpoint(last_id=int(raw["last_id"]), rows=int(raw["rows"]),
                          head=str(raw["head"]), at=str(raw["at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint file {path} does not hold a checkpoint: {exc}") from None


def write_checkpoint_file(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` atomically (write a private sibling of this process, then rename)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write_private(tmp, json.dumps(asdict(checkpoint), sort_keys=True) + "\n")
    os.replace(tmp, path)


def now_text(now: dt.datetime) -> str:
    """A checkpoint's time."""
    return now.astimezone(dt.UTC).isoformat(timespec="seconds")
