"""The CLI's audit actor comes from the real uid, not from the environment (issue 17)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from click.testing import CliRunner

from watchdog import audit, schema
from watchdog.cli import main
from watchdog.cli.common import operator
from watchdog.db import make_engine

HOST = os.uname().nodename
ME = pwd.getpwuid(os.getuid()).pw_name


def test_logname_and_user_are_ignored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    result = CliRunner().invoke(main, ["pause", "--reason", "maintenance"], env={
        "WATCHDOG_DATABASE_URL": url, "WATCHDOG_CONFIG": "", "LOGNAME": "cfo", "USER": "cfo",
        "LNAME": "cfo", "USERNAME": "cfo", "SUDO_UID": None, "SUDO_USER": None})
    assert result.exit_code == 0, result.output
    actors = {row.actor for row in audit.query(engine) if not row.actor.startswith("migration:")}
    engine.dispose()
    assert actors == {f"cli:{ME}@{HOST}"}


def test_sudo_names_the_invoking_account_after_the_real_one() -> None:
    assert operator({"SUDO_UID": str(os.getuid() + 1), "SUDO_USER": "x"}, uid=0).startswith(
        f"cli:{pwd.getpwuid(0).pw_name}@{HOST}(sudo:")
    assert operator({"SUDO_UID": "0", "SUDO_USER": "root"}, uid=0) == (
        f"cli:{pwd.getpwuid(0).pw_name}@{HOST}")
    assert operator({"SUDO_USER": "alice"}, uid=0).endswith("(sudo:alice)")
    assert operator({"SUDO_USER": "al\nice"}, uid=0) == f"cli:{pwd.getpwuid(0).pw_name}@{HOST}"


def test_an_unknown_uid_is_named_by_number() -> None:
    assert operator({}, uid=4_000_000) == f"cli:uid4000000@{HOST}"
