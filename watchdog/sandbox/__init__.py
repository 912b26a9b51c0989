"""An in-repo HTTP server that behaves like Smartpay, JPMMPS SmartPay, Flitt and Clearpay.

Tests and the demo point the watchdog's provider adapters at it
(``SandboxServer().base_urls()``); the ``/_sandbox`` control API creates
orders, moves the sandbox clock, injects faults and exposes the effects ledger.
"""

from __future__ import annotations

from watchdog.sandbox.server import MOUNTS, SandboxServer, build_app, run_sandbox

__all__ = ["MOUNTS", "SandboxServer", "build_app", "run_sandbox"]
