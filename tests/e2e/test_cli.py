"""The command line as a user runs it: real processes, real files, real HTTP to the sandbox."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import cli, write_config
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import SandboxServer

pytestmark = [pytest.mark.slow, pytest.mark.wallclock]

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# The CLI runs against the wall clock: every instant a test registers is built from NOW, so a
# fixed date never ages into "past its deadline" (`make test-clock-ahead` catches a relapse).
AUTHORIZED = NOW - dt.timedelta(days=1)


def at(offset_hours: int = 0) -> str:
    """AUTHORIZED written in the UTC offset ``offset_hours`` (the same instant either way)."""
    return AUTHORIZED.astimezone(dt.timezone(dt.timedelta(hours=offset_hours))).isoformat()


def naive() -> str:
    """AUTHORIZED without an offset (a registration error)."""
    return AUTHORIZED.replace(tzinfo=None).isoformat()


def test_bad_config_fails_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[policy]\nalert_lead = "two days"\n')
    result = cli("config", "check", config=config)
    assert result.returncode == 1
    assert "policy.alert_lead" in result.stderr and "not a duration" in result.stderr


def test_scan_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    config = write_config(tmp_path / "w.toml", f"sqlite:///{tmp_path / 'w.db'}")
    result = cli("scan", config=config)
    assert result.returncode == 1 and "db upgrade" in result.stderr


def test_import_keeps_good_rows_and_reports_every_bad_one(tmp_path: Path) -> None:
    config = write_config(tmp_path / "w.toml", f"sqlite:///{tmp_path / 'w.db'}")
    cli("db", "upgrade", config=config, check=True)
    rows = [
        {"provider": "smartpay", "order_id": "order_1", "amount": 5000, "currency": "JPY",
         "authorized_at": at(9)},
        {"provider": "stripe", "order_id": "x", "amount": 5, "currency": "USD",
         "authorized_at": at()},
        {"provider": "clearpay", "order_id": "100", "amount": 12.5, "currency": "GBP",
         "authorized_at": at()},
        {"provider": "flitt", "order_id": "f1", "amount": 100, "currency": "GEL",
         "authorized_at": naive()},
        {"provider": "clearpay", "order_id": "101", "amount": 1250, "currency": "GBP",
         "authorized_at": at(), "capture_amount": 1000},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    result = cli("import", str(path), config=config)
    assert result.returncode == 3, result.stderr
    assert "imported 2 new" in result.stdout
    assert "line 2: provider" in result.stderr
    assert "line 3: amount" in result.stderr
    assert "line 4: authorized_at" in result.stderr
    assert "line 6: (line): not valid JSON" in result.stderr
    # Importing again changes nothing and reports the same rejections.
    again = cli("import", str(path), config=config)
    assert "0 new, 2 unchanged, 4 rejected" in again.stdout

    csv_path = tmp_path / "in.csv"
    csv_path.write_text("provider,order_id,amount,currency,authorized_at\n"
                        f"jpmmps,tx-1,1820,EUR,{at(1)}\n"
                        f"jpmmps,tx-2,-5,EUR,{at(1)}\n")
    result = cli("import", str(csv_path), config=config)
    assert "imported 1 new" in result.stdout and "line 3: amount" in result.stderr
    plan = cli("plan", "--horizon", "30d", "--format", "json", config=config, check=True)
    entries = json.loads(plan.stdout)["entries"]
    assert {e["order_id"] for e in entries} >= {"order_1", "101", "tx-1"}
    verify = cli("audit", "verify", config=config, check=True)
    assert "4 rows" in verify.stdout  # the re-key row and three registrations


def test_add_show_and_audit(tmp_path: Path) -> None:
    config = write_config(tmp_path / "w.toml", f"sqlite:///{tmp_path / 'w.db'}")
    cli("db", "upgrade", config=config, check=True)
    added = cli("add", "--provider", "clearpay", "--order-id", "555", "--amount", "1820",
                "--currency", "GBP", "--authorized-at", at(),
                config=config, check=True)
    assert "registered: #1 clearpay 555 18.20 GBP" in added.stdout
    bad = cli("add", "--provider", "clearpay", "--order-id", "556", "--amount", "18.20",
              "--currency", "GBP", "--authorized-at", at(), config=config)
    assert bad.returncode == 1 and "amount" in bad.stderr
    shown = cli("show", "1", "--format", "json", config=config, check=True)
    data = json.loads(shown.stdout)
    assert data["timeline"]["deadline"] == (AUTHORIZED + dt.timedelta(days=13)).isoformat()
    assert data["timeline"]["deadline_source"] == "provider_window"
    assert data["audit"][0]["event"] == "register:authorization:create"
    assert data["authorization"]["amount"] == 1820  # machine output: minor units
    table = cli("show", "1", config=config, check=True).stdout
    assert re.search(r"^  amount +18\.20 GBP$", table, re.MULTILINE), table
    assert re.search(r"^  captured_amount +0\.00 GBP$", table, re.MULTILINE), table
    trail = cli("audit", "--authorization", "1", "--format", "json", config=config, check=True)
    assert json.loads(trail.stdout.splitlines()[0])["actor"].startswith("cli:")


def test_daemon_acts_on_all_four_providers_and_stops_on_sigterm(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path / "w.toml", f"sqlite:///{tmp_path / 'w.db'}", sandbox.base_urls())
    cli("db", "upgrade", config=config, check=True)
    orders = [
        ("smartpay", "order_sp_1", 12800, "JPY", dt.timedelta(days=6, hours=2), {}),
        ("jpmmps", "tx-jpm-1", 18250, "EUR", dt.timedelta(days=4, hours=6), {}),
        ("flitt", "fl_1", 25000, "GEL", dt.timedelta(days=4, hours=3), {"on_deadline": "cancel"}),
        ("clearpay", "300001", 4599, "GBP", dt.timedelta(days=12, hours=4), {"capture_amount": 3000}),
        ("clearpay", "300002", 1000, "GBP", dt.timedelta(days=11), {"on_deadline": "alert"}),
    ]
    lines = []
    for provider, order_id, amount, currency, age, extra in orders:
        sandbox.create_order(provider, order_id, amount, currency, authorized_at=NOW - age)
        lines.append(json.dumps({"provider": provider, "order_id": order_id, "amount": amount,
                                 "currency": currency, "authorized_at": (NOW - age).isoformat(),
                                 **extra}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines))
    cli("import", str(tmp_path / "in.jsonl"), config=config, check=True)

    env = {**os.environ, **SANDBOX_ENV}
    env.pop("WATCHDOG_CONFIG", None)
    daemon = subprocess.Popen([sys.executable, "-m", "watchdog", "--config", str(config), "run"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
        while len(sandbox.ledger()) < 5 and dt.datetime.now(dt.UTC) < deadline:
            subprocess.run(["sleep", "0.2"], check=True)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, err
    effects = sorted((e["provider"], e["operation"], e["order_id"], e["amount"]) for e in sandbox.ledger())
    assert effects == [
        ("clearpay", "capture", "300001", 3000),
        ("clearpay", "void", "300001", 1599),
        ("flitt", "reverse", "fl_1", 25000),
        ("jpmmps", "capture", "tx-jpm-1", 18250),
        ("smartpay", "capture", "order_sp_1", 12800),
    ]
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {"daemon:start", "scan:pass", "daemon:stop"} <= {entry.get("action") for entry in logs}
    plan = json.loads(cli("plan", "--format", "json", config=config, check=True).stdout)
    assert {e["order_id"] for e in plan["entries"]} == {"300002"}
    assert "audit chain intact" in cli("audit", "verify", config=config, check=True).stdout
    for secret in SANDBOX_ENV.values():
        if len(secret) > 4:
            assert secret not in err
