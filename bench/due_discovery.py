"""Due discovery: the time of a pass's selection as the table grows.

10k, 100k and 1M stored authorizations (70% finished: next_action_at NULL; 1% due),
on SQLite and PostgreSQL. Measures ``store.claim_due``'s SELECT (same WHERE / ORDER BY /
LIMIT 100) and ``claim_due`` itself, against the same SELECT with the index unusable
(SQLite ``NOT INDEXED``, PostgreSQL index and bitmap scans off) and against itself at 10k;
and ``check``'s judgement of the data (``health.nagios_check``, the status line's queries).
On PostgreSQL the indexed SELECT runs with ``store.read_due_in_index_order``, as in the claim.

    python -m bench.due_discovery [--quick] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import Engine, or_, select, text
from sqlalchemy.orm import Session

from bench.common import (
    NOW,
    Report,
    authorization_rows,
    bulk_load,
    databases,
    median_time,
    migrated,
    parse_args,
    run_main,
)
from watchdog import store
from watchdog.clock import FrozenClock
from watchdog.config import parse_config
from watchdog.health import nagios_check
from watchdog.models import Authorization

LIMIT = 100
NO_INDEX_PG = ("SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off",
               "SET LOCAL enable_indexonlyscan = off")


def due_select(now: dt.datetime, limit: int = LIMIT) -> Any:
    """The SELECT inside ``store.claim_due``: same predicate, order (the due index's own,
    ``next_action_at, id``) and limit."""
    return (
        select(Authorization.id)
        .where(
            Authorization.next_action_at.is_not(None),
            Authorization.next_action_at <= now,
            or_(Authorization.claimed_until.is_(None), Authorization.claimed_until < now),
        )
        .order_by(Authorization.next_action_at, Authorization.id)
        .limit(limit)
    )


#: ``due_select`` as SQL, with ``{hint}`` where SQLite takes ``NOT INDEXED``.
DUE_SQL = (
    "SELECT id FROM authorizations {hint} WHERE next_action_at IS NOT NULL "
    "AND next_action_at <= :now AND (claimed_until IS NULL OR claimed_until < :now) "
    "ORDER BY next_action_at, id LIMIT :lim"
)


def _sqlite_params() -> dict[str, Any]:
    return {"now": NOW.strftime("%Y-%m-%d %H:%M:%S.%f"), "lim": LIMIT}


def _prepare(session: Session, engine: Engine, *, indexed: bool) -> tuple[Any, dict[str, Any]]:
    """Set the transaction up as the claim (or the full scan) reads; return the SELECT."""
    if engine.dialect.name == "sqlite":
        return text(DUE_SQL.format(hint="" if indexed else "NOT INDEXED")), _sqlite_params()
    if indexed:
        store.read_due_in_index_order(session)  # as claim_due does
    else:
        for stmt in NO_INDEX_PG:
            session.execute(text(stmt))
    return due_select(NOW), {}


def select_ids(engine: Engine, *, indexed: bool) -> list[int]:
    """Run the due SELECT once, with or without the index; return the ids."""
    with Session(engine) as session, session.begin():
        stmt, params = _prepare(session, engine, indexed=indexed)
        return list(session.scalars(stmt, params))


def time_select(engine: Engine, *, indexed: bool, repeat: int) -> float:
    """Median seconds of the due SELECT alone (fetching its ids), ``repeat`` times in one
    transaction set up as the claim's: the statement, not the transaction around it."""
    with Session(engine) as session, session.begin():
        stmt, params = _prepare(session, engine, indexed=indexed)
        return median_time(lambda: list(session.scalars(stmt, params)), repeat)


def plan_of(engine: Engine, *, indexed: bool) -> str:
    """The query plan, one line, to show which path the database took."""
    with Session(engine) as session, session.begin():
        if engine.dialect.name == "sqlite":
            sql = DUE_SQL.format(hint="" if indexed else "NOT INDEXED")
            rows = session.execute(text("EXPLAIN QUERY PLAN " + sql), _sqlite_params()).all()
            return "; ".join(str(r[-1]) for r in rows)
        if indexed:
            store.read_due_in_index_order(session)
        else:
            for stmt in NO_INDEX_PG:
                session.execute(text(stmt))
        stmt = due_select(NOW)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        rows = session.execute(text("EXPLAIN " + sql)).all()
        return "; ".join(r[0].strip() for r in rows[:4])


