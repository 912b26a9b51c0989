"""Retries (only RETRYABLE, same call, backoff honouring Retry-After) and limits."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from tests.support.providers import ALL, ref, run, settings_for
from watchdog.config import Config
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome, ProviderResult
from watchdog.providers.http import make_http_client
from watchdog.providers.limits import LimitedAdapter, TokenBucket
from watchdog.providers.registry import build_adapter, configured_adapters
from watchdog.providers.retry import retry_delay, with_retries


def _result(outcome: Outcome, retry_after: float | None = None) -> ProviderResult:
    return ProviderResult(outcome=outcome, operation="capture", provider=ProviderName.CLEARPAY,
                          retry_after=retry_after)


class Script:
    def __init__(self, *outcomes: ProviderResult) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> ProviderResult:
        self.calls += 1
        return self.outcomes.pop(0)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def test_retries_only_retryable_with_backoff_and_retry_after() -> None:
    script = Script(_result(Outcome.RETRYABLE), _result(Outcome.RETRYABLE, retry_after=9.0),
                    _result(Outcome.SUCCEEDED))
    sleeps = Sleeps()
    result = run(with_retries(script, attempts=5, backoff=0.5, sleep=sleeps))
    assert result.outcome is Outcome.SUCCEEDED
    assert script.calls == 3
    assert sleeps.delays == [0.5, 9.0]


@pytest.mark.parametrize("terminal", [Outcome.REJECTED, Outcome.UNKNOWN, Outcome.ALREADY_DONE])
def test_never_retries_terminal_or_unknown(terminal: Outcome) -> None:
    script = Script(_result(terminal), _result(Outcome.SUCCEEDED))
    sleeps = Sleeps()
    assert run(with_retries(script, 5, 0.5, sleep=sleeps)).outcome is terminal
    assert script.calls == 1
    assert sleeps.delays == []


def test_attempts_are_total_calls() -> None:
    script = Script(*[_result(Outcome.RETRYABLE)] * 3)
    assert run(with_retries(script, 3, 0.1, sleep=Sleeps())).outcome is Outcome.RETRYABLE
    assert script.calls == 3
    one = Script(_result(Outcome.RETRYABLE))
    run(with_retries(one, 0, 0.1, sleep=Sleeps()))
    assert one.calls == 1


def test_deadline_guard_stops_retrying() -> None:
    script = Script(*[_result(Outcome.RETRYABLE)] * 5)
    answers = iter([True, False])
    result = run(with_retries(script, 5, 0.1, sleep=Sleeps(),
                              deadline_guard=lambda: next(answers)))
    assert result.outcome is Outcome.RETRYABLE
    assert script.calls == 1


def test_retry_delay_after_failed_calls() -> None:
    assert [retry_delay(n, 1.0, None) for n in range(1, 5)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(1, 1.0, 30.0) == 30.0
    assert retry_delay(21, 1.0, None) == 300.0
    assert retry_delay(1, 1.0, 900.0) == 300.0  # in-process sleeps stay capped


class Slow:
    name = ProviderName.FLITT
    rules: Any = None

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0

    async def _work(self) -> ProviderResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return _result(Outcome.SUCCEEDED)

    async def status(self, r: Any) -> ProviderResult:
        return await self._work()

    async def capture(self, r: Any, amount: int, key: str, *, final: bool) -> ProviderResult:
        return await self._work()

    async def cancel(self, r: Any, key: str) -> ProviderResult:
        return await self._work()

    async def check(self) -> ProviderResult:
        return await self._work()


def test_limited_adapter_caps_concurrency() -> None:
    inner = Slow()

    async def scenario() -> None:
        limited = LimitedAdapter(inner, max_concurrency=3)  # type: ignore[arg-type]
        await asyncio.gather(*[limited.capture(ref(), 1, "k", final=True) for _ in range(10)],
                             *[limited.status(ref()) for _ in range(5)])

    run(scenario())
    assert inner.peak == 3


def test_token_bucket_spreads_requests() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)
        clock[0] += delay

    async def scenario() -> None:
        bucket = TokenBucket(2.0, burst=2, monotonic=lambda: clock[0], sleep=fake_sleep)
        for _ in range(6):
            await bucket.acquire()

    run(scenario())
    assert clock[0] == pytest.approx(2.0)  # 2 free in the burst, then 4 at 2/s
    assert len(sleeps) == 4


def test_registry_builds_limited_adapters_for_enabled_providers() -> None:
    providers = {name: settings_for(name) for name in ALL}
    providers[ProviderName.FLITT] = settings_for(ProviderName.FLITT, enabled=False)
    providers[ProviderName.JPMMPS] = dataclasses.replace(settings_for(ProviderName.JPMMPS),
                                                         base_url=None)

    async def scenario() -> dict[ProviderName, Any]:
        async with make_http_client() as client:
            assert build_adapter(providers[ProviderName.SMARTPAY], client).name is (
                ProviderName.SMARTPAY)
            return configured_adapters(Config(providers=providers), client)[0]

    adapters = run(scenario())
    assert set(adapters) == {ProviderName.SMARTPAY, ProviderName.CLEARPAY}
    assert all(isinstance(a, LimitedAdapter) for a in adapters.values())
    assert adapters[ProviderName.CLEARPAY].rules.window.days == 5  # from the settings
