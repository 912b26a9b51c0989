"""A throwaway PostgreSQL server for tests.

    with PostgresServer() as pg:
        pg.create_database("t1")
        engine = sqlalchemy.create_engine(pg.url("t1"))
        ...
        pg.restart()          # same data dir and port

The cluster lives in a fresh temp dir, listens only on 127.0.0.1 (plus a unix
socket inside the temp dir), trusts the superuser role ``watchdog`` and trades
durability for speed (fsync/synchronous_commit/full_page_writes off).

``initdb`` refuses to run as root, so when the tests run as root every server
command runs as the unprivileged user ``watchdog-test`` (``runuser``), which
``scripts/ci-setup.sh`` creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psycopg
from psycopg import sql

SETUP_HINT = "run `sudo scripts/ci-setup.sh` to install the test system dependencies"
TEST_USER = "watchdog-test"
SUPERUSER = "watchdog"
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0


class MissingBinaryError(RuntimeError):
    """A system binary (or the test user) the helpers need is not installed."""


class ServerStartError(RuntimeError):
    """A helper server did not come up; the message carries its log tail."""


def free_port() -> int:
    """A currently free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _version_key(bindir: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([\d.]+)/bin$", bindir)
    return tuple(int(p) for p in m.group(1).split(".")) if m else (0,)


def find_pg_bindir() -> Path:
    """Directory holding ``initdb`` and ``postgres``.

    PATH first, then ``/usr/lib/postgresql/<highest version>/bin``.
    """
    names = ("initdb", "postgres")
    on_path = shutil.which("initdb")
    if on_path:
        # Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin)
        # so all three binaries come from the same installation.
        for cand in (Path(on_path).resolve().parent, Path(on_path).parent):
            if all(os.access(cand / n, os.X_OK) for n in names):
                return cand
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for d in dirs:
        if all(os.access(Path(d) / n, os.X_OK) for n in names):
            return Path(d)
    raise MissingBinaryError(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH "
        f"or in /usr/lib/postgresql/*/bin; {SETUP_HINT}"
    )


class PostgresServer:
    """A throwaway PostgreSQL cluster. Start with ``start()`` or ``with``."""

    def __init__(self, *, ready_timeout: float = READY_TIMEOUT) -> None:
        self.ready_timeout = ready_timeout
        self.bindir = find_pg_bindir()
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._as_root = os.geteuid() == 0
        self._user: pwd.struct_passwd | None = None
        if self._as_root:
            try:
                self._user = pwd.getpwnam(TEST_USER)
            except KeyError:
                raise MissingBinaryError(
                    f"running as root but the unprivileged user {TEST_USER!r} "
                    f"(needed for initdb) does not exist; {SETUP_HINT}"
                ) from None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- paths ---------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base

    @property
    def log_path(self) -> Path:
        return self._base / "server.log"

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("PostgresServer is not started")
        return self.base_dir

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- public API ----------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``dbname``."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self._port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq connection string (for psycopg directly)."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self._port}/{dbname}"

    def start(self) -> Self:
        """initdb a fresh cluster in a temp dir and start the server."""
        if self.base_dir is not None:
            raise RuntimeError("PostgresServer already started; use start_server()")
        self.base_dir = Path(tempfile.mkdtemp(prefix="watchdog-pg-"))
        try:
            if self._user is not None:
                os.chown(self.base_dir, self._user.pw_uid, self._user.pw_gid)
            self._initdb()
            # A port picked by free_port() can be taken before postgres binds
            # it; retry a couple of times with a fresh one.
            for attempt in range(3):
                self.port = free_port()
                self._write_port()
                try:
                    self.start_server()
                    break
                except ServerStartError as exc:
                    if attempt == 2 or "could not bind" not in str(exc).lower():
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown and remove the cluster directory. Idempotent."""
        if self.base_dir is None:
            return
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def stop_server(self) -> None:
        """Stop the server (fast shutdown), keeping the data dir and port."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                pid = self._server_pid(proc)
                # SIGINT = fast shutdown: disconnect clients, checkpoint, exit.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid if pid is not None else proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._kill(proc)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def start_server(self) -> None:
        """Start the server on the existing data dir and port; wait until ready."""
        if self.base_dir is None:
            raise RuntimeError("PostgresServer is not initialised; call start()")
        if self._proc is not None:
            return
        # postgres runs in the foreground as our (grand)child so that we reap
        # it: no zombies even when PID 1 does not reap orphans.
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self._argv([self._bin("postgres"), "-D", str(self.data_dir)]),
            cwd=self._base,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env(),
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop_server()
            raise

    def restart(self) -> None:
        """Stop and start again on the same data dir and port."""
        self.stop_server()
        self.start_server()

    def create_database(self, name: str) -> None:
        self._autocommit_exec(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, terminating its open connections."""
        self._autocommit_exec(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

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
        return f"<PostgresServer port={self.port} dir={self.base_dir} running={self.running}>"

    # -- internals -------------------------------------------------------------
    @property
    def _port(self) -> int:
        if self.port is None:
            raise RuntimeError("PostgresServer is not started")
        return self.port

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def _argv(self, argv: list[str]) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", TEST_USER, "--", *argv]
        return argv

    @staticmethod
    def _env() -> dict[str, str]:
        return {**os.environ, "LC_ALL": "C", "TZ": "UTC"}

    def _run(self, argv: list[str]) -> None:
        prog = Path(argv[0]).name
        res = subprocess.run(
            self._argv(argv),
            cwd=self._base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            env=self._env(),
        )
        if res.returncode != 0:
            raise ServerStartError(
                f"{prog} failed (exit {res.returncode}): {' '.join(argv)}\n{res.stdout}"
            )

    def _initdb(self) -> None:
        self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        (self.data_dir / "pg_hba.conf").write_text(
            "# throwaway test cluster: trust on the unix socket and loopback only\n"
            "local all all trust\n"
            f"host all all {HOST}/32 trust\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as f:
            f.write(
                "\n# --- tests/support/postgres.py ---\n"
                f"listen_addresses = '{HOST}'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "max_connections = 200\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "shared_buffers = 32MB\n"
                "dynamic_shared_memory_type = posix\n"
                "log_min_messages = warning\n"
                "logging_collector = off\n"
                "timezone = 'UTC'\n"
                "include_if_exists = 'port.conf'\n"
            )

    def _write_port(self) -> None:
        (self.data_dir / "port.conf").write_text(f"port = {self._port}\n")

    def _server_pid(self, proc: subprocess.Popen[bytes]) -> int | None:
        """PID of the postmaster (below ``runuser`` when running as root)."""
        if not self._as_root:
            return proc.pid
        try:
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        pid = self._server_pid(proc)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("select 1")
            except psycopg.OperationalError as exc:
                last = exc
            else:
                return
            if self._proc is None or self._proc.poll() is not None:
                last = f"server process exited ({last})"
                break
            time.sleep(0.05)
        raise ServerStartError(
            f"PostgreSQL on {HOST}:{self.port} not accepting connections: {last}\n"
            f"--- server log tail ({self.log_path}) ---\n{log_tail(self.log_path)}"
        )

    def _autocommit_exec(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(statement)
