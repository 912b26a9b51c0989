"""Processes the benchmarks watch: the sandbox in its own process, CPU time from /proc."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc/<pid>/stat, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live descendants."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError, ValueError):
                total += tree_cpu_seconds(int(child))
    return total


def postgres_pid(server: Any) -> int:
    """The postmaster's pid of a running ``PostgresServer``."""
    return int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])


@dataclass
class SandboxProcess:
    """``python -m watchdog.sandbox`` in its own process (auto-creating orders)."""

    proc: subprocess.Popen[str]
    url: str

    def base_urls(self) -> dict[str, str]:
        """Each provider's base URL on this sandbox."""
        from watchdog.sandbox.server import MOUNTS

        return {name: self.url + mount for name, mount in MOUNTS.items()}

    def ledger(self) -> list[dict[str, Any]]:
        """The sandbox's effects ledger."""
        import httpx

        return list(httpx.get(self.url + "/_sandbox/ledger", timeout=60).json()["entries"])

    def reset(self) -> None:
        """Forget orders and ledger."""
        import httpx

        httpx.post(self.url + "/_sandbox/reset", timeout=60).raise_for_status()


@contextlib.contextmanager
def sandbox_process(latency: float = 0.05) -> Iterator[SandboxProcess]:
    """Start the sandbox on a free port; stop it (SIGTERM, then wait) afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchdog.sandbox", "--port", "0", "--latency", str(latency),
         "--auto-create"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        if not found:
            raise RuntimeError(f"sandbox did not start: {line!r}")
        yield SandboxProcess(proc, found.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
