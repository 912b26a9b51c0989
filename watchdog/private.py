"""Files only the service user may read: databases, their WAL/SHM, configs, keys, checkpoints.

The SQLite database, the demo's config and the CLI's database came out 0644 (the process
umask): anyone on the host could read every authorization and the audit trail. Files the
watchdog creates are created 0600 from the start (``os.open`` with the mode, so there is
no window in which they are readable); SQLite gives its ``-wal`` and ``-shm`` files the
database file's mode. A file that already exists keeps the mode its owner chose.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def touch_private(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (its directory must exist)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8), the file 0600 whether new or replaced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
