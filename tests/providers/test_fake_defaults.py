"""``FakeProvider``'s defaults, which the scan tests rely on and the contract does not cover.

The contract (test_contract.py) runs the fake with a clock of its own and revokes its
credentials; the scan tests build it as ``FakeProvider(name)`` and give orders expiries on
their own frozen clock, long past by the wall clock. Built that way it must never lapse an
order nor refuse a call.
"""

from __future__ import annotations

import datetime as dt

from tests.support.providers import NOW, ref, run
from watchdog.domain import ProviderName
from watchdog.providers.base import Outcome, ProviderState
from watchdog.providers.fake import FakeProvider


def test_without_a_clock_an_order_past_its_expiry_stays_open_and_capturable() -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    expires_at = NOW - dt.timedelta(days=1)  # past by any clock the fake could read
    fake.add("ord_1", 1820, expires_at=expires_at)

    status = run(fake.status(ref()))
    assert status.snapshot is not None
    assert status.snapshot.state is ProviderState.AUTHORIZED
    assert status.snapshot.expires_at == expires_at
    assert run(fake.capture(ref(), 1820, "k-1", final=True)).outcome is Outcome.SUCCEEDED
    assert fake.ledger == [("capture", "ord_1", 1820)]


def test_by_default_the_credentials_are_right() -> None:
    fake = FakeProvider(ProviderName.FLITT)
    assert run(fake.check()).outcome is Outcome.SUCCEEDED
