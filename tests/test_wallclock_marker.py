"""Every test module that reads the real clock is re-run a year ahead by `make test`.

A fixed calendar date compared against the wall clock passes on the day it is written and fails
weeks later (an import dated 2026-11-20 fell out of `plan --horizon 30d` at the end of November).
`make test` therefore runs the ``wallclock``-marked tests once more with every Python process's
clock shifted a year ahead (tests/support/clock_ahead). That guard only covers modules that carry
the marker, so this test makes the marker impossible to forget.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
READS_THE_WALL_CLOCK = re.compile(r"datetime\.now\(|pendulum\.now\(|time\.time\(\)|SystemClock\(")
MARKED = re.compile(r"^pytestmark = .*pytest\.mark\.wallclock", re.MULTILINE)
LITERAL_DATE = re.compile(r"\b20\d\d-\d\d-\d\d|datetime\(20\d\d,")
EXEMPT = {
    # Compares against Alertmanager's own clock, which no shift of Python's clock reaches.
    "support/test_support.py",
    # Each builds every instant from now() and kills real processes for about 30 s a run: a second
    # run a year ahead would add a minute to CI and could not catch anything, since they hold no
    # literal date (checked below).
    "e2e/test_kill_storm.py",
    "e2e/test_timer_scan_kill.py",
}


def wall_clock_modules() -> list[str]:
    """Test modules whose source reads the real clock."""
    return sorted(
        str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py")
        if path != Path(__file__) and READS_THE_WALL_CLOCK.search(path.read_text())
    )


def test_every_module_reading_the_wall_clock_is_marked_wallclock() -> None:
    modules = wall_clock_modules()
    assert "e2e/test_cli.py" in modules  # the scan itself still finds what it is meant to
    unmarked = [m for m in modules
                if m not in EXEMPT and not MARKED.search((TESTS / m).read_text())]
    assert unmarked == [], f"mark these `pytestmark = pytest.mark.wallclock`: {unmarked}"


def test_an_exempt_module_holds_no_literal_date() -> None:
    dated = [m for m in sorted(EXEMPT - {"support/test_support.py"})
             if LITERAL_DATE.search((TESTS / m).read_text())]
    assert dated == [], f"these hold a literal date, so they must be marked wallclock: {dated}"


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
