"""A timer's ``scan`` starts often: the CLI must not import alembic (only the ``db`` commands
need it), which cost ~30 ms of its cold start (``bench.cold_start``)."""

from __future__ import annotations

import subprocess
import sys


def test_loading_the_cli_does_not_import_alembic() -> None:
    probe = ("import sys; import watchdog.cli; from watchdog.cli.common import expected_errors; "
             "expected_errors(); print(sorted(m for m in sys.modules if m.split('.')[0] == "
             "'alembic'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_alembic_errors_are_expected_once_alembic_is_loaded() -> None:
    from alembic.util import CommandError

    from watchdog.cli.common import expected_errors

    assert CommandError in expected_errors()
