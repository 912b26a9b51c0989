"""``python -m watchdog.sandbox --host 127.0.0.1 --port 8700 [--latency 0.0] [--auto-create]``."""

from __future__ import annotations

import argparse

from watchdog.sandbox.server import run_sandbox


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m watchdog.sandbox",
        description="Serve fake Smartpay, JPMMPS, Flitt and Clearpay APIs on loopback.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds added to every provider request (default 0)")
    parser.add_argument("--auto-create", action="store_true",
                        help="create unknown orders on first use instead of answering 404")
    parser.add_argument("--jpmmps-capture-settle-seconds", type=float, default=0.0,
                        help="sandbox seconds a JPMMPS capture stays CAPTURE_PENDING")
    args = parser.parse_args(argv)
    run_sandbox(args.host, args.port, args.latency, auto_create=args.auto_create,
                jpmmps_capture_settle_seconds=args.jpmmps_capture_settle_seconds)


if __name__ == "__main__":
    main()
