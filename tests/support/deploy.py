"""Shared paths and helpers for the deployment tests (real processes, no mocks).

A binary these tests need that is missing fails the test with the package to
install; nothing here is ever skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from watchdog.domain import ProviderName

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNITS = DEPLOY / "systemd"
EXAMPLE_CONFIG = DEPLOY / "watchdog.example.toml"

# What to install when a binary is missing (Debian/Ubuntu package names).
_PACKAGES = {"systemd-analyze": "systemd", "flock": "util-linux", "setpriv": "util-linux", "bash": "bash"}


def require_binary(name: str) -> str:
    """Absolute path of ``name`` on PATH, or fail the test saying how to get it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH; install the {_PACKAGES.get(name, name)!r} package "
                    f"(apt-get install {_PACKAGES.get(name, name)})")
    return path


def watchdog_cli() -> Path:
    """The ``expiry-watchdog`` console script of the interpreter running the tests."""
    path = Path(sys.executable).parent / "expiry-watchdog"
    if not path.exists():
        pytest.fail(f"{path} does not exist; install the project into this venv "
                    "(pip install -e '.[test]')")
    return path


def run(args: list[str | Path], timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capture text output, never raise on a non-zero exit."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False,
        **kwargs,
    )


PROVIDERS = tuple(p.value for p in ProviderName)  # the registry's


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would steer the watchdog
    (config, database URL, provider keys, systemd's notify/watchdog/credentials)."""
    steering = ("WATCHDOG_", "NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY", "LISTEN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(steering)}
    env.update(extra)
    return env


def sqlite_config(path: Path, database: Path, **scheduler: str) -> Path:
    """Write a config on a SQLite file with every provider disabled (no network)."""
    lines = ["[database]", f'url = "sqlite:///{database}"', "[api]", "port = 0"]
    if scheduler:
        lines.append("[scheduler]")
        lines += [f'{key} = "{value}"' for key, value in scheduler.items()]
    for name in PROVIDERS:
        lines += [f"[providers.{name}]", "enabled = false"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
