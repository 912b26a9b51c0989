"""SQLite is shared: the daemon acts on due rows while an ``import`` writes thousands more.

Both are real processes on the same database file. SQLite allows one writer at a time;
WAL, a busy timeout and ``BEGIN IMMEDIATE`` must make them queue rather than fail with
"database is locked". The daemon's provider calls are slowed (sandbox latency, low
concurrency) so that it is still capturing while the import runs; the test checks that
captures landed during the import, that the import stored every row, and that the daemon
finished its work with one capture per due authorization and no database error.
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

from tests.support.cli import DUE_ORDERS, cli
from watchdog.db import make_engine
from watchdog.models import Authorization
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer

DUE = 40
IMPORTED = 3_000
LATENCY = 0.2
BUDGET_SECONDS = 60.0


def _config(path: Path, db_url: str, sandbox: SandboxServer) -> Path:
    providers = "".join(
        f'[providers.{name}]\nbase_url = "{url}"\n' for name, url in sandbox.base_urls().items()
    )
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        '[scheduler]\nscan_interval = "1s"\nbatch_size = 4\nconcurrency = 2\n'
        "[api]\nenabled = false\n[metrics]\nenabled = false\n"
        f"{providers}",
        encoding="utf-8",
    )
    return path


def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    return path


@pytest.mark.slow
def test_daemon_and_a_concurrent_import_share_one_sqlite_file(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    with SandboxServer(latency=LATENCY) as sandbox:
        config = _config(tmp_path / "w.toml", db_url, sandbox)
        cli("db", "upgrade", config=config, check=True)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        due, expected = [], {}
        for i in range(DUE):
            provider, currency, age = DUE_ORDERS[i % len(DUE_ORDERS)]
            order_id = str(900_000 + i) if provider == "clearpay" else f"s-{provider}-{i}"
            sandbox.create_order(provider, order_id, 3_000 + i, currency, authorized_at=now - age)
            expected[(provider, order_id)] = 3_000 + i
            due.append({"provider": provider, "order_id": order_id, "amount": 3_000 + i,
                        "currency": currency, "authorized_at": (now - age).isoformat()})
        cli("import", str(_jsonl(tmp_path / "due.jsonl", due)), config=config, check=True)
        # Fresh authorizations, known to the provider: nothing due for days, so the daemon
        # only reads their status early (a few per pass, after the due work) and moves no
        # money for them.
        fresh_records = [
            {"provider": DUE_ORDERS[i % 4][0], "order_id": _fresh_id(DUE_ORDERS[i % 4][0], i),
             "amount": 500 + i, "currency": DUE_ORDERS[i % 4][1],
             "authorized_at": (now - dt.timedelta(hours=1)).isoformat()}
            for i in range(IMPORTED)
        ]
        for r in fresh_records:
            sandbox.create_order(str(r["provider"]), str(r["order_id"]), int(r["amount"]),
                                 str(r["currency"]), authorized_at=now - dt.timedelta(hours=1))
        fresh = _jsonl(tmp_path / "fresh.jsonl", fresh_records)

        env = {**os.environ, **SANDBOX_ENV}
        env.pop("WATCHDOG_CONFIG", None)
        log = tmp_path / "daemon.log"
        with log.open("wb") as sink:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "watchdog", "--config", str(config), "run"],
                stdout=subprocess.DEVNULL, stderr=sink, env=env,
            )
        try:
            started = time.monotonic()
            while _captures(sandbox) == 0:
                assert daemon.poll() is None, f"daemon exited early:\n{_tail(log)}"
                assert time.monotonic() - started < 30, f"no capture yet:\n{_tail(log)}"
                time.sleep(0.05)
            before = _captures(sandbox)
            imported = cli("import", str(fresh), config=config, timeout=120)
            during = _captures(sandbox) - before
            assert imported.returncode == 0, imported.stdout + imported.stderr
            assert f"imported {IMPORTED} new, 0 unchanged, 0 rejected" in imported.stdout
            assert "locked" not in imported.stderr
            assert before < DUE, "the daemon finished before the import began; raise LATENCY"
            assert during > 0, "the daemon made no capture while the import ran"

            engine = make_engine(db_url)
            try:
                while time.monotonic() - started < BUDGET_SECONDS:
                    assert daemon.poll() is None, f"daemon exited:\n{_tail(log)}"
                    if _captures(sandbox) >= DUE and _open_due(engine, expected) == 0:
                        break
                    time.sleep(0.25)
                with engine.connect() as conn:
                    states = dict(conn.execute(
                        select(Authorization.state, func.count()).group_by(Authorization.state)
                    ).all())
            finally:
                engine.dispose()
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
        assert code == 0, f"daemon exited {code}:\n{_tail(log)}"
        ledger = sandbox.ledger()

    text = log.read_text(errors="replace")
    assert "locked" not in text, _tail(log)
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    errors = [e for e in events if e.get("level") in ("error", "critical")
              or e.get("action") in ("scan:row:error", "daemon:db_unavailable")]
    assert errors == [], errors[:3]
    assert states == {"captured": DUE, "authorized": IMPORTED}, states
    captures = Counter((e["provider"], e["order_id"]) for e in ledger if e["operation"] == "capture")
    assert captures == Counter(dict.fromkeys(expected, 1)), "one capture per due authorization"
    assert {(e["provider"], e["order_id"]): e["amount"] for e in ledger} == expected
    assert "audit chain intact" in cli("audit", "verify", config=config, check=True).stdout


def _fresh_id(provider: str, i: int) -> str:
    # Clearpay order ids are numeric tokens; the others are free-form merchant references.
    return str(800_000 + i) if provider == "clearpay" else f"fresh-{i}"


def _captures(sandbox: SandboxServer) -> int:
    return sum(1 for e in sandbox.ledger() if e["operation"] == "capture")


def _open_due(engine: Engine, due: dict[tuple[str, str], int]) -> int:
    """How many of the due authorizations are not settled yet (a capture still confirming
    counts as open)."""
    with engine.connect() as conn:
        return int(conn.execute(
            select(func.count()).select_from(Authorization).where(
                Authorization.order_id.in_([order_id for _, order_id in due]),
                Authorization.state.not_in(["captured", "canceled", "expired"]))
        ).scalar_one())


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]
