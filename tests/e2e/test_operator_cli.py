"""Operator control through the real command against the sandbox: pause and dry run leave the
providers untouched (ledger and request log), resume acts, explain names each provider's rule."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.support.cli import cli, write_config
from watchdog.sandbox.server import SandboxServer

pytestmark = [pytest.mark.slow, pytest.mark.wallclock]

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SCENARIO = [
    ("smartpay", "order_op_1", 12800, "JPY", dt.timedelta(days=6, hours=2), {}),
    ("jpmmps", "tx-op-1", 18250, "EUR", dt.timedelta(days=4, hours=6), {}),
    ("flitt", "fl_op_1", 25000, "GEL", dt.timedelta(days=4, hours=3), {"on_deadline": "cancel"}),
    ("clearpay", "600001", 4599, "GBP", dt.timedelta(days=12, hours=4), {}),
]


def _setup(tmp_path: Path, sandbox: SandboxServer) -> Path:
    config = write_config(tmp_path / "w.toml", f"sqlite:///{tmp_path / 'w.db'}", sandbox.base_urls())
    cli("db", "upgrade", config=config, check=True)
    lines = []
    for provider, order_id, amount, currency, age, extra in SCENARIO:
        sandbox.create_order(provider, order_id, amount, currency, authorized_at=NOW - age)
        lines.append(json.dumps({"provider": provider, "order_id": order_id, "amount": amount,
                                 "currency": currency, "authorized_at": (NOW - age).isoformat(),
                                 **extra}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines))
    cli("import", str(tmp_path / "in.jsonl"), config=config, check=True)
    return config


def _money_requests(sandbox: SandboxServer) -> list[dict[str, object]]:
    return [r for r in sandbox.requests() if r["operation"] not in ("status", None)]


def test_dry_run_over_the_full_scenario_moves_nothing(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = _setup(tmp_path, sandbox)
    result = cli("scan", "--dry-run", config=config, check=True)
    assert "claimed 4" in result.stdout
    assert sandbox.ledger() == []
    assert _money_requests(sandbox) == []
    trail = [json.loads(line) for line in
             cli("audit", "--format", "json", config=config, check=True).stdout.splitlines()]
    would = sorted(row["event"] for row in trail if row["event"].endswith(":would"))
    assert would == ["scan:cancel:would", "scan:capture:would", "scan:capture:would",
                     "scan:capture:would"]


def test_pause_blocks_money_but_not_alerts_and_resume_acts(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = _setup(tmp_path, sandbox)
    paused = cli("pause", "--provider", "clearpay", "--reason", "INC-42", config=config, check=True)
    assert "paused clearpay" in paused.stdout
    cli("scan", config=config, check=True)
    providers_moved = {e["provider"] for e in sandbox.ledger()}
    assert providers_moved == {"smartpay", "jpmmps", "flitt"}
    assert [r for r in _money_requests(sandbox) if r["provider"] == "clearpay"] == []
    alerts = cli("alerts", config=config, check=True).stdout
    assert "INC-42" in alerts
    assert "paused" in cli("explain", "4", config=config, check=True).stdout.lower()
    cli("resume", "--provider", "clearpay", config=config, check=True)
    # The held row waits one scan_interval (1 s here) before it is tried again.
    for _ in range(20):
        cli("scan", config=config, check=True)
        if any(e["provider"] == "clearpay" for e in sandbox.ledger()):
            break
    assert [(e["provider"], e["amount"]) for e in sandbox.ledger() if e["provider"] == "clearpay"] == [
        ("clearpay", 4599)]


def test_explain_names_the_deadline_source_and_rule_for_each_provider(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = _setup(tmp_path, sandbox)
    rules = {1: "cancelRemainder", 2: "one capture only", 3: "pre-auth hold", 4: "openToCaptureAmount"}
    for auth_id, rule in rules.items():
        text = cli("explain", str(auth_id), config=config, check=True).stdout
        assert "authorized_at plus the configured provider window" in text
        assert rule in text