def claim_once(engine: Engine) -> int:
    """``store.claim_due`` as a pass calls it; a negative lease leaves the rows claimable, so
    every call does the same work."""
    return len(store.claim_due(engine, "bench", NOW, dt.timedelta(seconds=-1), LIMIT))


def measure(engine: Engine, n: int, report: Report, backend: str) -> dict[str, float]:
    """Load ``n`` rows, then time the indexed select, claim_due and the full scan."""
    start = time.perf_counter()
    bulk_load(engine, authorization_rows(n, finished=0.70, due=0.01))
    load_s = time.perf_counter() - start
    indexed = select_ids(engine, indexed=True)
    full = select_ids(engine, indexed=False)
    assert indexed == full, "both paths must select the same rows"
    assert len(indexed) == LIMIT
    repeat_fast, repeat_slow = (30, 3) if n >= 1_000_000 else (50, 5)
    sel = time_select(engine, indexed=True, repeat=repeat_fast)
    claim = median_time(lambda: claim_once(engine), max(5, repeat_fast // 3))
    scan = time_select(engine, indexed=False, repeat=repeat_slow)
    config = parse_config({"database": {"url": str(engine.url)}}, environ={})
    hour = dt.timedelta(hours=1)
    check = median_time(lambda: nagios_check(engine, FrozenClock(NOW), hour, hour, config),
                        repeat_slow)
    key = f"{backend}_{n}"
    figures = {"load_s": round(load_s, 2), "select_ms": sel * 1000, "claim_ms": claim * 1000,
               "full_scan_ms": scan * 1000, "speedup": scan / sel, "check_ms": check * 1000,
               "plan": plan_of(engine, indexed=True),
               "plan_full_scan": plan_of(engine, indexed=False)}
    report.figure(key, figures, (
        f"  {backend:<10} {n:>9,} rows (loaded in {load_s:5.1f}s): select {sel * 1000:8.3f} ms, "
        f"claim_due {claim * 1000:8.3f} ms, full scan {scan * 1000:9.2f} ms "
        f"-> {scan / sel:8.1f}x faster; check {check * 1000:8.2f} ms\n"
        f"             plan: {figures['plan']}\n"
        f"             full-scan plan: {figures['plan_full_scan']}"))
    return figures


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    report = Report("due_discovery", args.quick)
    print(f"due discovery: {', '.join(f'{s:,}' for s in sizes)} rows "
          f"(70% finished, 1% due), LIMIT {LIMIT}")
    with databases(args.backends) as new_db:
        for backend in args.backends.split(","):
            results = {}
            for n in sizes:
                # No server-side prepared statements: PostgreSQL keeps a cached plan across
                # the planner settings that tell the indexed SELECT from the full scan.
                extra = {"connect_args": {"prepare_threshold": None}} if backend == "postgresql" \
                    else {}
                engine = migrated(new_db(f"{backend}:due{n}"), **extra)
                try:
                    results[n] = measure(engine, n, report, backend)
                finally:
                    engine.dispose()
            big, small = results[sizes[-1]], results[sizes[0]]
            if sizes[-1] >= 1_000_000:
                report.goal(f"{backend} {sizes[-1]:,}: selection vs full scan",
                            big["speedup"], 100)
            else:  # the goal is set at 1M rows; a smaller table scans too fast to show it
                report.figure(f"{backend}_speedup_{sizes[-1]}", big["speedup"],
                              f"  {backend} {sizes[-1]:,}: selection vs full scan "
                              f"{big['speedup']:.1f}x (the ≥ 100x goal is at 1,000,000 rows: "
                              "full run)")
            report.goal(f"{backend} {sizes[-1]:,} selection / {sizes[0]:,} selection",
                        big["select_ms"] / small["select_ms"], 2, higher=False)
            report.goal(f"{backend} {sizes[-1]:,}: check", big["check_ms"], 250, unit=" ms",
                        higher=False)
            report.figure(f"{backend}_claim_ratio", big["claim_ms"] / small["claim_ms"],
                          f"  {backend}: claim_due {sizes[-1]:,} / {sizes[0]:,} = "
                          f"{big['claim_ms'] / small['claim_ms']:.2f}x")
    report.finish()


if __name__ == "__main__":
    run_main(main)
