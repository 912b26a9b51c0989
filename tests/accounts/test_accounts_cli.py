"""CLI ``add`` and ``import`` take the account (issue 19), as real processes; instants are
built from now()."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog import schema
from watchdog.db import make_engine

pytestmark = pytest.mark.slow  # runs the CLI as a process


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watchdog", "--config", str(config), *args],
                          capture_output=True, text=True, check=False, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "WATCHDOG_AUDIT_KEY": "k" * 40})


def test_cli_add_and_import_take_the_account(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    schema.upgrade(engine)
    engine.dispose()
    config = tmp_path / "w.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[providers.flitt]\n'
                      '[providers.flitt.accounts.ge-shop]\n[providers.flitt.accounts.am-shop]\n')
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    add = ["add", "--provider", "flitt", "--order-id", "o-1", "--amount", "5000",
           "--currency", "GEL", "--authorized-at", now.isoformat()]
    assert _cli(config, *add, "--account", "ge-shop").returncode == 0
    result = _cli(config, *add, "--account", "ge-shop", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["account"] == "ge-shop"
    refused = _cli(config, *add, "--account", "de-shop")
    assert refused.returncode != 0 and "account" in refused.stderr
    rows = tmp_path / "rows.csv"
    rows.write_text("provider,account,order_id,amount,currency,authorized_at\n"
                    f"flitt,am-shop,o-1,5000,GEL,{now.isoformat()}\n"
                    f"flitt,de-shop,o-2,5000,GEL,{now.isoformat()}\n"
                    f"flitt,ge-shop,o-1,5000,GEL,{now.isoformat()}\n")
    result = _cli(config, "import", str(rows))
    said = result.stdout + result.stderr
    assert "imported 1 new, 1 unchanged, 1 rejected" in said, said
    assert "rejected line 3: account: 'de-shop' is not a configured flitt account" in said, said
