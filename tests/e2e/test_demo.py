"""``expiry-watchdog demo`` as a newcomer runs it (``make run``): a real process, with no
credentials or audit key from the user, against the sandbox it starts itself.

It must exit 0 with an intact audit chain, and show two merchant accounts of one provider
(issue 19; the dialect that declares ``demo_account``, JPMMPS ``default`` and ``uk-shop``):
each with its own window, one order id in both, each captured at its own account, and every
table naming the account (``label``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from watchdog import audit
from watchdog.db import make_engine, transaction
from watchdog.demo import demo_accounts
from watchdog.models import Action, Authorization
from watchdog.providers import registry

pytestmark = pytest.mark.slow  # runs the CLI as a process


def _without_credentials() -> dict[str, str]:
    """The caller's environment minus every WATCHDOG_* variable (keys, audit key, config)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}


def _watchdog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watchdog", *args], capture_output=True,
                          text=True, check=False, timeout=120, env=_without_credentials())


def test_the_demo_runs_without_credentials_and_shows_two_accounts_of_one_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the demo keeps its audit key in the file beside its database, as a user's would be
    monkeypatch.delenv("WATCHDOG_AUDIT_KEY", raising=False)
    workdir = tmp_path / "demo"
    result = _watchdog("demo", "--dir", str(workdir))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    match = re.search(r"audit chain intact: (\d+) rows", out)
    assert match and int(match.group(1)) > 0, out
    assert "Traceback" not in result.stderr

    ((provider, second_account),) = demo_accounts().items()
    account_b = second_account.name
    shared = second_account.orders[0][0]
    second = f"{provider}/{account_b}"
    engine = make_engine(f"sqlite:///{workdir / 'watchdog.db'}")
    try:
        with transaction(engine) as session:
            rows = {row.account: row for row in session.scalars(
                select(Authorization).where(Authorization.provider == provider,
                                            Authorization.order_id == shared))}
            keys = {account: list(session.scalars(
                        select(Action.idempotency_key)
                        .where(Action.authorization_id == row.id, Action.kind == "capture")))
                    for account, row in rows.items()}
            for row in rows.values():
                session.expunge(row)
        assert audit.verify(engine).rows == int(match.group(1))
        events = {account: [e.event for e in audit.query(engine, authorization_id=row.id)]
                  for account, row in rows.items()}
    finally:
        engine.dispose()

    # the same order id at two accounts is two authorizations, both captured in full
    assert set(rows) == {"default", account_b}, rows
    for account, row in rows.items():
        assert row.state == "captured" and row.captured_amount == row.amount, (account, row)
        assert "scan:capture:outcome" in events[account], events[account]
        assert len(keys[account]) == 1, keys
    assert f"-{account_b}-" in keys[account_b][0], keys
    assert f"-{account_b}-" not in keys["default"][0], keys
    # each with its own account's window: the provider's default, the second account's own
    default_window = registry.spec(provider).rules.window
    assert second_account.window is not None and second_account.window != default_window
    assert rows["default"].deadline - rows["default"].authorized_at == default_window
    assert (rows[account_b].deadline - rows[account_b].authorized_at
            == second_account.window)

    # The sandbox's ledger is kept per account it was addressed to, and it refuses another
    # account's credentials: each capture happened at its own account.
    ledger = out[out.index("sandbox ledger"):out.index("audit chain intact")]
    captures = re.findall(rf"^  ({re.escape(provider)}\S*)\s+capture\s+{shared}\s",
                          ledger, re.MULTILINE)
    assert sorted(captures) == [provider, second], ledger
    # the tables name the account
    plan = out[:out.index("running the daemon")]
    after = out[out.index("authorizations after the passes"):out.index("alerts (outbox)")]
    for table in (plan, after):
        assert re.search(rf"#{rows[account_b].id} {re.escape(second)}\s+{shared}", table), \
            table
        assert re.search(rf"#{rows['default'].id} {provider}\s+{shared}", table), table
    assert f"{second} window {second_account.window.days}d" in out, out

    # and what it tells the user to try works without credentials too
    verified = _watchdog("--config", str(workdir / "watchdog.toml"), "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = _watchdog("--config", str(workdir / "watchdog.toml"), "show",
                      str(rows[account_b].id))
    assert shown.returncode == 0 and account_b in shown.stdout, shown.stdout + shown.stderr
