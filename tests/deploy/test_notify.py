"""`expiry-watchdog run` speaks systemd's notify protocol, as a real process.

The test plays systemd's part: it binds a unix datagram socket, starts the
daemon with NOTIFY_SOCKET pointing at it and WATCHDOG_USEC=2000000 (so the
heartbeat comes every second; WATCHDOG_PID unset means "this process"), and
reads what arrives: READY=1 once the schema check passed and the scheduler
runs, then WATCHDOG=1 heartbeats; SIGTERM must produce STOPPING=1 and exit 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.deploy import clean_env, run, sqlite_config, watchdog_cli

pytestmark = pytest.mark.slow  # the real daemon, run under a fake NOTIFY_SOCKET

# prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): the kernel's own (Linux >= 6.3)
# form of systemd's MemoryDenyWriteExecute=yes; inherited across execve.
_MDWE_LAUNCHER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(f"MDWE-UNSUPPORTED errno {ctypes.get_errno()}")
os.execv(sys.argv[1], sys.argv[1:])
"""


@contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket in a short temp path (sun_path holds 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="wd-notify-") as directory:
        path = os.path.join(directory, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(path)
            yield sock, path
        finally:
            sock.close()


def receive_until(sock: socket.socket, wanted: str, deadline: float, seen: list[str]) -> None:
    """Collect datagrams into ``seen`` until one contains the line ``wanted``."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no {wanted} from the daemon in time; received {seen}")
        sock.settimeout(remaining)
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            continue
        seen.append(data)
        if wanted in data.splitlines():
            return


def migrated_config(tmp_path: Path) -> Path:
    config = sqlite_config(tmp_path / "watchdog.toml", tmp_path / "watchdog.db",
                           scan_interval="1s")
    upgrade = run([watchdog_cli(), "--config", config, "db", "upgrade"], env=clean_env())
    assert upgrade.returncode == 0, upgrade.stderr
    return config


def exercise_daemon(config: Path, tmp_path: Path, launcher: list[str] | None = None) -> str:
    """Run the daemon under our fake systemd; return its log output."""
    log_path = tmp_path / "daemon.log"
    with notify_socket() as (sock, address), log_path.open("w") as log:
        env = clean_env(NOTIFY_SOCKET=address, WATCHDOG_USEC="2000000")
        proc = subprocess.Popen(
            [*(launcher or []), str(watchdog_cli()), "--config", str(config), "run"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
        try:
            seen: list[str] = []
            receive_until(sock, "READY=1", time.monotonic() + 30, seen)
            assert not any("WATCHDOG=1" in m for m in seen), f"heartbeat before READY: {seen}"
            receive_until(sock, "WATCHDOG=1", time.monotonic() + 5, seen)
            receive_until(sock, "WATCHDOG=1", time.monotonic() + 5, seen)  # and it keeps coming
            proc.send_signal(signal.SIGTERM)
            receive_until(sock, "STOPPING=1", time.monotonic() + 10, seen)
            assert proc.wait(timeout=10) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return log_path.read_text()


def test_daemon_sends_ready_heartbeats_and_stopping(tmp_path: Path) -> None:
    output = exercise_daemon(migrated_config(tmp_path), tmp_path)
    assert '"action": "daemon:start"' in output
    assert '"action": "daemon:stop"' in output


def test_daemon_runs_with_memory_deny_write_execute(tmp_path: Path) -> None:
    """The units set MemoryDenyWriteExecute=yes. The same daemon run under the
    kernel's W^X switch (PR_SET_MDWE, Linux >= 6.3) still starts, completes real
    scan passes (SQLite, HTTP client, scheduler) and stops cleanly."""
    probe = run([sys.executable, "-c", _MDWE_LAUNCHER, "/bin/true"])
    assert probe.returncode == 0, (
        f"this kernel ({os.uname().release}) cannot enforce PR_SET_MDWE (needs Linux >= 6.3): "
        f"{probe.stderr.strip()}"
    )
    output = exercise_daemon(migrated_config(tmp_path), tmp_path,
                             launcher=[sys.executable, "-c", _MDWE_LAUNCHER])
    assert '"action": "scan:pass"' in output, output


def test_daemon_never_reports_ready_on_an_unmigrated_database(tmp_path: Path) -> None:
    """READY=1 comes after the schema check: an empty database means exit 1, silence."""
    config = sqlite_config(tmp_path / "watchdog.toml", tmp_path / "empty.db")
    with notify_socket() as (sock, address):
        result = run([watchdog_cli(), "--config", config, "run"],
                     env=clean_env(NOTIFY_SOCKET=address, WATCHDOG_USEC="2000000"), timeout=30)
        sock.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except BlockingIOError:
                break
    assert result.returncode == 1
    assert "db upgrade" in result.stderr
    assert not any("READY=1" in m for m in messages), messages
