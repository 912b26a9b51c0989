"""A bench worker: ``Scanner.run_pass`` as the ``scan`` command wires it, timed.

    python -m bench.worker --url DB_URL --sandbox http://127.0.0.1:PORT [--concurrency 64]

Prints ``ready`` once its runtime is built and waits for a line on stdin (so several
workers start together), then runs one pass (which
loops until nothing is due) and prints one JSON line: rows claimed, steps, errors,
wall seconds, CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from sqlalchemy import Engine, event

from bench.common import config_for
from watchdog.clock import SYSTEM_CLOCK
from watchdog.db import make_engine
from watchdog.runtime import scanner_runtime
from watchdog.sandbox.server import MOUNTS


def sandbox_urls(sandbox: str) -> dict[str, str]:
    """Each provider's base URL on the sandbox at ``sandbox``."""
    return {name: sandbox + mount for name, mount in MOUNTS.items()}


def one_pass(url: str, base_urls: dict[str, str], concurrency: int, batch_size: int,
             worker: str = "bench", wait: Any = None) -> dict[str, Any]:
    """Build the runtime (engine, HTTP client, adapters), then time one pass."""
    config = config_for(url, base_urls, concurrency=concurrency,
                        max_concurrency=max(16, concurrency // 4), batch_size=batch_size)
    engine = make_engine(url)
    counts = {"statements": 0, "commits": 0}

    def on_execute(*_: Any) -> None:
        counts["statements"] += 1

    def on_commit(*_: Any) -> None:
        counts["commits"] += 1

    # On every engine of the process: on PostgreSQL the scan writes through an asyncio
    # engine of its own (``watchdog.db.TransactionRunner``).
    event.listen(Engine, "before_cursor_execute", on_execute)
    event.listen(Engine, "commit", on_commit)

    async def run() -> dict[str, Any]:
        async with scanner_runtime(config, engine, SYSTEM_CLOCK, worker=worker) as runtime:
            if wait is not None:
                wait()
            counts.update(statements=0, commits=0)
            cpu, start = time.process_time(), time.perf_counter()
            report = await runtime.scanner.run_pass()
            seconds = time.perf_counter() - start
            return {"worker": worker, "claimed": report.claimed, "steps": report.steps,
                    "errors": report.errors, "seconds": seconds,
                    "cpu_seconds": time.process_time() - cpu, "started": start,
                    "ended": start + seconds, **counts}

    try:
        return asyncio.run(run())
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
        event.remove(Engine, "commit", on_commit)
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--worker", default="bench")
    args = parser.parse_args()
    def ready_then_wait() -> None:
        print("ready", flush=True)
        sys.stdin.readline()

    result = one_pass(args.url, sandbox_urls(args.sandbox), args.concurrency, args.batch_size,
                      args.worker, wait=ready_then_wait)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
