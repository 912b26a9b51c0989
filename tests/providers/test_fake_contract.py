"""``FakeProvider`` under the scenarios of the contract suite it can model, for each rule set.

The HTTP contract (``test_contract.py``) runs the adapters against the sandbox; these are
its money scenarios against the in-memory fake, so the scan tests that use the fake rely on
the same behaviour. Not modelled by the fake (and so not here): credentials, and a capture
after the provider's own expiry.
"""

from __future__ import annotations

import pytest

from tests.support.providers import ALL, run
from watchdog.domain import ProviderName
from watchdog.providers.base import AuthRef, Outcome, ProviderState
from watchdog.providers.fake import FakeProvider


def _fake(provider: ProviderName, amount: int = 10_000) -> tuple[FakeProvider, AuthRef]:
    fake = FakeProvider(provider)
    fake.add("o-1", amount)
    return fake, AuthRef(authorization_id=1, order_id="o-1", amount=amount, currency="EUR")


@pytest.fixture(params=ALL, ids=[p.value for p in ALL])
def provider(request: pytest.FixtureRequest) -> ProviderName:
    return ProviderName(request.param)


def test_full_capture(provider: ProviderName) -> None:
    fake, ref = _fake(provider)
    capture = run(fake.capture(ref, ref.amount, "full-1", final=True))
    status = run(fake.status(ref))
    assert capture.outcome is Outcome.SUCCEEDED
    assert status.snapshot is not None and status.snapshot.state is ProviderState.CAPTURED
    assert len(fake.ledger) == 1


def test_partial_then_second_capture(provider: ProviderName) -> None:
    fake, ref = _fake(provider)
    first = run(fake.capture(ref, 4000, "part-1", final=False))
    status = run(fake.status(ref))
    second = run(fake.capture(ref, 3000, "part-2", final=False))
    assert first.outcome is Outcome.SUCCEEDED
    assert status.snapshot is not None
    if fake.rules.multiple_captures:
        assert status.snapshot.state is ProviderState.PARTIALLY_CAPTURED
        assert status.snapshot.open_amount == 6000
        assert second.outcome is Outcome.SUCCEEDED
    else:
        assert status.snapshot.state is ProviderState.CAPTURED
        assert second.outcome is Outcome.REJECTED


def test_over_capture_is_rejected(provider: ProviderName) -> None:
    fake, ref = _fake(provider)
    assert run(fake.capture(ref, ref.amount + 100, "over-1", final=True)).outcome is (
        Outcome.REJECTED)
    assert fake.ledger == []


def test_cancel_then_capture(provider: ProviderName) -> None:
    fake, ref = _fake(provider)
    assert run(fake.cancel(ref, "cancel-1")).outcome is Outcome.SUCCEEDED
    status = run(fake.status(ref))
    assert status.snapshot is not None and status.snapshot.state is ProviderState.CANCELED
    assert run(fake.capture(ref, ref.amount, "after", final=True)).outcome is Outcome.REJECTED


def test_status_of_fresh_authorization(provider: ProviderName) -> None:
    fake, ref = _fake(provider)
    status = run(fake.status(ref))
    assert status.outcome is Outcome.SUCCEEDED
    assert status.snapshot is not None and status.snapshot.state is ProviderState.AUTHORIZED
    assert status.provider is provider


def test_replay_after_dropped_connection(provider: ProviderName) -> None:
    fake, ref = _fake(provider)
    fake.apply_then_lose = 1
    first = run(fake.capture(ref, ref.amount, "replay-1", final=True))
    second = run(fake.capture(ref, ref.amount, "replay-1", final=True))
    assert first.outcome is Outcome.UNKNOWN
    assert second.outcome in (Outcome.SUCCEEDED, Outcome.ALREADY_DONE)
    assert len(fake.ledger) == 1


def test_check(provider: ProviderName) -> None:
    fake, _ = _fake(provider)
    assert run(fake.check()).outcome is Outcome.SUCCEEDED
