"""Memory: peak RSS of one pass over 100k due authorizations (5k with --quick).

The pass is ``Scanner.run_pass`` with the in-process ``FakeProvider`` for the four
providers (no HTTP, to keep it fast) on SQLite. The rows are bulk-loaded by a child
process, so this process's peak RSS (``ru_maxrss``) is the pass's own.

    python -m bench.memory [--quick] [--rows N]
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PROVIDERS,
    Report,
    authorization_rows,
    bulk_load,
    databases,
    migrated,
    parse_args,
    peak_rss_mb,
    run_main,
)
from watchdog.clock import SYSTEM_CLOCK
from watchdog.db import make_engine
from watchdog.domain import ProviderName
from watchdog.providers.fake import FakeProvider
from watchdog.scan import Scanner

LIMIT_MB = 300


def _extra(parser: Any) -> None:
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--load", metavar="URL", help=Path(__file__).name + ": load and exit")


def current_rss_mb() -> float:
    """This process's resident set size now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fakes(n: int) -> dict[ProviderName, Any]:
    """One fake provider per name, holding the orders the rows refer to."""
    out = {ProviderName(p): FakeProvider(ProviderName(p)) for p in PROVIDERS}
    for provider, order_id, amount, *_ in authorization_rows(n, due=1.0):
        out[ProviderName(provider)].add(order_id, amount)
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], _extra)
    n = args.rows or (5_000 if args.quick else 100_000)
    if args.load:
        bulk_load(migrated(args.load), authorization_rows(n, due=1.0))
        return
    report = Report("memory", args.quick)
    print(f"memory: one pass over {n:,} due authorizations (FakeProvider, SQLite)")
    with databases("sqlite") as new_db:
        url = new_db("sqlite:memory")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench.memory", "--rows", str(n), "--load", url],
                       check=True)
        report.figure("load_s", round(time.perf_counter() - start, 1))
        providers = fakes(n)
        engine = make_engine(url)
        before = current_rss_mb()

        async def no_sleep(_: float) -> None:
            return None

        scanner = Scanner(engine, _config(url), providers, SYSTEM_CLOCK, "bench", no_sleep)
        start = time.perf_counter()
        result = asyncio.run(scanner.run_pass())
        seconds = time.perf_counter() - start
        after = current_rss_mb()
        captured = sum(len(p.ledger) for p in providers.values())
        engine.dispose()
    peak = peak_rss_mb()["self"]
    report.figure("pass", {"rows": n, "seconds": round(seconds, 1), "per_second": n / seconds,
                           "claimed": result.claimed, "captured": captured,
                           "errors": result.errors, "rss_before_mb": round(before, 1),
                           "rss_after_mb": round(after, 1), "peak_rss_mb": peak}, (
        f"  {n:,} rows in {seconds:.1f}s ({n / seconds:.0f}/s), captured {captured:,}, errors "
        f"{result.errors}; RSS before the pass {before:.0f} MB (fake providers' orders "
        f"included), after {after:.0f} MB, peak {peak:.0f} MB"))
    report.goal(f"peak RSS of a pass over {n:,}", peak, LIMIT_MB, unit=" MB", higher=False)
    report.goal("every due authorization captured", float(captured == n), 1, unit="")
    report.finish()


def _config(url: str) -> Any:
    from bench.common import config_for

    return config_for(url)


if __name__ == "__main__":
    run_main(main)
