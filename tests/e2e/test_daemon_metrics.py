"""Scraping /metrics from a real daemon process while it works shows the documented series
with the values the sandbox and the database say they should have."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import cli
from tests.support.postgres import free_port
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer

pytestmark = [pytest.mark.slow, pytest.mark.wallclock]

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert match, f"{series} not in /metrics:\n{text[:3000]}"
    return float(match.group(1))


def test_metrics_of_a_running_daemon(tmp_path: Path, sandbox: SandboxServer) -> None:
    port = free_port()
    config = tmp_path / "w.toml"
    providers = "".join(f'[providers.{n}]\nbase_url = "{u}"\n' for n, u in sandbox.base_urls().items())
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n[scheduler]\n'
                      f'scan_interval = "1s"\n[api]\nport = {port}\n{providers}')
    cli("db", "upgrade", config=config, check=True)
    due_age, open_age = dt.timedelta(days=12, hours=4), dt.timedelta(days=1)
    lines = []
    for order_id, amount, age in (("700001", 4599, due_age), ("700002", 1200, open_age)):
        sandbox.create_order("clearpay", order_id, amount, "GBP", authorized_at=NOW - age)
        lines.append(json.dumps({"provider": "clearpay", "order_id": order_id, "amount": amount,
                                 "currency": "GBP", "authorized_at": (NOW - age).isoformat()}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines))
    cli("import", str(tmp_path / "in.jsonl"), config=config, check=True)

    env = {**os.environ, **SANDBOX_ENV}
    env.pop("WATCHDOG_CONFIG", None)
    daemon = subprocess.Popen([sys.executable, "-m", "watchdog", "--config", str(config), "run"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        text = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                text = ""
            # The capture commits before its pass is recorded as finished: wait for both.
            if ('expiry_watchdog_authorizations{state="captured"} 1.0' in text
                    and "expiry_watchdog_last_successful_pass_timestamp_seconds " in text):
                break
            time.sleep(0.2)  # polling a real process
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert ready.status_code == 200, ready.text
    assert _value(text, 'expiry_watchdog_authorizations{state="captured"}') == 1
    assert _value(text, 'expiry_watchdog_authorizations{state="authorized"}') == 1
    assert _value(text, "expiry_watchdog_database_up") == 1
    last_pass = _value(text, "expiry_watchdog_last_successful_pass_timestamp_seconds")
    assert abs(last_pass - time.time()) < 60
    open_money = sum(float(v) for v in re.findall(
        r'^expiry_watchdog_money_at_risk_minor_units\{[^}]*provider="clearpay"[^}]*\} (\S+)$',
        text, re.M))
    assert open_money == 1200, "only the authorization that is still open is at risk"
    captures = re.findall(
        r'^expiry_watchdog_actions_total\{[^}]*kind="capture"[^}]*outcome="succeeded"[^}]*\} (\S+)$',
        text, re.M)
    assert sum(float(v) for v in captures) == 1
    assert "expiry_watchdog_provider_request_duration_seconds_bucket" in text
    assert [e["order_id"] for e in sandbox.ledger()] == ["700001"]
