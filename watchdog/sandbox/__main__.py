"""``python -m watchdog.sandbox --host 127.0.0.1 --port 8700 [--latency 0.0] [--auto-create]``."""

from __future__ import annotations

import argparse

from watchdog.sandbox.dialect import dialects
from watchdog.sandbox.server import run_sandbox


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m watchdog.sandbox",
        description=f"Serve fake {_listed()} APIs on loopback.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds added to every provider request (default 0)")
    parser.add_argument("--auto-create", action="store_true",
                        help="create unknown orders on first use instead of answering 404")
    settles = [d for d in dialects() if d.settle_help]
    for d in settles:
        parser.add_argument(f"--{d.name}-capture-settle-seconds", type=float, default=0.0,
                            help=d.settle_help)
    args = parser.parse_args(argv)
    settle = {f"{d.name}_capture_settle_seconds": getattr(args, f"{d.name}_capture_settle_seconds")
              for d in settles}
    run_sandbox(args.host, args.port, args.latency, auto_create=args.auto_create, **settle)


def _listed() -> str:
    """The dialects' titles as a sentence: "A, B and C"."""
    titles = [d.title for d in dialects()]
    if len(titles) < 2:
        return "".join(titles)
    return f"{', '.join(titles[:-1])} and {titles[-1]}"


if __name__ == "__main__":
    main()
