"""What every benchmark shares: databases, bulk loading, the sandbox process, reporting.

Each benchmark is its own command (``python -m bench.<name> [--quick]``). It prints its
figures, the ratio against a baseline measured in the same run, PASS/FAIL per goal and
the peak memory, and appends one JSON line to ``bench/results/<name>.jsonl``.
Benchmarks are not tests: a missed goal prints FAIL and still exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine

from watchdog import schema
from watchdog.config import Config, parse_config
from watchdog.db import make_engine
from watchdog.domain import DeadlineSource, ProviderName
from watchdog.providers import registry
from watchdog.sandbox.dialect import dialects

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = [p.value for p in ProviderName]
CURRENCY = {d.name: d.default_currency for d in dialects()}  # the sandbox's defaults
WINDOW = {s.name.value: s.rules.window.days for s in registry.specs()}  # days, the defaults
AMOUNT = 10_000  # the sandbox's auto-created order amount
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# The audit chain's MAC key (watchdog.anchor): a throwaway PostgreSQL database has no file to
# keep one beside; the benchmark's subprocesses inherit it.
os.environ.setdefault("WATCHDOG_AUDIT_KEY", "bench-audit-key-0123456789abcdef0123456789abcdef")

# ----------------------------------------------------------------------------- reporting


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> argparse.Namespace:
    """``--quick`` (CI size) plus whatever the benchmark adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="the CI size (a few seconds)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size of this process and of its (waited-for) children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "children": round(kids, 1)}


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


@dataclass
class Report:
    """Figures and goals of one benchmark run."""

    name: str
    quick: bool
    figures: dict[str, Any] = field(default_factory=dict)
    goals: list[dict[str, Any]] = field(default_factory=list)

    def figure(self, key: str, value: Any, line: str | None = None) -> None:
        """Record a figure; print ``line`` (or ``key: value``)."""
        self.figures[key] = value
        print(line if line is not None else f"  {key}: {value}", flush=True)

    def goal(self, label: str, value: float, target: float, *, unit: str = "x",
             higher: bool = True) -> bool:
        """Compare ``value`` with ``target``; print PASS/FAIL."""
        ok = value >= target if higher else value <= target
        sign = "≥" if higher else "≤"
        self.goals.append({"goal": label, "value": round(value, 3), "target": f"{sign} {target}",
                           "unit": unit, "pass": ok})
        print(f"  {'PASS' if ok else 'FAIL'}  {label}: {value:,.2f}{unit} "
              f"(goal {sign} {target:,}{unit})", flush=True)
        return ok

    def finish(self) -> dict[str, Any]:
        """Print peak memory and append the JSON line; return the record."""
        record = {
            "bench": self.name,
            "run_id": os.environ.get("BENCH_RUN_ID") or f"{time.time():.0f}",
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "quick": self.quick,
            "machine": machine(),
            "figures": self.figures,
            "goals": self.goals,
            "peak_rss_mb": peak_rss_mb(),
        }
        rss = record["peak_rss_mb"]
        print(f"  peak RSS: this process {rss['self']:.0f} MB, children {rss['children']:.0f} MB")
        RESULTS.mkdir(exist_ok=True)
        with (RESULTS / f"{self.name}.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")
        return record


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall seconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ----------------------------------------------------------------------------- databases


@contextlib.contextmanager
def postgres_server() -> Iterator[Any]:
    """The test suite's throwaway PostgreSQL server (``tests/support/postgres.py``; importable
    because benchmarks run as ``python -m bench.<name>`` from the repository root)."""
    from tests.support.postgres import PostgresServer

    with PostgresServer() as server:
        yield server


