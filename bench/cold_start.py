"""Cold start: wall time of ``expiry-watchdog scan`` with nothing due (a systemd timer tick).

Median of 5 subprocess runs on a migrated, empty SQLite database with the four
providers configured, against ``python -c "import sqlalchemy, httpx"`` in the same run.
Also prints the slowest top-level imports of the command (``python -X importtime``).

    python -m bench.cold_start [--quick]
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import Report, databases, migrated, parse_args, run_main
from watchdog.sandbox.credentials import SANDBOX_ENV
from watchdog.sandbox.server import MOUNTS

RUNS = 5
BIN = Path(sys.executable).parent


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run; a failure is a crash of the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{argv} exited {result.returncode}: {result.stderr[-2000:]}")
    return seconds


def slowest_imports(argv: list[str], env: dict[str, str], top: int = 8) -> list[tuple[str, int]]:
    """Top-level packages by the import time spent in their own modules (microseconds)."""
    result = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env,
                            capture_output=True, text=True, check=False)
    totals: Counter[str] = Counter()
    for line in result.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            totals[m.group(2).split(".")[0]] += int(m.group(1))
    return totals.most_common(top)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    report = Report("cold_start", args.quick)
    with databases("sqlite") as new_db:
        url = new_db("sqlite:cold")
        migrated(url).dispose()
        config = Path(url.removeprefix("sqlite:///")).with_suffix(".toml")
        providers = "".join(f'[providers.{name}]\nbase_url = "http://127.0.0.1:9{mount}"\n'
                            for name, mount in MOUNTS.items())
        config.write_text(f'[database]\nurl = "{url}"\n{providers}', encoding="utf-8")
        env = {**os.environ, **SANDBOX_ENV, "WATCHDOG_CONFIG": str(config)}
        scan = [str(BIN / "expiry-watchdog"), "scan"]
        baseline = [sys.executable, "-c", "import sqlalchemy, httpx"]
        timed(scan, env)  # warm the page cache and the bytecode caches
        timed(baseline, env)
        scans, bases = [], []
        for _ in range(RUNS):  # interleaved, so drift hits both alike
            scans.append(timed(scan, env))
            bases.append(timed(baseline, env))
        imports = slowest_imports(["-m", "watchdog", "scan"], env)
    scan_s, base_s = statistics.median(scans), statistics.median(bases)
    report.figure("scan_s", round(scan_s, 3))
    report.figure("baseline_s", round(base_s, 3))
    report.figure("ratio", round(scan_s / base_s, 2), (
        f"  expiry-watchdog scan (nothing due): {scan_s * 1000:.0f} ms median of {RUNS}; "
        f"import sqlalchemy, httpx: {base_s * 1000:.0f} ms -> {scan_s / base_s:.2f}x"))
    report.figure("slowest_imports_ms", {k: round(v / 1000) for k, v in imports},
                  "  import time of `python -m watchdog scan` by package (own modules): "
                  + ", ".join(f"{k} {v / 1000:.0f} ms" for k, v in imports))
    report.goal("scan cold start vs import sqlalchemy, httpx", scan_s / base_s, 2.5,
                higher=False)
    report.finish()


if __name__ == "__main__":
    run_main(main)
