"""Timer mode: a ``scan`` SIGKILLed mid-pass leaves nothing leased past the next tick.

One ``scan`` process (what the systemd timer starts every five minutes) works through due
authorizations against the sandbox, with the default configuration; it is SIGKILLed while
it holds rows, some of them between a capture's intent and its outcome. Its heartbeat
stops with it. A scan on the same machine would see its pid is gone and take its rows at
once; here its worker row is made to look like another machine's, so the lease path is the
one exercised: a ``scan`` started right away leaves the dead one's rows alone, and the next
one, started as soon as one lease (15 s) ran out, not five minutes later, settles every
authorization, with exactly one capture each at the sandbox.
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
from sqlalchemy import func, select, update

from tests.support.cli import DUE_ORDERS, cli
from watchdog.config import DEFAULT_LEASE
from watchdog.db import make_engine
from watchdog.models import Authorization, Worker
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer

COUNT = 120
LATENCY = 0.3  # per sandbox answer: the pass lasts a few seconds


@pytest.mark.slow
def test_a_killed_scan_leaves_nothing_leased_past_one_lease(tmp_path: Path) -> None:
    with SandboxServer(latency=LATENCY) as sandbox:
        _exercise(tmp_path, sandbox)


def _exercise(tmp_path: Path, sandbox: SandboxServer) -> None:
    db_url = f"sqlite:///{tmp_path / 'timer.db'}"
    config = tmp_path / "timer.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n' + "".join(
        f'[providers.{name}]\nbase_url = "{url}"\n' for name, url in sandbox.base_urls().items()),
        encoding="utf-8")
    cli("db", "upgrade", config=config, check=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    lines, expected = [], {}
    for i in range(COUNT):
        provider, currency, age = DUE_ORDERS[i % len(DUE_ORDERS)]
        order_id = str(950_000 + i) if provider == "clearpay" else f"timer-{provider}-{i}"
        sandbox.create_order(provider, order_id, 4_000 + i, currency, authorized_at=now - age)
        expected[(provider, order_id)] = 4_000 + i
        lines.append(json.dumps({"provider": provider, "order_id": order_id, "amount": 4_000 + i,
                                 "currency": currency, "authorized_at": (now - age).isoformat()}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines), encoding="utf-8")
    cli("import", str(tmp_path / "in.jsonl"), config=config, check=True)

    engine = make_engine(db_url)
    env = {**os.environ, **SANDBOX_ENV}
    env.pop("WATCHDOG_CONFIG", None)
    scan = subprocess.Popen([sys.executable, "-m", "watchdog", "--config", str(config), "scan"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        started = time.monotonic()
        while True:  # until the scan holds rows with a capture in flight
            with engine.connect() as conn:
                capturing = conn.execute(select(func.count()).where(
                    Authorization.state == "capturing",
                    Authorization.claimed_by.like(f"%:{scan.pid}"))).scalar_one()
            if capturing:
                break
            assert scan.poll() is None, "the scan finished before it could be killed"
            assert time.monotonic() - started < 60, "the scan never had a capture in flight"
            time.sleep(0.02)
        scan.send_signal(signal.SIGKILL)
        scan.wait(timeout=10)
        killed_at = time.monotonic()
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(timeout=10)
    with engine.begin() as conn:
        held = conn.execute(select(func.count()).where(
            Authorization.claimed_by.like(f"%:{scan.pid}"))).scalar_one()
        assert conn.execute(update(Worker).values(host_key="another-machine")).rowcount == 1
    assert held > 0, "the kill left nothing leased; the test proves little"

    # A scan within the lease: the dead scan's rows are not free yet.
    cli("scan", config=config, check=True, timeout=120)
    with engine.connect() as conn:
        still_held = conn.execute(select(func.count()).where(
            Authorization.claimed_by.like(f"%:{scan.pid}"))).scalar_one()
    if time.monotonic() - killed_at < DEFAULT_LEASE.total_seconds():
        assert still_held == held
    # The next tick, as early as the dead scan's lease allows (real processes, real time).
    time.sleep(max(0.0, DEFAULT_LEASE.total_seconds() + 1 - (time.monotonic() - killed_at)))
    cli("scan", config=config, check=True, timeout=120)
    with engine.connect() as conn:
        states = Counter(dict(conn.execute(
            select(Authorization.state, func.count()).group_by(Authorization.state)).all()))
        leftover = conn.execute(select(func.count()).where(
            Authorization.claimed_by.is_not(None))).scalar_one()
    engine.dispose()
    assert states == Counter({"captured": COUNT}), f"{held} were held by the killed scan: {states}"
    assert leftover == 0
    captures = Counter((e["provider"], e["order_id"]) for e in sandbox.ledger()
                       if e["operation"] == "capture")
    assert captures == Counter(dict.fromkeys(expected, 1))
