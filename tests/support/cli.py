"""Helpers for tests that run the real command as a separate process: ``cli``, a config
pointed at the sandbox, and one due order per provider."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from watchdog.sandbox.credentials import SANDBOX_ENV

# One order per provider, authorized long enough ago that its capture is due now
# (past capture_lead, before the safety margin): (provider, currency, age).
DUE_ORDERS = [
    ("smartpay", "JPY", dt.timedelta(days=6, hours=2)),
    ("jpmmps", "EUR", dt.timedelta(days=4, hours=6)),
    ("flitt", "GEL", dt.timedelta(days=4, hours=3)),
    ("clearpay", "GBP", dt.timedelta(days=12, hours=4)),
]


def cli(*args: str, config: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``expiry-watchdog ARGS`` as a real process."""
    argv = [sys.executable, "-m", "watchdog"]
    if config is not None:
        argv += ["--config", str(config)]
    full_env = {**os.environ, **SANDBOX_ENV, **(env or {})}
    full_env.pop("WATCHDOG_CONFIG", None)
    result = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout,
                            env=full_env, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def write_config(path: Path, db_url: str, base_urls: dict[str, str] | None = None,
                 extra: str = "") -> Path:
    """A config on ``db_url`` with providers pointed at the sandbox."""
    providers = "".join(
        f'[providers.{name}]\nbase_url = "{url}"\n' for name, url in (base_urls or {}).items()
    )
    path.write_text(f'[database]\nurl = "{db_url}"\n[scheduler]\nscan_interval = "1s"\n'
                    '[api]\nport = 0\n'
                    f'{extra}\n{providers}', encoding="utf-8")
    return path
