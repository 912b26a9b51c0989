"""One behavioural contract for every adapter and for the fake that stands in for them.

Each test runs on every subject (tests/support/contract.py): each real adapter over real HTTP
(the aiohttp transport production uses) against the in-repo sandbox, and ``FakeProvider`` with
each provider's rules. The assertions are the same for both, so the scan tests that run on the
fake rely only on behaviour the adapters have.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.support.contract import ContractSubject, FakeSubject, SandboxSubject, calls
from tests.support.providers import ALL
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome, ProviderAdapter, ProviderResult, ProviderState
from watchdog.sandbox.server import SandboxServer

# The sandbox reads the real clock and the provider helpers hold a literal date: run again a
# year ahead by `make test-clock-ahead` (tests/test_wallclock_marker.py).
pytestmark = pytest.mark.wallclock

SUBJECTS = [(kind, p) for kind in ("sandbox", "fake") for p in ALL]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(port=0) as srv:
        yield srv


@pytest.fixture(params=SUBJECTS, ids=[f"{kind}-{p.value}" for kind, p in SUBJECTS])
def subject(request: pytest.FixtureRequest) -> ContractSubject:
    kind, name = request.param
    provider = ProviderName(name)
    if kind == "fake":
        return FakeSubject(provider)
    server: SandboxServer = request.getfixturevalue("server")
    server.reset()
    return SandboxSubject(server, provider)


def _captured(subject: ContractSubject) -> Outcome:
    """What a capture the provider accepts answers at once."""
    return Outcome.PENDING if subject.confirms_captures_later else Outcome.SUCCEEDED


def test_full_capture(subject: ContractSubject) -> None:
    ref = subject.order()

    async def script(a: ProviderAdapter) -> tuple[ProviderResult, ProviderResult]:
        return await a.capture(ref, ref.amount, "full-1", final=True), await a.status(ref)

    capture, status = calls(subject, script)
    assert capture.outcome is _captured(subject), capture.describe()
    assert status.outcome is Outcome.SUCCEEDED, status.describe()
    assert status.snapshot is not None and status.snapshot.state is ProviderState.CAPTURED, (
        status.describe())
    assert len(subject.effects(ref)) == 1


def test_partial_then_second_capture(subject: ContractSubject) -> None:
    ref = subject.order()

    async def script(a: ProviderAdapter) -> tuple[ProviderResult, ...]:
        first = await a.capture(ref, 4000, "part-1", final=False)
        status = await a.status(ref)
        second = await a.capture(ref, 3000, "part-2", final=False)
        return first, status, second

    first, status, second = calls(subject, script)
    assert first.outcome is _captured(subject), first.describe()
    assert status.snapshot is not None, status.describe()
    if subject.rules.multiple_captures:
        assert status.snapshot.state is ProviderState.PARTIALLY_CAPTURED, status.describe()
        assert status.snapshot.captured_amount == 4000
        assert status.snapshot.open_amount == 6000
        assert second.outcome is Outcome.SUCCEEDED, second.describe()
        assert len(subject.effects(ref)) == 2
    else:
        assert status.snapshot.state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING)
        assert second.outcome is Outcome.REJECTED, second.describe()
        assert len(subject.effects(ref)) == 1


def test_over_capture_is_rejected(subject: ContractSubject) -> None:
    ref = subject.order()

    async def script(a: ProviderAdapter) -> ProviderResult:
        return await a.capture(ref, ref.amount + 100, "over-1", final=True)

    result = calls(subject, script)
    assert result.outcome is Outcome.REJECTED, result.describe()
    assert subject.effects(ref) == []


def test_capture_after_expiry_is_rejected(subject: ContractSubject) -> None:
    ref = subject.order()
    subject.expire(ref)

    async def script(a: ProviderAdapter) -> tuple[ProviderResult, ProviderResult]:
        return await a.capture(ref, ref.amount, "late-1", final=True), await a.status(ref)

    capture, status = calls(subject, script)
    assert capture.outcome is Outcome.REJECTED, capture.describe()
    assert status.snapshot is not None, status.describe()
    assert status.snapshot.state in (ProviderState.EXPIRED, ProviderState.CANCELED), (
        status.describe())
    assert status.snapshot.open_amount == 0, status.describe()
    assert subject.effects(ref) == []


def test_capture_a_minute_before_expiry_succeeds(subject: ContractSubject) -> None:
    """The other side of the deadline: the rejection above is the expiry's doing, and the
    provider's clock is the one that decides it."""
    ref = subject.order()
    subject.expire(ref, by=-dt.timedelta(minutes=1))

    async def script(a: ProviderAdapter) -> ProviderResult:
        return await a.capture(ref, ref.amount, "in-time-1", final=True)

    capture = calls(subject, script)
    assert capture.outcome is _captured(subject), capture.describe()
    assert len(subject.effects(ref)) == 1


