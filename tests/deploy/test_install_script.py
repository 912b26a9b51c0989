"""deploy/install.sh, run for real with --dry-run (prints, changes nothing, needs no root)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.deploy import DEPLOY, require_binary, run

INSTALL = DEPLOY / "install.sh"
ADMIN = DEPLOY / "bin" / "expiry-watchdog-admin"


def install(*args: str) -> tuple[int, str, str]:
    bash = require_binary("bash")
    result = run([bash, INSTALL, *args], cwd="/")
    return result.returncode, result.stdout, result.stderr


def commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def test_scripts_are_executable_bash_that_parses() -> None:
    bash = require_binary("bash")
    for script in (INSTALL, ADMIN):
        assert os.access(script, os.X_OK), f"{script} is not executable"
        text = script.read_text(encoding="utf-8")
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in text
        result = run([bash, "-n", script])
        assert result.returncode == 0, result.stderr


def test_dry_run_daemon_prints_every_step_in_order() -> None:
    code, out, err = install("--version", "0.1.0", "--dry-run")
    assert code == 0, err
    cmds = commands(out)
    joined = "\n".join(cmds)
    # 1. user (or a note that it exists) and 2. directories
    assert re.search(r"^useradd --system .* expiry-watchdog$", joined, re.M) or \
        "# skip: user expiry-watchdog exists" in out
    assert "install -d -m 0700 -o root -g root /etc/expiry-watchdog/credentials" in cmds
    assert "install -d -m 0700 -o expiry-watchdog -g expiry-watchdog /var/lib/expiry-watchdog" in cmds
    # 3. the locked dependencies (hash-checked, wheels only), then the release without them
    pip = "/opt/expiry-watchdog/bin/pip install --quiet --disable-pip-version-check"
    locked = next(i for i, c in enumerate(cmds) if c.startswith(
        f"{pip} --require-hashes --only-binary :all: --no-deps -r ")
        and c.endswith("/requirements.lock"))
    assert cmds[locked + 1] == f"{pip} --only-binary :all: --no-deps expiry-watchdog==0.1.0"
    # 4. config only if absent (mode 0640, group readable by the service)
    assert any(c.endswith("/etc/expiry-watchdog/watchdog.toml") and "-m 0640" in c for c in cmds) \
        or "# skip: /etc/expiry-watchdog/watchdog.toml exists" in out
    # 5. migrate as the service user, before 6. units are (re)started
    migrate = next(i for i, c in enumerate(cmds)
                   if "runuser -u expiry-watchdog" in c and c.endswith("db upgrade"))
    restart = cmds.index("systemctl restart expiry-watchdog.service")
    assert migrate < cmds.index("systemctl daemon-reload") < restart
    assert "systemctl enable expiry-watchdog.service" in cmds
    assert "systemctl disable --now expiry-watchdog-scan.timer" in cmds
    # 7. next steps
    assert "next steps" in out and "docs/runbook.md" in out


def test_dry_run_timer_mode_with_a_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "expiry_watchdog-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")  # only its path is used in a dry run
    code, out, err = install("--wheel", str(wheel), "--mode", "timer", "--no-start", "--dry-run")
    assert code == 0, err
    cmds = commands(out)
    assert any("--require-hashes" in c and c.endswith("/requirements.lock") for c in cmds)
    assert any(c.endswith(f"pip install --quiet --disable-pip-version-check --only-binary :all: "
                          f"--no-deps {wheel}") for c in cmds)
    assert "systemctl enable expiry-watchdog-scan.timer" in cmds
    assert "systemctl disable --now expiry-watchdog.service" in cmds
    assert not any(c.startswith("systemctl restart") for c in cmds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say what to install"),
        (("--version", "0.1.0", "--wheel", "x.whl"), "exclude each other"),
        (("--version", "latest"), "is not a release number"),
        (("--version", "0.1.0", "--mode", "cron"), "--mode must be daemon or timer"),
        (("--wheel", "/nonexistent/x.whl"), "does not exist"),
        (("--version", "0.1.0", "--frobnicate"), "unknown argument"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(args: tuple[str, ...], message: str) -> None:
    code, out, err = install(*args, "--dry-run")
    assert code != 0
    assert message in err
    assert not commands(out), "nothing may run after a usage error"


def test_without_dry_run_it_needs_root() -> None:
    """Run as an unprivileged user (root drops to nobody with setpriv first).

    ``deploy/`` is copied to a directory of its own that nobody may read: the clone may
    sit in a private directory (``mktemp -d`` makes one) that nobody cannot enter.
    """
    with tempfile.TemporaryDirectory() as shared:
        Path(shared).chmod(0o755)
        script = Path(shutil.copytree(DEPLOY, Path(shared) / "deploy")) / INSTALL.name
        prefix = []
        if os.geteuid() == 0:
            prefix = [require_binary("setpriv"), "--reuid=65534", "--regid=65534",
                      "--clear-groups"]
        result = run([*prefix, require_binary("bash"), script, "--version", "0.1.0"], cwd="/")
    assert result.returncode != 0
    assert "run as root" in result.stderr
    assert not commands(result.stdout)


def test_credentials_must_be_keys_the_watchdog_reads(tmp_path: Path) -> None:
    """A misnamed key file would never reach the daemon: refuse it before changing anything."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "SMARTPAY_SECRET_KEY").write_text("sk_test_x\n", encoding="utf-8")
    (keys / "SMARTPAY_KEY").write_text("sk_test_x\n", encoding="utf-8")
    code, out, err = install("--version", "0.1.0", "--credentials", str(keys), "--dry-run")
    assert code != 0
    assert "'SMARTPAY_KEY' is not a key the watchdog reads" in err
    assert not commands(out)
    (keys / "SMARTPAY_KEY").unlink()
    code, out, err = install("--version", "0.1.0", "--credentials", str(keys),
                             "--config", str(keys / "SMARTPAY_SECRET_KEY"), "--dry-run")
    assert code == 0, err
    cmds = commands(out)
    assert (f"install -m 0600 -o root -g root {keys}/SMARTPAY_SECRET_KEY "
            "/etc/expiry-watchdog/credentials/SMARTPAY_SECRET_KEY") in cmds
    assert any(c.startswith("install -m 0640 -o root -g expiry-watchdog ") and
               c.endswith(" /etc/expiry-watchdog/watchdog.toml") for c in cmds)
