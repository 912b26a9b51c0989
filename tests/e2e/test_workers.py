"""Several workers on one PostgreSQL: four real daemon processes share the due work.

The issue asks for ten thousand authorizations. This test uses ``COUNT`` = 600, spread
evenly over the four providers: every authorization costs a status read, a capture and
about five short transactions (each appending to the hash-chained audit trail, which
PostgreSQL serialises with an advisory lock), roughly 50 ms of CPU all told, and on a
two-core CI box 600 keeps the test near 30 s while each worker still claims well over a
hundred rows alongside the others (``FOR UPDATE SKIP LOCKED``). Set ``COUNT = 10_000`` to
run the issue's scale by hand (minutes, not seconds).

Afterwards the sandbox's ledger must hold exactly one capture per authorization, of the
authorized amount — none twice, none missing — every authorization is final, and
``audit verify`` passes.
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
from sqlalchemy import func, select

from tests.support.cli import DUE_ORDERS, cli
from tests.support.postgres import PostgresServer
from watchdog.db import make_engine
from watchdog.models import AuditRow, Authorization
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer

COUNT = 600
WORKERS = 4
BUDGET_SECONDS = 90.0  # a hard stop; the test normally finishes in a fraction of it

# provider, currency, age at registration: each one is due (past capture_lead, before the guard)


def _order_id(provider: str, i: int) -> str:
    # Clearpay order ids are numeric tokens; the others are free-form merchant references.
    return str(700_000 + i) if provider == "clearpay" else f"w-{provider}-{i}"


def _config(path: Path, db_url: str, sandbox: SandboxServer) -> Path:
    providers = "".join(
        f'[providers.{name}]\nbase_url = "{url}"\nmax_concurrency = 32\n'
        for name, url in sandbox.base_urls().items()
    )
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        '[scheduler]\nscan_interval = "1s"\nbatch_size = 100\nconcurrency = 128\nlease = "2m"\n'
        "[api]\nenabled = false\n[metrics]\nenabled = false\n"
        f"{providers}",
        encoding="utf-8",
    )
    return path


def _start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **SANDBOX_ENV}
    env.pop("WATCHDOG_CONFIG", None)
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "watchdog", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=sink, env=env,
        )


@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_on_one_postgres_capture_each_authorization_exactly_once(
    tmp_path: Path, postgres: PostgresServer, sandbox: SandboxServer,
) -> None:
    postgres.create_database("workers")
    try:
        _exercise(tmp_path, postgres.url("workers"), sandbox)
    finally:
        postgres.drop_database("workers")


def _exercise(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> None:
    config = _config(tmp_path / "w.toml", db_url, sandbox)
    cli("db", "upgrade", config=config, check=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expected: dict[tuple[str, str], int] = {}
    lines = []
    for i in range(COUNT):
        provider, currency, age = DUE_ORDERS[i % len(DUE_ORDERS)]
        order_id = _order_id(provider, i)
        amount = 1_000 + i
        sandbox.create_order(provider, order_id, amount, currency, authorized_at=now - age)
        expected[(provider, order_id)] = amount
        lines.append(json.dumps({
            "provider": provider, "order_id": order_id, "amount": amount,
            "currency": currency, "authorized_at": (now - age).isoformat(),
        }))
    (tmp_path / "in.jsonl").write_text("\n".join(lines), encoding="utf-8")
    cli("import", str(tmp_path / "in.jsonl"), config=config, check=True, timeout=120)

    engine = make_engine(db_url)
    logs = [tmp_path / f"worker{n}.log" for n in range(WORKERS)]
    workers = [_start_worker(config, log) for log in logs]
    started = time.monotonic()
    try:
        while time.monotonic() - started < BUDGET_SECONDS:
            with engine.connect() as conn:
                open_rows = conn.execute(
                    select(func.count()).select_from(Authorization).where(
                        Authorization.state.not_in(["captured", "canceled", "expired"]))
                ).scalar_one()
            if open_rows == 0:
                break
            dead = [w.pid for w in workers if w.poll() is not None]
            assert not dead, f"workers {dead} died:\n" + "\n".join(
                log.read_text(errors="replace")[-2000:] for log in logs)
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
    assert codes == [0] * WORKERS, f"workers exited {codes}"

    # Exactly one capture per authorization, of the full amount: none twice, none missing.
    captures = [e for e in sandbox.ledger() if e["operation"] == "capture"]
    per_order = Counter((e["provider"], e["order_id"]) for e in captures)
    twice = {k: n for k, n in per_order.items() if n > 1}
    missing = set(expected) - set(per_order)
    assert not twice, f"{len(twice)} authorizations captured more than once, e.g. {list(twice)[:5]}"
    assert not missing, f"{len(missing)} authorizations never captured, e.g. {list(missing)[:5]}"
    assert {(e["provider"], e["order_id"]): e["amount"] for e in captures} == expected
    assert [e for e in sandbox.ledger() if e["operation"] != "capture"] == []

    with engine.connect() as conn:
        states = dict(conn.execute(
            select(Authorization.state, func.count()).group_by(Authorization.state)).all())
        actors = conn.execute(
            select(AuditRow.actor).where(AuditRow.event == "scan:capture:outcome").distinct()
        ).scalars().all()
    engine.dispose()
    assert states == {"captured": COUNT}, f"after {elapsed:.1f}s: {states}"
    assert len(actors) > 1, f"the work was not shared: only {actors} recorded outcomes"
    assert "audit chain intact" in cli("audit", "verify", config=config, check=True).stdout
