"""One behavioural contract, every adapter, real HTTP against the in-repo sandbox.

Runs over the aiohttp transport (the one production uses).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.providers import ALL, CLASSES, run, settings_for
from watchdog.domain import ProviderName
from watchdog.providers import registry
from watchdog.providers.base import AuthRef, Outcome, ProviderResult, ProviderState
from watchdog.providers.http import make_http_client

sandbox = pytest.importorskip("watchdog.sandbox.server")
credentials = pytest.importorskip("watchdog.sandbox.credentials")

dialect = pytest.importorskip("watchdog.sandbox.dialect")

# The sandbox reads the real clock and the provider helpers hold a literal date: run again a
# year ahead by `make test-clock-ahead` (tests/test_wallclock_marker.py).
pytestmark = pytest.mark.wallclock

CURRENCY = {p: dialect.dialect(p.value).default_currency for p in ALL}
MULTI_CAPTURE = {p for p in ALL if registry.rules(p).multiple_captures}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with sandbox.SandboxServer(port=0) as srv:
        yield srv


@pytest.fixture(params=ALL, ids=[p.value for p in ALL])
def provider(request: pytest.FixtureRequest, server: Any) -> ProviderName:
    server.reset()
    return ProviderName(request.param)


def _order(server: Any, provider: ProviderName, amount: int = 10000, **kw: Any) -> AuthRef:
    order_id = f"{next(_ids)}{provider.value[:2]}"
    if dialect.dialect(provider.value).order_id_problem(order_id):
        order_id = str(400000 + next(_ids))  # a provider with numeric ids
    server.create_order(provider=provider.value, order_id=order_id, amount=amount,
                        currency=CURRENCY[provider],
                        authorized_at=kw.pop("authorized_at", server.now()), **kw)
    return AuthRef(authorization_id=1, order_id=order_id, amount=amount,
                   currency=CURRENCY[provider])


def _calls(server: Any, provider: ProviderName, script: Any, secrets: Any = None) -> Any:
    async def scenario() -> Any:
        async with make_http_client() as client:
            settings = settings_for(provider, base_url=server.base_urls()[provider.value],
                                    secrets=credentials.SANDBOX_ENV if secrets is None
                                    else secrets)
            return await script(CLASSES[provider](settings, client))

    return run(scenario())


def _effects(server: Any, ref: AuthRef) -> list[dict[str, Any]]:
    return [e for e in server.ledger() if str(e.get("order_id")) == ref.order_id]


def test_full_capture(server: Any, provider: ProviderName) -> None:
    ref = _order(server, provider)

    async def script(a: Any) -> tuple[ProviderResult, ProviderResult]:
        return await a.capture(ref, ref.amount, "full-1", final=True), await a.status(ref)

    capture, status = _calls(server, provider, script)
    # JPMMPS confirms asynchronously: its capture answer is PENDING, never a success.
    expected = Outcome.PENDING if provider is ProviderName.JPMMPS else Outcome.SUCCEEDED
    assert capture.outcome is expected, capture.describe()
    assert status.outcome is Outcome.SUCCEEDED, status.describe()
    assert status.snapshot.state is ProviderState.CAPTURED, status.describe()
    assert len(_effects(server, ref)) == 1


def test_partial_then_second_capture(server: Any, provider: ProviderName) -> None:
    ref = _order(server, provider)

    async def script(a: Any) -> tuple[ProviderResult, ...]:
        first = await a.capture(ref, 4000, "part-1", final=False)
        status = await a.status(ref)
        second = await a.capture(ref, 3000, "part-2", final=False)
        return first, status, second

    first, status, second = _calls(server, provider, script)
    expected = Outcome.PENDING if provider is ProviderName.JPMMPS else Outcome.SUCCEEDED
    assert first.outcome is expected, first.describe()
    if provider in MULTI_CAPTURE:
        assert status.snapshot.state is ProviderState.PARTIALLY_CAPTURED, status.describe()
        assert status.snapshot.captured_amount == 4000
        assert status.snapshot.open_amount == 6000
        assert second.outcome is Outcome.SUCCEEDED, second.describe()
    else:
        assert status.snapshot.state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING)
        assert second.outcome is Outcome.REJECTED, second.describe()


def test_over_capture_is_rejected(server: Any, provider: ProviderName) -> None:
    ref = _order(server, provider)

    async def script(a: Any) -> ProviderResult:
        return await a.capture(ref, ref.amount + 100, "over-1", final=True)

    result = _calls(server, provider, script)
    assert result.outcome is Outcome.REJECTED, result.describe()
    assert _effects(server, ref) == []


def test_capture_after_expiry_is_rejected(server: Any, provider: ProviderName) -> None:
    ref = _order(server, provider, authorized_at=server.now() - dt.timedelta(days=30))

    async def script(a: Any) -> tuple[ProviderResult, ProviderResult]:
        return await a.capture(ref, ref.amount, "late-1", final=True), await a.status(ref)

    capture, status = _calls(server, provider, script)
    assert capture.outcome is Outcome.REJECTED, capture.describe()
    assert status.snapshot.state in (ProviderState.EXPIRED, ProviderState.CANCELED), (
        status.describe())
    assert _effects(server, ref) == []


def test_cancel_then_capture(server: Any, provider: ProviderName) -> None:
    ref = _order(server, provider)

    async def script(a: Any) -> tuple[ProviderResult, ...]:
        cancel = await a.cancel(ref, "cancel-1")
        status = await a.status(ref)
        capture = await a.capture(ref, ref.amount, "after-cancel", final=True)
        return cancel, status, capture

    cancel, status, capture = _calls(server, provider, script)
    assert cancel.outcome is Outcome.SUCCEEDED, cancel.describe()
    assert status.snapshot.state is ProviderState.CANCELED, status.describe()
    assert capture.outcome is Outcome.REJECTED, capture.describe()


def test_status_of_fresh_authorization(server: Any, provider: ProviderName) -> None:
    ref = _order(server, provider)

    async def script(a: Any) -> ProviderResult:
        return await a.status(ref)

    status = _calls(server, provider, script)
    assert status.outcome is Outcome.SUCCEEDED, status.describe()
    assert status.snapshot.state is ProviderState.AUTHORIZED
    if provider in (ProviderName.SMARTPAY, ProviderName.CLEARPAY):
        assert status.snapshot.expires_at is not None
        assert status.snapshot.expires_at.tzinfo is not None


def test_check_with_good_and_wrong_credentials(server: Any, provider: ProviderName) -> None:
    wrong = {k: v + "-wrong" for k, v in credentials.SANDBOX_ENV.items()}

    async def script(a: Any) -> ProviderResult:
        return await a.check()

    good = _calls(server, provider, script)
    bad = _calls(server, provider, script, secrets=wrong)
    assert good.outcome is Outcome.SUCCEEDED, good.describe()
    assert bad.outcome is Outcome.REJECTED, bad.describe()
    assert "credentials" in bad.message
    for value in wrong.values():
        assert value not in bad.describe()
        assert value not in repr(bad.raw)


def test_replay_after_dropped_connection(server: Any, provider: ProviderName) -> None:
    ref = _order(server, provider)
    server.add_fault(provider=provider.value, operation="capture", kind="drop_after_apply",
                     count=1)

    async def script(a: Any) -> tuple[ProviderResult, ProviderResult]:
        first = await a.capture(ref, ref.amount, "replay-1", final=True)
        second = await a.capture(ref, ref.amount, "replay-1", final=True)
        return first, second

    first, second = _calls(server, provider, script)
    assert first.outcome is Outcome.UNKNOWN, first.describe()
    assert second.outcome in (Outcome.SUCCEEDED, Outcome.ALREADY_DONE, Outcome.PENDING), \
        second.describe()
    assert len(_effects(server, ref)) == 1
