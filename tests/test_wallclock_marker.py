"""Every test that could rot with the calendar is re-run a year ahead by `make test`.

A fixed calendar date compared against the wall clock passes on the day it is written and fails
weeks later (an import dated 2026-11-20 fell out of `plan --horizon 30d` at the end of November).
`make test` therefore runs the ``wallclock``-marked tests once more with every Python process's
clock shifted a year ahead (tests/support/clock_ahead). That guard only covers modules that carry
the marker, so this test makes the marker impossible to forget where it matters: on every module
that meets the real clock (reads it, or runs the CLI, the daemon, the API or the sandbox, which
read it) and holds a literal date, itself or in a test helper it imports. A module with no
literal date builds every instant from now() and cannot rot; the slow kill and restart tests are
such modules and run once.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
MEETS_THE_REAL_CLOCK = re.compile(
    r"datetime\.now\(|pendulum\.now\(|time\.time\(\)|SystemClock\(|CliRunner|subprocess|"
    r"TestClient|SandboxServer|from tests\.support\.cli import")
MARKED = re.compile(r"^pytestmark = .*pytest\.mark\.wallclock", re.MULTILINE)
LITERAL_DATE = re.compile(r"\b20\d\d-\d\d-\d\d|datetime\(20\d\d,")
IMPORTED_HELPER = re.compile(r"^from tests\.([\w.]+) import", re.MULTILINE)
# Compares against Alertmanager's own clock, which no shift of Python's clock reaches.
EXEMPT = {"support/test_support.py"}


def sources(path: Path) -> list[Path]:
    """The module and the test helpers it imports (``from tests.x import ...``)."""
    helpers = [TESTS / name.replace(".", "/") for name in IMPORTED_HELPER.findall(path.read_text())]
    return [path, *(h.with_suffix(".py") if h.with_suffix(".py").exists() else h / "__init__.py"
                    for h in helpers)]


def is_dated(path: Path) -> bool:
    """True if the module or a helper it imports holds a literal calendar date."""
    return any(LITERAL_DATE.search(source.read_text()) for source in sources(path))


def modules_meeting_the_real_clock() -> list[Path]:
    """Test modules that read the real clock or run something that does."""
    return sorted(path for path in TESTS.rglob("test_*.py")
                  if path != Path(__file__) and MEETS_THE_REAL_CLOCK.search(path.read_text()))


def test_every_dated_module_meeting_the_real_clock_is_marked_wallclock() -> None:
    modules = modules_meeting_the_real_clock()
    assert TESTS / "e2e" / "test_cli.py" in modules  # the scan still finds what it is meant to
    unmarked = [str(m.relative_to(TESTS)) for m in modules
                if str(m.relative_to(TESTS)) not in EXEMPT and is_dated(m)
                and not MARKED.search(m.read_text())]
    assert unmarked == [], f"mark these `pytestmark = pytest.mark.wallclock`: {unmarked}"


def test_is_dated_tells_a_dated_module_from_one_built_on_now() -> None:
    assert is_dated(TESTS / "e2e" / "test_database_errors.py")
    assert not is_dated(TESTS / "e2e" / "test_kill_storm.py")


def test_the_clock_ahead_pass_shifts_subprocesses_too() -> None:
    env = {**os.environ, "WATCHDOG_TEST_CLOCK_AHEAD_DAYS": "365",
           "PYTHONPATH": str(TESTS / "support" / "clock_ahead")}
    code = "import datetime; print(datetime.datetime.now(datetime.UTC).timestamp())"

    def child_clock(child_env: dict[str, str]) -> float:
        out = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True,
                             text=True, check=True)
        return float(out.stdout)

    today = {k: v for k, v in os.environ.items() if k != "WATCHDOG_TEST_CLOCK_AHEAD_DAYS"}
    shift = child_clock(env) - child_clock(today)
    assert abs(shift - 365 * 86400) < 60