@contextlib.contextmanager
def databases(backends: str) -> Iterator[Callable[[str], str]]:
    """A factory ``name -> empty database URL`` over temp files / one PostgreSQL server."""
    tmp = Path(tempfile.mkdtemp(prefix="watchdog-bench-"))
    pg_cm = postgres_server() if "postgresql" in backends else contextlib.nullcontext()
    try:
        with pg_cm as pg:
            def new(name: str) -> str:
                backend, _, label = name.partition(":")
                if backend == "sqlite":
                    return f"sqlite:///{tmp / (label or 'db')}.db"
                pg.create_database(label or "bench")
                return pg.url(label or "bench")

            new.server = pg  # type: ignore[attr-defined]
            yield new
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def migrated(url: str, **kwargs: Any) -> Engine:
    """An engine on ``url``, migrated to head by alembic (as the service does)."""
    engine = make_engine(url, **kwargs)
    schema.upgrade(engine)
    return engine


def config_for(url: str, base_urls: dict[str, str] | None = None, concurrency: int = 64,
               max_concurrency: int = 64, batch_size: int = 100) -> Config:
    """The service's configuration, scheduler and provider limits set for the benchmark."""
    providers = {
        name: {"base_url": base, "max_concurrency": max_concurrency}
        for name, base in (base_urls or {}).items()
    }
    data = {"database": {"url": url}, "api": {"enabled": False},
            "scheduler": {"concurrency": concurrency, "batch_size": batch_size},
            "providers": providers}
    from watchdog.sandbox.credentials import SANDBOX_ENV

    return parse_config(data, environ=SANDBOX_ENV)


_COLUMNS = ("provider", "order_id", "amount", "currency", "authorized_at", "state",
            "captured_amount", "capture_count", "deadline", "deadline_source", "next_action_at",
            "alert_stage", "instruction_final", "generation", "attempts", "created_at",
            "updated_at")


def authorization_rows(n: int, *, finished: float = 0.0, due: float = 1.0, start: int = 0,
                       ) -> Iterator[tuple[Any, ...]]:
    """``n`` rows: ``finished`` of them done (next_action_at NULL), ``due`` due now, the rest
    due in the future. Due rows are 20 h before their deadline (capture_lead reached, nothing
    critical yet); order ids are numeric (Clearpay), unique per provider."""
    done_every = round(1 / finished) if 0 < finished < 1 else 0
    for i in range(start, start + n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        bucket = (i * 7919) % 10_000  # spread the kinds over the id range
        if bucket < due * 10_000:
            deadline = NOW + dt.timedelta(hours=20, seconds=i % 3600)
            state, next_at = "authorized", NOW - dt.timedelta(seconds=1 + i % 600)
        elif bucket < (due + finished) * 10_000 or done_every == 1:
            deadline = NOW - dt.timedelta(days=1, seconds=i % 86_400)
            state, next_at = "captured", None
        else:
            deadline = NOW + dt.timedelta(days=3, seconds=i % 86_400)
            state, next_at = "authorized", deadline - dt.timedelta(hours=48)
        authorized = deadline - dt.timedelta(days=WINDOW[provider])
        yield (provider, str(1_000_000 + i), AMOUNT, CURRENCY[provider], authorized, state,
               AMOUNT if state == "captured" else 0, 1 if state == "captured" else 0, deadline,
               DeadlineSource.PROVIDER_WINDOW.value, next_at, 0, False, 0, 0, NOW, NOW)


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):  # SQLAlchemy's SQLite DATETIME storage format, naive UTC
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def bulk_load(engine: Engine, rows: Iterator[tuple[Any, ...]], chunk: int = 50_000) -> int:
    """Insert authorization rows fast: executemany on SQLite, COPY on PostgreSQL."""
    count = 0
    cols = ", ".join(_COLUMNS)
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        assert path is not None
        conn = sqlite3.connect(path, isolation_level=None)
        sql = f"INSERT INTO authorizations ({cols}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        batch: list[tuple[Any, ...]] = []
        conn.execute("BEGIN")
        for row in rows:
            batch.append(tuple(_sqlite_value(v) for v in row))
            if len(batch) >= chunk:
                conn.executemany(sql, batch)
                count += len(batch)
                batch.clear()
        conn.executemany(sql, batch)
        count += len(batch)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.close()
        return count
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY authorizations ({cols}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
                count += 1
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE authorizations")
    return count


def run_main(main: Callable[[], None]) -> None:
    """Run a benchmark's main; a crash prints its traceback and exits 1, anything else 0."""
    main()
    sys.exit(0)
