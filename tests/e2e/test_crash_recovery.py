"""kill -9 at named instants: a real daemon process, the sandbox, and exactly one effect.

The daemon is started with ``WATCHDOG_CRASH_AT=<step>:<n>`` (a test-only fault hook)
and SIGKILLs itself at the n-th pass through that step; it is then restarted until
the work is done. Short leases and timeouts keep the recovery waits to seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import DUE_ORDERS, cli
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer

pytestmark = pytest.mark.slow  # the real daemon, as a process

STEPS = ["before_intent", "after_intent", "after_send", "after_provider", "before_outcome"]
FAST = """
[api]
enabled = false
[scheduler]
lease = "2s"
[providers.smartpay]
connect_timeout = 1
read_timeout = 1
retry_attempts = 1
[providers.jpmmps]
connect_timeout = 1
read_timeout = 1
retry_attempts = 1
[providers.flitt]
connect_timeout = 1
read_timeout = 1
retry_attempts = 1
[providers.clearpay]
connect_timeout = 1
read_timeout = 1
retry_attempts = 1
"""


def _config(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Path:
    base = sandbox.base_urls()
    text = f'[database]\nurl = "{db_url}"\n' + FAST.replace("[scheduler]", '[scheduler]\nscan_interval = "1s"')
    for name, url in base.items():
        text = text.replace(f"[providers.{name}]\n", f'[providers.{name}]\nbase_url = "{url}"\n')
    path = tmp_path / "w.toml"
    path.write_text(text)
    return path


def _run_daemon(config: Path, crash_at: str | None, seconds: float, passes: int | None = None) -> int | None:
    env = {**os.environ, **SANDBOX_ENV}
    env.pop("WATCHDOG_CONFIG", None)
    if crash_at:
        env["WATCHDOG_CRASH_AT"] = crash_at
    extra = ["--max-passes", str(passes)] if passes else []
    proc = subprocess.Popen([sys.executable, "-m", "watchdog", "--config", str(config), "run", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=30)
        return None
    finally:
        if proc.stderr:
            proc.stderr.close()


# Every step on SQLite; on PostgreSQL the step where the effect is applied but unrecorded.
CASES = [("sqlite", step) for step in STEPS] + [("postgresql", "after_provider")]


@pytest.mark.parametrize(("backend", "step"), CASES)
def test_kill_minus_nine_at_each_step_yields_exactly_one_effect(
    backend: str, step: str, tmp_path: Path, request: pytest.FixtureRequest,
    sandbox: SandboxServer,
) -> None:
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'w.db'}"
    else:
        server = request.getfixturevalue("postgres")
        server.create_database("crash")
        request.addfinalizer(lambda: server.drop_database("crash"))
        db_url = server.url("crash")
    config = _config(tmp_path, db_url, sandbox)
    cli("db", "upgrade", config=config, check=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    lines, expected = [], {}
    for i in range(12):
        provider, currency, age = DUE_ORDERS[i % 4]
        order_id = f"{400000 + i}" if provider == "clearpay" else f"crash-{provider}-{i}"
        sandbox.create_order(provider, order_id, 1000 + i, currency, authorized_at=now - age)
        lines.append(json.dumps({"provider": provider, "order_id": order_id, "amount": 1000 + i,
                                 "currency": currency, "authorized_at": (now - age).isoformat()}))
        expected[order_id] = 1000 + i
    (tmp_path / "in.jsonl").write_text("\n".join(lines))
    cli("import", str(tmp_path / "in.jsonl"), config=config, check=True)
    # Lose one answer after the effect was applied, on top of the crash.
    sandbox.add_fault(provider="clearpay", operation="capture", kind="drop_after_apply", count=1)

    code = _run_daemon(config, f"{step}:3", seconds=30)
    assert code == -9, f"the daemon should have killed itself at {step}, exited {code}"
    for _ in range(8):  # restart until every authorization is final (leases expire after 2 s)
        if not _open_entries(config):
            break
        time.sleep(2.1)  # a real process: let the crashed worker's lease and recovery delay pass
        _run_daemon(config, None, seconds=20, passes=1)

    captures = [e for e in sandbox.ledger() if e["operation"] == "capture"]
    by_order: dict[str, list[int]] = {}
    for effect in captures:
        by_order.setdefault(effect["order_id"], []).append(effect["amount"])
    assert by_order == {order: [amount] for order, amount in expected.items()}, (
        "exactly one capture per authorization, of the authorized amount"
    )
    assert _open_entries(config) == [], "every authorization reached a final state"
    assert "audit chain intact" in cli("audit", "verify", config=config, check=True).stdout


def _open_entries(config: Path) -> list[dict[str, object]]:
    shown = cli("plan", "--format", "json", "--horizon", "30d", config=config, check=True)
    entries: list[dict[str, object]] = json.loads(shown.stdout)["entries"]
    return entries
