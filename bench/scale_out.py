"""Scale-out: 1, 2 and 4 worker processes on one PostgreSQL over the same backlog.

Each worker is ``python -m bench.worker`` (``scanner_runtime`` + ``Scanner.run_pass``)
against the sandbox process answering after 50 ms. Measures the backlog's throughput
per worker count and checks the sandbox ledger: one capture per order, nothing done
twice.

The goals are on the latency-bound workload: 16 in flight per worker, so that one
worker is held back by the providers' 50 ms (limit 16 / 0.1 s = 160/s), not by its
CPU; adding workers must add throughput. The full run also repeats the series with 64
in flight per worker, where one worker already keeps a core busy and, on a 2-core
machine shared with PostgreSQL and the sandbox, more workers can only share the CPU
(figures only: it shows that they do not collapse).

    python -m bench.scale_out [--quick] [--rows N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from bench.common import (
    Report,
    authorization_rows,
    bulk_load,
    databases,
    migrated,
    parse_args,
    run_main,
)
from bench.processes import (
    SandboxProcess,
    cpu_seconds,
    postgres_pid,
    sandbox_process,
    tree_cpu_seconds,
)

LATENCY = 0.05
LATENCY_BOUND = 16  # in flight per worker
CPU_BOUND = 64


def _extra(parser: Any) -> None:
    parser.add_argument("--rows", type=int, default=None, help="backlog size")


def run_workers(url: str, sandbox: SandboxProcess, k: int, concurrency: int,
                ) -> list[dict[str, Any]]:
    """Start ``k`` workers, release them together, collect their JSON reports."""
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.worker", "--url", url, "--sandbox", sandbox.url,
         "--concurrency", str(concurrency), "--worker", f"w{i}",
         # Batches of twice the rows in flight: small enough that the backlog is shared
         # evenly, large enough that claiming is a small part of the work.
         "--batch-size", str(2 * concurrency)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(k)]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker failed to start")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=1800)
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def measure(new_db: Any, sandbox: SandboxProcess, k: int, n: int, concurrency: int,
            ) -> dict[str, Any]:
    """One backlog of ``n`` due rows worked by ``k`` workers with ``concurrency`` each."""
    sandbox.reset()
    url = new_db(f"postgresql:scale{k}x{concurrency}")
    migrated(url).dispose()
    bulk_load(migrated(url), authorization_rows(n, due=1.0))
    postmaster = postgres_pid(new_db.server)
    sandbox_cpu, pg_cpu = cpu_seconds(sandbox.proc.pid), tree_cpu_seconds(postmaster)
    results = run_workers(url, sandbox, k, concurrency)
    sandbox_cpu = cpu_seconds(sandbox.proc.pid) - sandbox_cpu
    time.sleep(0.5)  # let the postmaster reap the pass's backends (their CPU counts then)
    pg_cpu = tree_cpu_seconds(postmaster) - pg_cpu
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    ledger = [e for e in sandbox.ledger() if e["operation"] == "capture"]
    per_order = Counter((e["provider"], e["order_id"]) for e in ledger)
    out = {"workers": k, "in_flight_per_worker": concurrency, "rows": n,
           "seconds": round(wall, 2), "per_second": round(n / wall, 1),
           "claimed": [r["claimed"] for r in results],
           "errors": sum(r["errors"] for r in results),
           "orders_captured": len(per_order),
           "double_captures": sum(1 for c in per_order.values() if c > 1),
           "worker_cpu_share": round(sum(r["cpu_seconds"] for r in results) / wall, 2),
           "sandbox_cpu_share": round(sandbox_cpu / wall, 2),
           "postgres_cpu_share": round(pg_cpu / wall, 2),
           "loadavg_1m": round(os.getloadavg()[0], 2)}
    out["exactly_once"] = out["orders_captured"] == n and out["double_captures"] == 0
    print(f"  {k} worker(s) x {concurrency}: {n:,} rows in {wall:.1f}s = {n / wall:6.1f}/s; "
          f"claimed per worker "
          f"{out['claimed']}; captured {len(per_order):,} orders, double captures "
          f"{out['double_captures']}; CPU: workers {out['worker_cpu_share']:.0%}, "
          f"sandbox {out['sandbox_cpu_share']:.0%}, PostgreSQL {out['postgres_cpu_share']:.0%} "
          f"(of one core; load average {out['loadavg_1m']})", flush=True)
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], _extra)
    n = args.rows or (600 if args.quick else 3000)
    report = Report("scale_out", args.quick)
    print(f"scale-out on PostgreSQL: backlog of {n:,} due authorizations, sandbox "
          f"{LATENCY * 1000:.0f} ms in its own process")
    series = [LATENCY_BOUND] if args.quick else [LATENCY_BOUND, CPU_BOUND]
    runs: dict[tuple[int, int], dict[str, Any]] = {}
    with databases("postgresql") as new_db, sandbox_process(LATENCY) as sandbox:
        for concurrency in series:
            print(f" {concurrency} in flight per worker"
                  + (" (latency-bound: the goals)" if concurrency == LATENCY_BOUND
                     else " (CPU-bound: figures only)"))
            for k in (1, 2, 4):
                time.sleep(0.5)
                runs[(k, concurrency)] = measure(new_db, sandbox, k, n, concurrency)
                report.figure(f"workers_{k}x{concurrency}", runs[(k, concurrency)], "")
    one, two, four = (runs[(k, LATENCY_BOUND)]["per_second"] for k in (1, 2, 4))
    report.goal(f"2 workers vs 1 ({LATENCY_BOUND} in flight each)", two / one, 1.6)
    report.goal(f"4 workers vs 2 ({LATENCY_BOUND} in flight each)", four / two, 1.0)
    if CPU_BOUND in series:
        one, two, four = (runs[(k, CPU_BOUND)]["per_second"] for k in (1, 2, 4))
        report.figure("cpu_bound_ratios", {"2_vs_1": round(two / one, 2),
                                           "4_vs_2": round(four / two, 2)},
                      f"  {CPU_BOUND} in flight each: 2 workers vs 1 = {two / one:.2f}x, "
                      f"4 vs 2 = {four / two:.2f}x (figures only)")
    report.goal("nothing done twice, every order captured",
                float(all(r["exactly_once"] for r in runs.values())), 1, unit="")
    report.finish()


if __name__ == "__main__":
    run_main(main)
