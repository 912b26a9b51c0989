"""A throwaway Prometheus Alertmanager for tests.

    with AlertmanagerServer() as am:
        httpx.post(f"{am.url}/api/v2/alerts", json=[...])
        am.alerts()   # -> list of alert dicts from GET /api/v2/alerts

Uses Debian's ``prometheus-alertmanager`` binary (installed by
``scripts/ci-setup.sh``) with clustering disabled, a single no-op receiver and
tiny grouping intervals, listening on a free loopback port.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

from .postgres import HOST, SETUP_HINT, MissingBinaryError, ServerStartError, free_port, log_tail

READY_TIMEOUT = 30.0
BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")
FALLBACK_PATHS = (Path("/usr/bin/prometheus-alertmanager"), Path("/usr/local/bin/alertmanager"))

CONFIG = """\
# throwaway test config written by tests/support/alertmanager.py
route:
  receiver: default
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: default
"""


def find_alertmanager() -> Path:
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    for cand in FALLBACK_PATHS:
        if cand.is_file():
            return cand
    raise MissingBinaryError(
        f"Prometheus Alertmanager binary (prometheus-alertmanager) not found; {SETUP_HINT}"
    )


class AlertmanagerServer:
    """A throwaway Alertmanager. Start with ``start()`` or ``with``."""

    def __init__(self, *, ready_timeout: float = READY_TIMEOUT, config: str = CONFIG) -> None:
        self.binary = find_alertmanager()
        self.ready_timeout = ready_timeout
        self.config = config
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        if self.port is None:
            raise RuntimeError("AlertmanagerServer is not started")
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("AlertmanagerServer is not started")
        return self.base_dir / "alertmanager.log"

    def start(self) -> Self:
        if self.base_dir is not None:
            raise RuntimeError("AlertmanagerServer already started")
        self.base_dir = Path(tempfile.mkdtemp(prefix="watchdog-am-"))
        try:
            (self.base_dir / "alertmanager.yml").write_text(self.config)
            (self.base_dir / "data").mkdir()
            for attempt in range(3):
                self.port = free_port()
                try:
                    self._spawn()
                    self._wait_ready()
                    break
                except ServerStartError as exc:
                    self._terminate()
                    if attempt == 2 or "address already in use" not in str(exc).lower():
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the process and remove its temp dir. Idempotent."""
        try:
            self._terminate()
        finally:
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def alerts(
        self,
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        unprocessed: bool = True,
        filters: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Parsed ``GET /api/v2/alerts``.

        By default every non-resolved alert (active, silenced, inhibited and
        not-yet-processed). Alertmanager never lists resolved alerts here: an
        alert posted with ``endsAt`` in the past disappears from this list.
        ``filters`` are label matchers such as ``'alertname="X"'``.
        """
        params: list[tuple[str, str]] = [
            ("active", _b(active)),
            ("silenced", _b(silenced)),
            ("inhibited", _b(inhibited)),
            ("unprocessed", _b(unprocessed)),
        ]
        params += [("filter", f) for f in filters or []]
        with httpx.Client(timeout=10.0) as client:
            resp = client.get(f"{self.url}/api/v2/alerts", params=params)
            resp.raise_for_status()
            data: list[dict[str, Any]] = resp.json()
        return data

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """``POST /api/v2/alerts`` (convenience for tests)."""
        with httpx.Client(timeout=10.0) as client:
            client.post(f"{self.url}/api/v2/alerts", json=alerts).raise_for_status()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<AlertmanagerServer port={self.port} dir={self.base_dir}>"

    # -- internals -------------------------------------------------------------
    def _spawn(self) -> None:
        assert self.base_dir is not None
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={self.base_dir / 'alertmanager.yml'}",
                f"--storage.path={self.base_dir / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
                # Empty = clustering disabled (otherwise it binds 0.0.0.0:9094
                # and waits for gossip settling before /-/ready).
                "--cluster.listen-address=",
                "--log.level=info",
            ],
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        last: object = None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    last = f"process exited with code {self._proc.returncode}"
                    break
                try:
                    resp = client.get(f"{self.url}/-/ready")
                    if resp.status_code == 200:
                        return
                    last = f"HTTP {resp.status_code}"
                except httpx.TransportError as exc:
                    last = exc
                time.sleep(0.05)
        raise ServerStartError(
            f"Alertmanager on {self.url} did not become ready: {last}\n"
            f"--- log tail ({self.log_path}) ---\n{log_tail(self.log_path)}"
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elif proc is not None:
            proc.wait()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


def _b(value: bool) -> str:
    return "true" if value else "false"
