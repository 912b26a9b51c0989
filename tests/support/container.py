"""A real systemd to deploy into: a Debian bookworm tree booted with systemd-nspawn.

Why a container and not the host: the test machines run no systemd as PID 1, and
hardened units fail in production in ways no offline check sees. So the tree is
built with ``debootstrap --variant=minbase`` (about a minute, once: it is cached
under ``$WATCHDOG_TEST_CACHE``, default /var/cache/expiry-watchdog-test, keyed by
a hash of the suite, package list and mirror), and every test module boots a
throwaway overlay of it (the cached tree itself is never written to) with

    systemd-nspawn -D <overlay> --boot --register=no --keep-unit

``--register=no --keep-unit`` because the host has no systemd to register with.
Commands run inside through ``nsenter -t <container init> -a`` with a clean
environment. The container shares the host's network namespace (no
``--private-network``), so the daemon inside reaches the in-repo sandbox that the
test serves on the host's loopback. Python dependencies come from a wheelhouse
downloaded on the host (``pip download`` of deploy/requirements.lock, cached by its hash) and are
installed offline inside (``PIP_NO_INDEX=1``).

Nothing here skips: a missing tool, a failed bootstrap or a container that does
not boot fails the test with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import REPO, require_binary, run

SUITE = "bookworm"
# python3-venv: install.sh builds its venv inside; util-linux: flock, runuser, setpriv.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "util-linux")
MIRROR = os.environ.get("WATCHDOG_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("WATCHDOG_TEST_CACHE", "/var/cache/expiry-watchdog-test"))
# Where the test's files appear inside the container (read-only bind mounts).
WHEELHOUSE = "/opt/wheelhouse"
DIST = "/opt/dist"
DEPLOY = "/srv/expiry-watchdog/deploy"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*_cache",
    ".hypothesis", "demo", "*.db", "*.db-*", "bench",
)


def _key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def require_root() -> None:
    """Booting a container needs root; say so instead of failing obscurely later."""
    if os.geteuid() != 0:
        pytest.fail("the systemd container tests need root (mount, systemd-nspawn, nsenter); "
                    "run the suite as root, as CI does")


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise builds of one cache entry across concurrent test sessions."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def bootstrapped_tree() -> Path:
    """The cached minimal bookworm tree with systemd; built when absent (about a minute)."""
    require_root()
    debootstrap = require_binary("debootstrap")
    tree = CACHE / f"{SUITE}-{_key(SUITE, 'minbase', *PACKAGES, MIRROR)}"
    with _locked(tree.name):
        if (tree / ".complete").exists():
            return tree
        partial = tree.with_name(tree.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)
        log = CACHE / f"{tree.name}.debootstrap.log"
        started = time.monotonic()
        with log.open("w") as out:
            result = subprocess.run(
                [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
                 str(partial), MIRROR],
                stdout=out, stderr=subprocess.STDOUT, timeout=900, check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            pytest.fail(f"debootstrap of {SUITE} from {MIRROR} failed (exit {result.returncode}, "
                        f"log {log}):\n{tail}")
        # A container boots with an empty machine id and gets a fresh one per boot.
        (partial / "etc/machine-id").write_text("", encoding="utf-8")
        (partial / ".complete").write_text(f"{time.monotonic() - started:.0f}s\n",
                                           encoding="utf-8")
        partial.rename(tree)
    return tree


NEXT_REVISION = "u18next"
_NEXT_MIGRATION = '''"""upgrade_probe: an additive change as the next release might ship one (deploy tests)"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("upgrade_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("upgrade_probe")
'''


def _set_line(path: Path, prefix: str, line: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = next(i for i, text in enumerate(lines) if text.startswith(prefix))
    lines[index] = line + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def build_wheel(dest: Path, version: str | None = None, next_migration: bool = False) -> Path:
    """The project's wheel, built from a copy of the checkout.

    ``version`` re-versions the copy; ``next_migration`` adds one additive migration
    (revision ``NEXT_REVISION`` on top of this checkout's head), as the next release
    would, so an upgrade has a real ``db upgrade`` to run.
    """
    from watchdog.schema import HEAD_REVISION

    source = dest / "src"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    if version is not None:
        _set_line(source / "pyproject.toml", 'version = "', f'version = "{version}"')
        _set_line(source / "watchdog/__init__.py", "__version__ = ",
                  f'__version__ = "{version}"')
    if next_migration:
        (source / f"alembic/versions/9999_{NEXT_REVISION}.py").write_text(
            _NEXT_MIGRATION.format(revision=NEXT_REVISION, down=HEAD_REVISION), encoding="utf-8")
        _set_line(source / "watchdog/schema.py", "HEAD_REVISION = ",
                  f'HEAD_REVISION = "{NEXT_REVISION}"')
    out = dest / "dist"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, source],
                timeout=300)
    if built.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{built.stdout}{built.stderr}")
    shutil.rmtree(source)
    wheels = sorted(out.glob("expiry_watchdog-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def wheelhouse() -> Path:
    """The wheels deploy/requirements.lock names (cached by the lock), for offline installs
    inside: install.sh checks each against the lock's hashes, as on a real server."""
    lock = REPO / "deploy" / "requirements.lock"
    key = _key(lock.read_bytes(), f"{sys.version_info[:2]}")
    house = CACHE / f"wheels-{key}"
    with _locked(house.name):
        if (house / ".complete").exists():
            return house
        partial = house.with_name(house.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        built = run([sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes",
                     "--only-binary", ":all:", "--no-deps", "-r", lock, "-d", partial],
                    timeout=600)
        if built.returncode != 0:
            pytest.fail(f"pip download of the locked wheels failed:\n{built.stdout}{built.stderr}")
        (partial / ".complete").write_text("", encoding="utf-8")
        shutil.rmtree(house, ignore_errors=True)
        partial.rename(house)
    return house


class Machine:
    """One booted container: an overlay over the cached tree, its nspawn process, its init."""

    def __init__(self, tree: Path, workdir: Path, binds: dict[Path, str]) -> None:
        self.tree = tree
        self.workdir = workdir
        self.binds = binds
        self.root = workdir / "root"
        self.console = workdir / "console.log"
        self.name = f"wd-{uuid.uuid4().hex[:8]}"
        self.init_pid = 0
        self.boot_state = ""
        self._nspawn: subprocess.Popen[bytes] | None = None
        self._mounted = False

    # -- lifecycle -----------------------------------------------------------------------

    def boot(self, timeout: float = 120) -> str:
        """Mount the overlay, boot systemd, wait for the boot to finish; return its state."""
        nspawn = require_binary("systemd-nspawn")
        require_binary("nsenter")
        for sub in ("upper", "work", "root"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        mounted = run(["mount", "-t", "overlay", "overlay", "-o",
                       f"lowerdir={self.tree},upperdir={self.workdir / 'upper'},"
                       f"workdir={self.workdir / 'work'}", self.root])
        if mounted.returncode != 0:
            pytest.fail(f"cannot mount an overlay over {self.tree}: {mounted.stderr.strip()}")
        self._mounted = True
        binds = [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        with self.console.open("wb") as console:
            self._nspawn = subprocess.Popen(
                [nspawn, "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
                 f"--machine={self.name}", "--console=read-only", *binds],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        self.init_pid = self._find_init(deadline)
        # Until init has opened its private bus, systemctl cannot ask ("Failed to connect
        # to bus", or "offline" while the process found is not yet the container's init):
        # retry those only.
        while True:
            state = self.run("systemctl", "is-system-running", "--wait", check=False,
                             timeout=max(1.0, deadline - time.monotonic()))
            unreachable = ("Failed to connect to bus" in state.stderr
                           or state.stdout.strip() == "offline")
            if not unreachable or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        answer = state.stdout.strip()
        if answer not in ("running", "degraded"):
            failed = self.run("systemctl", "--failed", "--no-legend", check=False)
            self.fail(f"the container did not boot: is-system-running says {answer!r} "
                      f"{state.stderr.strip()}\nfailed units:\n{failed.stdout}")
        self.boot_state = answer
        return answer

    def _find_init(self, deadline: float) -> int:
        assert self._nspawn is not None
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                self.fail(f"systemd-nspawn exited with {self._nspawn.returncode} before booting")
            for task in Path(f"/proc/{self._nspawn.pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    with contextlib.suppress(OSError):
                        if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                            return int(child)
            time.sleep(0.1)
        self.fail("no systemd process appeared in the container in time")
        raise AssertionError("unreachable")

    def shutdown(self) -> None:
        """Power the container off (SIGTERM to nspawn halts it cleanly), unmount, clean up."""
        proc = self._nspawn
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._mounted:
            if run(["umount", self.root]).returncode != 0:
                run(["umount", "--lazy", self.root])
            self._mounted = False
        shutil.rmtree(self.workdir / "upper", ignore_errors=True)
        shutil.rmtree(self.workdir / "work", ignore_errors=True)

    def fail(self, message: str) -> None:
        """Fail the test with the message and the tail of the container's console."""
        tail = ""
        if self.console.exists():
            tail = "\n".join(self.console.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"{message}\n--- container console (last lines) ---\n{tail}")

    # -- inside --------------------------------------------------------------------------

    def run(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside (all namespaces, clean environment); fail on non-zero if check."""
        environment = {"PATH": CONTAINER_PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "",
                       "SYSTEMD_COLORS": "0", **(env or {})}
        command = ["nsenter", "-t", str(self.init_pid), "-a", "env", "-i",
                   *(f"{k}={v}" for k, v in environment.items()), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                check=False, input=input)
        if check and result.returncode != 0:
            pytest.fail(f"inside the container, {' '.join(args)!r} exited {result.returncode}:\n"
                        f"{result.stdout}{result.stderr}")
        return result

    def sh(self, script: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet inside."""
        return self.run("sh", "-ec", script, **kwargs)

    def write(self, path: str, text: str, mode: int = 0o600) -> None:
        """Write a file inside as root (from inside: /run and /tmp are the container's own)."""
        self.run("sh", "-ec", 'mkdir -p "$(dirname "$1")"; cat > "$1"; chmod "$2" "$1"', "-",
                 path, f"{mode:o}", input=text)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict."""
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str, since_cursor: str | None = None) -> list[dict[str, Any]]:
        """The unit's journal entries (``journalctl -o json``), oldest first."""
        args = ["journalctl", "--no-pager", "-o", "json", "-u", unit]
        if since_cursor:
            args.append(f"--after-cursor={since_cursor}")
        out = self.run(*args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def cursor(self) -> str:
        """The journal's current end, to read only what comes after it."""
        out = self.run("journalctl", "--no-pager", "-n", "1", "-o", "json").stdout.strip()
        return str(json.loads(out.splitlines()[-1])["__CURSOR"]) if out else ""

    def wait_for(self, what: str, predicate: Any, timeout: float = 30,
                 interval: float = 0.2) -> Any:
        """Poll ``predicate()`` until it returns something truthy; fail saying ``what``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        self.fail(f"timed out after {timeout:.0f}s waiting for {what} (last seen: {last!r})")
        return None
