"""PostgreSQL goes away in the middle of a pass; the daemon rides it out and loses nothing.

A real daemon process (``run``, one-second ticks) works through due authorizations
against the sandbox, whose latency keeps the pass going for seconds. While captures are
landing, the test stops the session's PostgreSQL server for a couple of seconds and starts
it again on the same data directory and port. The daemon must stay up, say in its log that
the database was unavailable, and finish the work: one capture per authorization at the
provider, every authorization final, the audit chain intact.

Short provider timeouts, a short lease and small batches bound the recovery: a row whose
outcome could not be written is recovered (status read, then "already done") one lease
(6 s) after its intent; a row left claimed by the daemon itself is taken back by its next
pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from tests.support.cli import DUE_ORDERS, cli
from tests.support.postgres import PostgresServer
from watchdog.db import make_engine
from watchdog.models import Authorization
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer

COUNT = 60
LATENCY = 0.25  # seconds per provider request: a pass of COUNT rows takes several seconds
OUTAGE = 2.5  # seconds the database is down
BUDGET_SECONDS = 60.0


def _config(path: Path, db_url: str, sandbox: SandboxServer) -> Path:
    providers = "".join(
        f'[providers.{name}]\nbase_url = "{url}"\nconnect_timeout = 1\nread_timeout = 1\n'
        "retry_attempts = 1\nretry_backoff = 0.1\n"
        for name, url in sandbox.base_urls().items()
    )
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        '[scheduler]\nscan_interval = "1s"\nlease = "6s"\nbatch_size = 8\nconcurrency = 8\n'
        "[api]\nenabled = false\n[metrics]\nenabled = false\n"
        f"{providers}",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
@pytest.mark.postgres
def test_daemon_survives_a_postgres_restart_mid_pass_and_loses_nothing(
    tmp_path: Path, postgres: PostgresServer,
) -> None:
    postgres.create_database("restart")
    try:
        with SandboxServer(latency=LATENCY) as sandbox:
            _exercise(tmp_path, postgres, sandbox)
    finally:
        if not postgres.running:  # never leave the session's server down for later tests
            postgres.start_server()
        postgres.drop_database("restart")


def _exercise(tmp_path: Path, postgres: PostgresServer, sandbox: SandboxServer) -> None:
    db_url = postgres.url("restart")
    config = _config(tmp_path / "w.toml", db_url, sandbox)
    cli("db", "upgrade", config=config, check=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expected: dict[tuple[str, str], int] = {}
    lines = []
    for i in range(COUNT):
        provider, currency, age = DUE_ORDERS[i % len(DUE_ORDERS)]
        order_id = str(800_000 + i) if provider == "clearpay" else f"r-{provider}-{i}"
        amount = 2_000 + i
        sandbox.create_order(provider, order_id, amount, currency, authorized_at=now - age)
        expected[(provider, order_id)] = amount
        lines.append(json.dumps({"provider": provider, "order_id": order_id, "amount": amount,
                                 "currency": currency, "authorized_at": (now - age).isoformat()}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines), encoding="utf-8")
    cli("import", str(tmp_path / "in.jsonl"), config=config, check=True)

    env = {**os.environ, **SANDBOX_ENV}
    env.pop("WATCHDOG_CONFIG", None)
    log = tmp_path / "daemon.log"
    with log.open("wb") as sink:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=sink, env=env,
        )
    try:
        # Wait until the pass is well under way: some captures landed, most have not.
        started = time.monotonic()
        while _captures(sandbox) < COUNT // 6:
            assert daemon.poll() is None, f"daemon exited early:\n{_tail(log)}"
            assert time.monotonic() - started < 30, f"no captures yet:\n{_tail(log)}"
            time.sleep(0.05)
        captured_before = _captures(sandbox)
        postgres.stop_server()
        time.sleep(OUTAGE)
        assert daemon.poll() is None, f"the daemon died with the database:\n{_tail(log)}"
        postgres.start_server()
        assert captured_before < COUNT, "the pass finished before the outage; raise LATENCY"

        engine = make_engine(db_url)
        try:
            open_rows = _wait_until_final(engine, daemon, log)
            with engine.connect() as conn:
                states = dict(conn.execute(
                    select(Authorization.state, func.count()).group_by(Authorization.state)
                ).all())
        finally:
            engine.dispose()
        assert open_rows == 0, f"not finished within {BUDGET_SECONDS}s: {states}\n{_tail(log)}"
        assert daemon.poll() is None, f"daemon exited:\n{_tail(log)}"
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
    assert code == 0, f"daemon exited {code}:\n{_tail(log)}"

    events = [json.loads(line) for line in log.read_text(errors="replace").splitlines()
              if line.startswith("{")]
    assert any(e.get("action") == "daemon:db_unavailable" for e in events), (
        f"the outage was not logged:\n{_tail(log)}")

    captures = [e for e in sandbox.ledger() if e["operation"] == "capture"]
    per_order = Counter((e["provider"], e["order_id"]) for e in captures)
    assert {k: n for k, n in per_order.items() if n > 1} == {}, "an authorization captured twice"
    assert set(expected) - set(per_order) == set(), "an authorization never captured"
    assert {(e["provider"], e["order_id"]): e["amount"] for e in captures} == expected
    assert states == {"captured": COUNT}
    assert "audit chain intact" in cli("audit", "verify", config=config, check=True).stdout


def _captures(sandbox: SandboxServer) -> int:
    return sum(1 for e in sandbox.ledger() if e["operation"] == "capture")


def _wait_until_final(engine: Engine, daemon: subprocess.Popen[bytes], log: Path) -> int:
    started = time.monotonic()
    open_rows = -1
    while time.monotonic() - started < BUDGET_SECONDS:
        assert daemon.poll() is None, f"daemon exited after the outage:\n{_tail(log)}"
        try:
            with engine.connect() as conn:
                open_rows = conn.execute(
                    select(func.count()).select_from(Authorization).where(
                        Authorization.state.not_in(["captured", "canceled", "expired"]))
                ).scalar_one()
        except OperationalError:
            open_rows = -1
        if open_rows == 0:
            return 0
        time.sleep(0.25)
    return open_rows


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]
