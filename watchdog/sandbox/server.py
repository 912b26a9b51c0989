"""App assembly, the in-process ``SandboxServer`` and the blocking ``run_sandbox``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from watchdog.sandbox import control
from watchdog.sandbox.accounts import ACCOUNT_PATH, prefix
from watchdog.sandbox.dialect import DialectView, dialects
from watchdog.sandbox.state import SandboxState, order_key
from watchdog.sandbox.wire import bind

T = TypeVar("T")

#: Seconds aiohttp waits for in-flight requests (hung ones included) when stopping.
SHUTDOWN_TIMEOUT = 0.5

#: Where each provider's API is served (each dialect's ``mount``).
MOUNTS: Mapping[str, str] = DialectView(lambda d: d.mount)


def build_app(state: SandboxState) -> web.Application:
    """The aiohttp application serving every dialect and ``/_sandbox`` over ``state``."""
    app = web.Application(client_max_size=1024 * 1024)
    for speaks in dialects():
        for method, path, route in speaks.routes:
            app.router.add_route(method, path, bind(state, route))
            # The same API for every other merchant account (watchdog.sandbox.accounts).
            app.router.add_route(method, ACCOUNT_PATH + path, bind(state, route))
    for method, path, handler in control.routes(state):
        app.router.add_route(method, path, handler)
    return app


async def _start(state: SandboxState, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


class SandboxServer:
    """The sandbox on its own event loop in a background thread.

    Use as a context manager or with ``start()`` / ``stop()``.  The direct
    methods run on the server's loop, so they are safe to call from the test thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0, *,
                 auto_create: bool = False, **capture_settle_seconds: float) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(latency=latency, auto_create=auto_create,
                                  capture_settle_seconds=capture_settle_seconds)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; return once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("sandbox already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port = loop.run_until_complete(
                    _start(self.state, self.host, self.port))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="watchdog-sandbox", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            loop.close()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (in-flight requests get ``SHUTDOWN_TIMEOUT``)."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    def base_urls(self, account: str = "default") -> dict[str, str]:
        """Each provider's base URL for ``account``, as an adapter is configured with it."""
        return {name: self.url + prefix(account) + mount for name, mount in MOUNTS.items()}

    # -- direct control ------------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def create_order(self, provider: str, order_id: str, amount: int, currency: str, *,
                     authorized_at: dt.datetime | None = None,
                     expires_at: dt.datetime | None = None,
                     state: str = "authorized", settle_seconds: float | None = None,
                     settle_outcome: str = "succeed", account: str = "default",
                     ) -> dict[str, Any]:
        """Create an authorization (amount in minor units); return its snapshot.

        ``settle_seconds`` makes its captures and cancels pending for that long (JPMMPS
        captures always are), ``settle_outcome="fail"`` makes them fail then."""
        payload = {"provider": provider, "order_id": order_id, "amount": amount,
                   "currency": currency, "authorized_at": authorized_at,
                   "expires_at": expires_at, "state": state,
                   "settle_seconds": settle_seconds, "settle_outcome": settle_outcome,
                   "account": account}
        return self._call(lambda: control.snapshot(
            self.state, control.create_order(self.state, payload)))

    def order(self, provider: str, order_id: str, account: str = "default",
              ) -> dict[str, Any] | None:
        """An order's snapshot (of ``account``), or None."""

        def read() -> dict[str, Any] | None:
            found = self.state.orders.get(order_key(provider, order_id, account))
            if found is None:
                return None
            self.state.refresh(found)
            return control.snapshot(self.state, found)

        return self._call(read)

    def add_fault(self, provider: str = "*", operation: str = "*", kind: str = "error",
                  count: int = 1, **options: Any) -> dict[str, Any]:
        """Inject a fault (options: seconds, status, retry_after, apply); return it."""
        payload = {"provider": provider, "operation": operation, "kind": kind,
                   "count": count, **options}
        return self._call(lambda: control.add_fault(self.state, payload).as_json())

    def clear_faults(self) -> int:
        """Remove every fault; return how many there were."""
        return self._call(self.state.faults.clear)

    def ledger(self) -> list[dict[str, Any]]:
        """A copy of the effects ledger."""
        return self._call(lambda: [dict(e) for e in self.state.ledger])

    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log."""
        return self._call(lambda: [dict(e) for e in self.state.requests])

    def now(self) -> dt.datetime:
        """The sandbox time."""
        return self._call(self.state.clock.now)

    def set_now(self, instant: dt.datetime, *, freeze: bool = False) -> None:
        """Move the sandbox clock to ``instant`` (aware)."""
        self._call(lambda: self.state.clock.set(instant, freeze=freeze))

    def advance(self, delta: dt.timedelta) -> None:
        """Move the sandbox clock forward by ``delta``."""
        self._call(lambda: self.state.clock.advance(delta))

    def reset(self) -> None:
        """Forget orders, ledger, requests, faults, idempotency answers; real time again."""
        self._call(self.state.reset)


def run_sandbox(host: str = "127.0.0.1", port: int = 8700, latency: float = 0.0, *,
                auto_create: bool = False, **capture_settle_seconds: float) -> None:
    """Serve until SIGINT/SIGTERM; print one ``listening on`` line with the bound URL."""
    state = SandboxState(latency=latency, auto_create=auto_create,
                         capture_settle_seconds=capture_settle_seconds)

    async def main() -> None:
        runner, bound = await _start(state, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        print(f"watchdog sandbox listening on http://{host}:{bound}", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    sys.stdout.flush()


__all__ = ["MOUNTS", "SandboxServer", "build_app", "run_sandbox"]