def test_cancel_then_capture(subject: ContractSubject) -> None:
    ref = subject.order()

    async def script(a: ProviderAdapter) -> tuple[ProviderResult, ...]:
        cancel = await a.cancel(ref, "cancel-1")
        status = await a.status(ref)
        capture = await a.capture(ref, ref.amount, "after-cancel", final=True)
        return cancel, status, capture

    cancel, status, capture = calls(subject, script)
    assert cancel.outcome is Outcome.SUCCEEDED, cancel.describe()
    assert status.snapshot is not None and status.snapshot.state is ProviderState.CANCELED, (
        status.describe())
    assert capture.outcome is Outcome.REJECTED, capture.describe()


def test_status_of_fresh_authorization(subject: ContractSubject) -> None:
    ref = subject.order()

    async def script(a: ProviderAdapter) -> ProviderResult:
        return await a.status(ref)

    status = calls(subject, script)
    assert status.outcome is Outcome.SUCCEEDED, status.describe()
    assert status.provider is subject.provider
    assert status.snapshot is not None and status.snapshot.state is ProviderState.AUTHORIZED
    if subject.rules.reports_expiry:
        assert status.snapshot.expires_at is not None
        assert status.snapshot.expires_at.tzinfo is not None


def test_check_with_good_and_wrong_credentials(subject: ContractSubject) -> None:
    async def script(a: ProviderAdapter) -> ProviderResult:
        return await a.check()

    good = calls(subject, script)
    wrong = subject.revoke_credentials()
    bad = calls(subject, script)
    assert good.outcome is Outcome.SUCCEEDED, good.describe()
    assert bad.outcome is Outcome.REJECTED, bad.describe()
    assert "credentials" in bad.message
    for value in wrong:
        assert value not in bad.describe()
        assert value not in repr(bad.raw)


def test_money_calls_with_wrong_credentials_move_nothing(subject: ContractSubject) -> None:
    ref = subject.order()
    subject.revoke_credentials()

    async def script(a: ProviderAdapter) -> tuple[ProviderResult, ...]:
        return (await a.status(ref), await a.capture(ref, ref.amount, "unauth-1", final=True),
                await a.cancel(ref, "unauth-2"))

    for result in calls(subject, script):
        assert result.outcome is Outcome.REJECTED, result.describe()
    assert subject.effects(ref) == []


def test_replay_after_dropped_connection(subject: ContractSubject) -> None:
    ref = subject.order()
    subject.drop_next_capture_answer()

    async def script(a: ProviderAdapter) -> tuple[ProviderResult, ProviderResult]:
        first = await a.capture(ref, ref.amount, "replay-1", final=True)
        second = await a.capture(ref, ref.amount, "replay-1", final=True)
        return first, second

    first, second = calls(subject, script)
    assert first.outcome is Outcome.UNKNOWN, first.describe()
    assert second.outcome in (Outcome.SUCCEEDED, Outcome.ALREADY_DONE, Outcome.PENDING), \
        second.describe()
    assert len(subject.effects(ref)) == 1
