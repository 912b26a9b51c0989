"""Capture throughput end to end: due authorizations completed per second.

N due authorizations spread over the four providers; the sandbox runs in its own
process and answers every provider request after 50 ms. A completed authorization is
a status read, a capture, the state changes and their audit rows, exactly as
``expiry-watchdog scan`` does them (``runtime.scanner_runtime`` + ``Scanner.run_pass``).
Measured with 64 in flight (scheduler.concurrency=64, providers max_concurrency 16)
and 256 (no-collapse check), against the latency-bound limit
concurrency / (2 x latency) and against a sequential pass (concurrency=1) in the same run.

    python -m bench.capture_throughput [--quick] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
from bench.worker import one_pass
from watchdog import audit
from watchdog.models import Authorization

LATENCY = 0.05


def _extra(parser: Any) -> None:
    parser.add_argument("--rows", type=int, default=None, help="authorizations per concurrent run")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="scheduler.batch_size (default: max(100, concurrency))")


def check_effects(sandbox: SandboxProcess, engine: Any, n: int) -> dict[str, Any]:
    """Every authorization captured once at the sandbox and in our table; the chain intact."""
    captures = Counter((e["provider"], e["order_id"]) for e in sandbox.ledger()
                       if e["operation"] == "capture")
    with Session(engine) as session:
        states = dict(session.execute(
            select(Authorization.state, func.count()).group_by(Authorization.state)).all())
    chain = audit.verify(engine).rows
    return {"captured_rows": states.get("captured", 0), "states": states,
            "orders_captured": len(captures), "double_captures": sum(
                1 for c in captures.values() if c > 1), "audit_rows": chain,
            "complete": states.get("captured", 0) == n == len(captures)}


def run_once(new_db: Any, sandbox: SandboxProcess, backend: str, n: int, concurrency: int,
             batch_size: int, label: str) -> dict[str, Any]:
    """Load ``n`` due rows into a fresh database and time one pass over them."""
    sandbox.reset()
    url = new_db(f"{backend}:{label}")
    engine = migrated(url)
    bulk_load(engine, authorization_rows(n, due=1.0))
    server = getattr(new_db, "server", None)
    postmaster = postgres_pid(server) if backend == "postgresql" and server else None
    sandbox_cpu = cpu_seconds(sandbox.proc.pid)
    pg_cpu = tree_cpu_seconds(postmaster) if postmaster else 0.0
    result = one_pass(url, sandbox.base_urls(), concurrency, batch_size)
    sandbox_cpu = cpu_seconds(sandbox.proc.pid) - sandbox_cpu
    time.sleep(0.5)  # let the postmaster reap the pass's backends (their CPU counts then)
    pg_cpu = (tree_cpu_seconds(postmaster) - pg_cpu) if postmaster else 0.0
    checks = check_effects(sandbox, engine, n)
    engine.dispose()
    rate = checks["captured_rows"] / result["seconds"]
    out = {"rows": n, "concurrency": concurrency, "batch_size": batch_size,
           "seconds": round(result["seconds"], 3), "per_second": round(rate, 1),
           "limit_per_second": concurrency / (2 * LATENCY),
           "bench_cpu_share": round(result["cpu_seconds"] / result["seconds"], 3),
           "sandbox_cpu_share": round(sandbox_cpu / result["seconds"], 3),
           "postgres_cpu_share": round(pg_cpu / result["seconds"], 3),
           "errors": result["errors"], "steps": result["steps"],
           "cpu_ms_per_row": round(result["cpu_seconds"] * 1000 / n, 2),
           "statements_per_row": round(result["statements"] / n, 1),
           "commits_per_row": round(result["commits"] / n, 2), **checks}
    print(f"  {backend:<10} {concurrency:>3} in flight, {n:>5} rows: {rate:7.1f}/s "
          f"({out['seconds']:.2f}s; limit {out['limit_per_second']:.0f}/s = "
          f"{rate / out['limit_per_second']:.0%}); CPU: watchdog {out['bench_cpu_share']:.0%}, "
          f"sandbox {out['sandbox_cpu_share']:.0%}"
          + (f", PostgreSQL {out['postgres_cpu_share']:.0%}" if postmaster else "")
          + f"; captured {checks['captured_rows']}/{n}, "
          f"double captures {checks['double_captures']}, audit rows {checks['audit_rows']}\n"
          f"{'':13}per authorization: {out['cpu_ms_per_row']} ms CPU in the watchdog, "
          f"{out['statements_per_row']} SQL statements, {out['commits_per_row']} commits",
          flush=True)
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], _extra)
    n = args.rows or (1000 if args.quick else 2000)
    n_seq = 20 if args.quick else 100
    report = Report("capture_throughput", args.quick)
    print(f"capture throughput: sandbox latency {LATENCY * 1000:.0f} ms in its own process")
    with databases(args.backends) as new_db, sandbox_process(LATENCY) as sandbox:
        for backend in args.backends.split(","):
            runs = {}
            for c, rows in ((1, n_seq), (64, n), (256, n)):
                batch = args.batch_size or max(100, c)
                time.sleep(0.5)  # let the previous run's connections close
                runs[c] = run_once(new_db, sandbox, backend, rows, c, batch, f"cap{c}")
                report.figure(f"{backend}_{c}", runs[c], "")
            cpu_bound = 1000 / runs[64]["cpu_ms_per_row"]
            report.figure(f"{backend}_cpu_bound_per_second", round(cpu_bound, 1),
                          f"  {backend}: one watchdog process is CPU-bound at ~{cpu_bound:.0f}/s "
                          f"({runs[64]['cpu_ms_per_row']} ms CPU per authorization)")
            seq, at64, at256 = (runs[c]["per_second"] for c in (1, 64, 256))
            report.goal(f"{backend} 64 in flight vs limit 640/s", at64 / 640, 0.6)
            report.goal(f"{backend} 64 in flight", at64, 384, unit="/s")
            report.goal(f"{backend} 64 in flight vs sequential ({seq:.1f}/s)", at64 / seq, 40)
            report.goal(f"{backend} 256 in flight vs 64", at256 / at64, 0.9)
            report.goal(f"{backend} every authorization captured exactly once", float(all(
                r["complete"] and r["double_captures"] == 0 for r in runs.values())), 1, unit="")
            report.figure(f"{backend}_sandbox_cpu_share_max",
                          max(r["sandbox_cpu_share"] for r in runs.values()),
                          f"  {backend}: sandbox CPU share at most "
                          f"{max(r['sandbox_cpu_share'] for r in runs.values()):.0%} of one core")
    report.finish()


if __name__ == "__main__":
    run_main(main)
