"""Audit writing: rows/s with 100 rows per transaction vs one row per transaction.

Both through ``audit.append`` (keyed MAC chain; the PostgreSQL advisory lock) in
``db.transaction``, as the service writes them; the chain is verified afterwards.
(The Core executemany once measured here as a proposal is what ``append`` does now.)

    python -m bench.audit_write [--quick] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from bench.common import NOW, Report, databases, migrated, parse_args, run_main
from watchdog import audit
from watchdog.audit import AuditEvent
from watchdog.db import transaction

BATCH = 100


def event(i: int) -> AuditEvent:
    """A realistic row: a capture outcome with a small detail document."""
    return AuditEvent(
        event="scan:capture:outcome", actor="worker@bench:1", authorization_id=i,
        provider="clearpay", order_id=str(1_000_000 + i), amount=10_000, currency="GBP",
        idempotency_key=f"ew-{i}-1-a1", state_from="capturing", state_to="captured",
        outcome="succeeded",
        detail={"http_status": 201, "request_id": f"req-{i}", "provider_state": "CAPTURED"},
    )


def write(engine: Engine, rows: int, per_tx: int, append: Any = audit.append) -> float:
    """Append ``rows`` rows, ``per_tx`` per transaction; return rows per second."""
    start = time.perf_counter()
    for first in range(0, rows, per_tx):
        with transaction(engine) as session:
            append(session, [event(i) for i in range(first, first + per_tx)], NOW)
    return rows / (time.perf_counter() - start)


def measure(engine: Engine, batched_rows: int, single_rows: int) -> dict[str, Any]:
    """Both modes on the same database, then a full chain verification."""
    write(engine, BATCH, BATCH)  # warm-up: statement caches, first pages
    single = write(engine, single_rows, 1)
    batched = write(engine, batched_rows, BATCH)
    start = time.perf_counter()
    verified = audit.verify(engine)
    verify_s = time.perf_counter() - start
    total = 1 + BATCH + single_rows + batched_rows  # 1: the re-key row of migration 0006
    return {"batched_rows_per_s": round(batched), "single_rows_per_s": round(single),
            "ratio": batched / single, "verified_rows": verified.rows,
            "chain_ok": verified.rows == total,
            "verify_rows_per_s": round(verified.rows / verify_s)}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    batched_rows, single_rows = (5_000, 500) if args.quick else (50_000, 3_000)
    report = Report("audit_write", args.quick)
    print(f"audit writing: {batched_rows:,} rows {BATCH} per transaction vs "
          f"{single_rows:,} rows one per transaction")
    with databases(args.backends) as new_db:
        for backend in args.backends.split(","):
            engine = migrated(new_db(f"{backend}:audit"))
            try:
                r = measure(engine, batched_rows, single_rows)
            finally:
                engine.dispose()
            report.figure(backend, r, (
                f"  {backend:<10} batched {r['batched_rows_per_s']:>7,} rows/s, one per "
                f"transaction {r['single_rows_per_s']:>6,} rows/s -> {r['ratio']:.1f}x; chain "
                f"verified: {r['verified_rows']:,} rows ({r['verify_rows_per_s']:,} rows/s)"))
            report.goal(f"{backend} batched vs one per transaction", r["ratio"], 10)
            if backend == "sqlite":
                report.goal("sqlite batched rows/s", r["batched_rows_per_s"], 20_000, unit="/s")
            report.goal(f"{backend} chain verifies", float(r["chain_ok"]), 1, unit="")
    report.finish()


if __name__ == "__main__":
    run_main(main)
