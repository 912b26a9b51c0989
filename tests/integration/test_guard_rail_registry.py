"""A guard rail registered in ``watchdog.guard_rails.GUARD_RAILS`` is both what the scan
decides (the capture is held, audited and alerted) and what ``explain`` prints, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.integration.test_scan import DAY, _register, _row, _scanner
from watchdog import audit
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.domain import ActionKind, ProviderName, State
from watchdog.explain import explain
from watchdog.guard_rails import GUARD_RAILS, GuardRail, Hold, Situation
from watchdog.providers.fake import FakeProvider

DUE = 12 * DAY + dt.timedelta(hours=1)  # clearpay: inside capture_lead


class ChangeFreeze(GuardRail):
    """A rail defined by the test: while ``frozen``, no capture moves."""

    name = "change_freeze"

    def __init__(self) -> None:
        self.frozen = True

    def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
        if self.frozen and kind is ActionKind.CAPTURE:
            return Hold("held", "change freeze in force", True)
        return None

    def describe(self, s: Situation) -> str | None:
        return "change freeze in force: captures wait" if self.frozen else None


@pytest.fixture
def freeze() -> Iterator[ChangeFreeze]:
    """``ChangeFreeze`` registered for the test, removed after it."""
    rail = ChangeFreeze()
    GUARD_RAILS.append(rail)
    try:
        yield rail
    finally:
        GUARD_RAILS.remove(rail)


def test_a_registered_rail_holds_the_scan_and_shows_in_explain(
    engine: Engine, config: Config, clock: FrozenClock, freeze: ChangeFreeze
) -> None:
    fake = FakeProvider(ProviderName.CLEARPAY)
    fake.add("4401", 3000)
    auth_id = _register(engine, config, clock, "clearpay", "4401", 3000, age=DUE)
    scanner = _scanner(engine, config, clock, {ProviderName.CLEARPAY: fake})

    asyncio.run(scanner.run_pass())
    assert fake.ledger == []
    held = [r for r in audit.query(engine, authorization_id=auth_id)
            if r.event == "scan:capture:held"]
    assert len(held) == 1 and json.loads(held[0].detail)["reason"] == "change freeze in force"
    rails = [line for line in explain(engine, config, auth_id, clock)
             if line.startswith("guard rails:")]
    assert rails == ["guard rails: change freeze in force: captures wait"]

    freeze.frozen = False
    assert "guard rails: none" in explain(engine, config, auth_id, clock)
    clock.advance(config.scheduler.scan_interval)
    asyncio.run(scanner.run_pass())
    assert fake.ledger == [("capture", "4401", 3000)]
    assert _row(engine, auth_id).state == State.CAPTURED
