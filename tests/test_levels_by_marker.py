"""Levels by marker: ``-m "not slow and not postgres"`` is the in-process level, so a test that
starts the watchdog (CLI, daemon, API server, sandbox) or an Alertmanager as a process must carry
``slow``, and one that starts its own PostgreSQL server must carry ``postgres``. Tests on the
session's PostgreSQL get ``postgres`` from tests/conftest.py (the ``db_url`` parameter and the
``postgres`` fixture), so only what a module starts itself is checked here, by reading it."""

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
STARTS_OUR_PROCESS = re.compile(
    r"from tests\.support\.cli import[^\n]*\bcli\b|watchdog_cli\(|Popen\(\s*\[sys\.executable|"
    r"\"-m\", \"watchdog|AlertmanagerServer\(|alertmanager: AlertmanagerServer")
STARTS_POSTGRES = re.compile(r"PostgresServer\(")


def _modules(pattern: re.Pattern[str]) -> list[Path]:
    return sorted(path for path in TESTS.rglob("test_*.py")
                  if path != Path(__file__) and pattern.search(path.read_text()))


@pytest.mark.parametrize(("pattern", "marker"), [(STARTS_OUR_PROCESS, "slow"),
                                                 (STARTS_POSTGRES, "postgres")],
                         ids=["slow", "postgres"])
def test_modules_that_start_processes_carry_the_marker(pattern: re.Pattern[str],
                                                        marker: str) -> None:
    modules = _modules(pattern)
    assert modules, "the scan finds nothing: the pattern no longer matches the helpers"
    unmarked = [str(m.relative_to(TESTS)) for m in modules
                if f"pytest.mark.{marker}" not in m.read_text()]
    assert unmarked == [], f"mark these (module or test) `pytest.mark.{marker}`: {unmarked}"
