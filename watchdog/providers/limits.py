"""Per-provider concurrency and rate limits around any adapter (same Protocol)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable

from watchdog.domain import ProviderName
from watchdog.providers.base import AuthRef, ProviderAdapter, ProviderResult, ProviderRules

SEND_GUARD: contextvars.ContextVar[Callable[[], float] | None] = contextvars.ContextVar(
    "SEND_GUARD", default=None
)
"""Seconds left before the deadline guard of the capture / cancel being sent (set by the
scan around the call). ``LimitedAdapter`` waits for a slot at most that long and checks
it again once it has the slot, right before the request leaves."""


class GuardReached(Exception):
    """The deadline guard was reached while a capture/cancel waited for a slot: nothing
    was sent."""

    def __init__(self, provider: str, operation: str) -> None:
        super().__init__(
            f"{provider} {operation}: deadline guard reached while waiting for a concurrency "
            "or rate-limit slot; nothing was sent"
        )


class TokenBucket:
    """``rate`` tokens per second, bursts up to ``burst``; ``acquire`` waits for a token.

    Waiters are served in arrival order (a lock serialises them), so a burst of
    callers is spread evenly instead of stampeding when a token appears.
    """

    def __init__(
        self, rate: float, burst: float | None = None, *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._last = monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        """Take one token, waiting as long as needed."""
        async with self._lock:
            self._refill()
            while self._tokens < 1:
                await self._sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1


class LimitedAdapter:
    """Wraps an adapter: at most ``max_concurrency`` calls in flight, ``rate_limit`` per second."""

    def __init__(
        self, inner: ProviderAdapter, max_concurrency: int, rate_limit: float | None = None,
        *, bucket: TokenBucket | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.inner = inner
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._bucket = bucket or (TokenBucket(rate_limit) if rate_limit else None)

    @property
    def name(self) -> ProviderName:
        """The wrapped adapter's provider."""
        return self.inner.name

    @property
    def rules(self) -> ProviderRules:
        """The wrapped adapter's rules."""
        return self.inner.rules

    async def _run(self, call: Callable[[], Awaitable[ProviderResult]]) -> ProviderResult:
        async with self._semaphore:
            if self._bucket is not None:
                await self._bucket.acquire()
            return await call()

    async def _run_guarded(
        self, operation: str, call: Callable[[], Awaitable[ProviderResult]]
    ) -> ProviderResult:
        """``_run`` for a money call: the wait for a slot ends at the deadline guard, and the
        guard is checked again after the wait, right before the request leaves."""
        guard = SEND_GUARD.get()
        if guard is None:
            return await self._run(call)

        async def enter() -> None:
            await self._semaphore.acquire()
            try:
                if self._bucket is not None:
                    await self._bucket.acquire()
            except BaseException:
                self._semaphore.release()
                raise

        try:
            await asyncio.wait_for(enter(), timeout=max(0.0, guard()))
        except TimeoutError:
            raise GuardReached(self.name.value, operation) from None
        try:
            if guard() <= 0:
                raise GuardReached(self.name.value, operation)
            return await call()
        finally:
            self._semaphore.release()

    async def status(self, ref: AuthRef) -> ProviderResult:
        """Limited ``status``."""
        return await self._run(lambda: self.inner.status(ref))

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """Limited ``capture``, guarded (see ``SEND_GUARD``)."""
        return await self._run_guarded(
            "capture", lambda: self.inner.capture(ref, amount, idempotency_key, final=final)
        )

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """Limited ``cancel``, guarded (see ``SEND_GUARD``)."""
        return await self._run_guarded(
            "cancel", lambda: self.inner.cancel(ref, idempotency_key)
        )

    async def check(self) -> ProviderResult:
        """Limited ``check``."""
        return await self._run(self.inner.check)
