"""Run every benchmark (each in its own process) and print a summary table.

    python -m bench.run_all [--quick] [--only due_discovery,audit_write]

Every benchmark appends its JSON line to ``bench/results/<name>.jsonl`` tagged with
this run's id. A missed goal is FAIL in the table, not an error; the exit status is
non-zero only when a benchmark crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import RESULTS, ROOT, machine

BENCHMARKS = ["due_discovery", "capture_throughput", "audit_write", "memory", "cold_start",
              "scale_out"]


def record_of(name: str, run_id: str) -> dict[str, Any] | None:
    """This run's JSON line of benchmark ``name``."""
    path = RESULTS / f"{name}.jsonl"
    if not path.exists():
        return None
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        if record.get("run_id") == run_id:
            return dict(record)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CI size")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    args = parser.parse_args()
    run_id = time.strftime("%Y%m%dT%H%M%S")
    env = {**os.environ, "BENCH_RUN_ID": run_id}
    print(f"run {run_id} ({'quick' if args.quick else 'full'}) on {machine()}", flush=True)
    rows, crashed, started = [], [], time.perf_counter()
    for name in args.only.split(","):
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        argv = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if args.quick else [])
        code = subprocess.run(argv, env=env, cwd=ROOT, check=False).returncode
        seconds = time.perf_counter() - start
        record = record_of(name, run_id)
        if code != 0 or record is None:
            crashed.append(name)
            rows.append((name, "CRASHED", f"exit {code}", "", f"{seconds:.0f}s", ""))
            continue
        rss = record["peak_rss_mb"]
        for i, g in enumerate(record["goals"]):
            rows.append((name if i == 0 else "", "PASS" if g["pass"] else "FAIL", g["goal"],
                         f"{g['value']:,.2f}{g['unit']} ({g['target']}{g['unit']})",
                         f"{seconds:.0f}s" if i == 0 else "",
                         f"{rss['self']:.0f}/{rss['children']:.0f} MB" if i == 0 else ""))
    header = ("benchmark", "", "goal", "value (target)", "time", "peak RSS self/children")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\nsummary of run {run_id} ({time.perf_counter() - started:.0f}s):")
    for r in [header, *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    failed = sum(1 for r in rows if r[1] == "FAIL")
    print(f"  {failed} goal(s) missed; results in {RESULTS}/<name>.jsonl (run_id {run_id})")
    sys.exit(1 if crashed else 0)


if __name__ == "__main__":
    main()
