"""``providers check`` checks every account of every provider (issue 19), as a real process
against the in-repo sandbox over loopback HTTP.

One line per provider account, named as ``label`` names it (``smartpay/brand-b``); one
account's wrong credentials make that line FAILED without hiding the other account's OK, and
the exit status is 1; an account without its secret is NOT CONFIGURED naming that account's
variable. A configuration without ``accounts`` prints one line per provider, as before.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchdog.sandbox import SandboxServer
from watchdog.sandbox.accounts import account_env
from watchdog.sandbox.credentials import SANDBOX_ENV

pytestmark = pytest.mark.slow  # runs the CLI as a process


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


def _check(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``providers check`` as its own process, with only ``env`` (no inherited keys)."""
    return subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(config), "providers", "check"],
        capture_output=True, text=True, check=False, timeout=60,
        env={"PATH": "/usr/bin:/bin", **env})


def _lines(stdout: str) -> dict[str, str]:
    """``{label: the rest of its line}`` of the command's output."""
    found = {}
    for line in stdout.splitlines():
        who, _, rest = line.partition(" ")
        assert who not in found, f"{who} is reported twice: {stdout}"
        found[who] = rest.strip()
    return found


def _two_smartpay_accounts(tmp_path: Path, sandbox: SandboxServer, extra: str = "") -> Path:
    config = tmp_path / "watchdog.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n'
        "[providers.smartpay.accounts.brand-a]\n"
        f'base_url = "{sandbox.base_urls("brand-a")["smartpay"]}"\n'
        "[providers.smartpay.accounts.brand-b]\n"
        f'base_url = "{sandbox.base_urls("brand-b")["smartpay"]}"\n{extra}',
        encoding="utf-8")
    return config


def test_one_accounts_wrong_credentials_fail_that_line_only(
    tmp_path: Path, sandbox: SandboxServer,
) -> None:
    sandbox.reset()
    config = _two_smartpay_accounts(tmp_path, sandbox)
    # brand-b presents brand-a's key: the sandbox refuses it as wrong credentials.
    env = {**account_env("smartpay", "brand-a"),
           "WATCHDOG_SMARTPAY_BRAND_B_SECRET_KEY":
               account_env("smartpay", "brand-a")["WATCHDOG_SMARTPAY_BRAND_A_SECRET_KEY"]}
    result = _check(config, env)
    lines = _lines(result.stdout)
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines["smartpay/brand-a"].startswith("OK: smartpay check: succeeded"), lines
    assert lines["smartpay/brand-b"].startswith("FAILED: smartpay check: rejected"), lines
    assert "HTTP 401" in lines["smartpay/brand-b"], lines
    assert "smartpay" not in lines, lines  # no provider-wide line hides the accounts
    refused = [r for r in sandbox.requests() if r["status"] == 401]
    assert {r["account"] for r in refused} == {"brand-b"}, refused


def test_both_accounts_right_is_exit_0(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = _two_smartpay_accounts(tmp_path, sandbox)
    env = {**account_env("smartpay", "brand-a"), **account_env("smartpay", "brand-b")}
    result = _check(config, env)
    lines = _lines(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines["smartpay/brand-a"].startswith("OK: "), lines
    assert lines["smartpay/brand-b"].startswith("OK: "), lines


def test_an_account_without_its_secret_is_not_configured_naming_its_variable(
    tmp_path: Path, sandbox: SandboxServer,
) -> None:
    # smartpay/brand-b has no key; flitt has two accounts and neither has credentials, so
    # no flitt account is usable and each line still names its own variable.
    config = _two_smartpay_accounts(
        tmp_path, sandbox, "[providers.flitt.accounts.ge-shop]\n"
        "[providers.flitt.accounts.am-shop]\n[providers.flitt.accounts.old-shop]\n"
        "enabled = false\n")
    result = _check(config, account_env("smartpay", "brand-a"))
    lines = _lines(result.stdout)
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines["smartpay/brand-a"].startswith("OK: "), lines
    assert lines["smartpay/brand-b"].startswith("NOT CONFIGURED: "), lines
    assert "WATCHDOG_SMARTPAY_BRAND_B_SECRET_KEY" in lines["smartpay/brand-b"], lines
    for account in ("ge-shop", "am-shop"):
        line = lines[f"flitt/{account}"]
        infix = account.upper().replace("-", "_")
        assert line.startswith("NOT CONFIGURED: "), lines
        assert re.search(rf"WATCHDOG_FLITT_{infix}_(MERCHANT_ID|SECRET_KEY)\b", line), line
    assert lines["flitt/old-shop"] == "NOT CONFIGURED: disabled in the configuration", lines


def test_a_configuration_without_accounts_prints_one_line_per_provider(
    tmp_path: Path, sandbox: SandboxServer,
) -> None:
    urls = "".join(f'[providers.{name}]\nbase_url = "{url}"\n'
                   for name, url in sandbox.base_urls().items())
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n{urls}',
                      encoding="utf-8")
    result = _check(config, dict(SANDBOX_ENV))
    assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(sandbox.base_urls())
    lines = result.stdout.splitlines()
    assert [line[:10] for line in lines] == [f"{name:<9} " for name in names], lines
    assert all(line[10:].startswith(f"OK: {name} check: succeeded")
               for name, line in zip(names, lines, strict=True)), lines
    # unconfigured as before: reported, not a failure
    missing = _check(config, {})
    assert missing.returncode == 0, missing.stdout + missing.stderr
    assert [line[:26] for line in missing.stdout.splitlines()] == [
        f"{name:<9} NOT CONFIGURED: " for name in names], missing.stdout
