"""The provider's word beats our model (issue 15), against the in-repo sandbox over real HTTP.

The scanner runs on a FrozenClock and the sandbox's clock is frozen at the same instant;
both move together, so pending effects settle and holds lapse exactly when a test says.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from tests.support.scan import detached_row, run_one_pass
from watchdog import audit, schema, service, tokens
from watchdog.api import create_app
from watchdog.api.server import ThreadedServer
from watchdog.clock import FrozenClock
from watchdog.config import Config, parse_config
from watchdog.db import make_engine, transaction
from watchdog.domain import InstructionKind, ProviderName, State
from watchdog.errors import InstructionRefused
from watchdog.models import Action, Alert, Authorization
from watchdog.providers.base import AuthRef, Outcome, ProviderAdapter, ProviderResult
from watchdog.providers.limits import SEND_GUARD, GuardReached, LimitedAdapter
from watchdog.providers.registry import build_adapter
from watchdog.sandbox import SandboxServer
from watchdog.sandbox.credentials import SANDBOX_ENV

CURRENCY = {"smartpay": "JPY", "jpmmps": "EUR", "flitt": "GEL", "clearpay": "GBP"}
# Old enough that the deadline capture is due now (past capture_lead, before critical_lead).
DUE_AGE = {"smartpay": dt.timedelta(days=6, hours=2), "jpmmps": dt.timedelta(days=4, hours=6),
           "flitt": dt.timedelta(days=4, hours=3), "clearpay": dt.timedelta(days=12, hours=4)}


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@dataclass
class World:
    """Watchdog and sandbox on one clock."""

    engine: Engine
    config: Config
    clock: FrozenClock
    sandbox: SandboxServer

    def order(self, provider: str, order_id: str, amount: int, *, age: dt.timedelta | None = None,
              register: dict[str, Any] | None = None, **sandbox_options: Any) -> int:
        """Create the order at the sandbox and register it with the watchdog; its id."""
        authorized_at = self.clock.now() - (age if age is not None else DUE_AGE[provider])
        self.sandbox.create_order(provider, order_id, amount, CURRENCY[provider],
                                  authorized_at=authorized_at, **sandbox_options)
        fields = {"provider": provider, "order_id": order_id, "amount": amount,
                  "currency": CURRENCY[provider], "authorized_at": authorized_at.isoformat(),
                  "on_deadline": "capture", **(register or {})}
        return service.register(self.engine, self.config, fields, actor="test",
                                clock=self.clock).authorization.id

    def advance(self, delta: dt.timedelta) -> None:
        self.clock.advance(delta)
        self.sandbox.set_now(self.clock.now(), freeze=True)

    def scan(self) -> None:
        run_one_pass(self.config, self.engine, self.clock, worker="truth-test")

    def row(self, auth_id: int) -> Authorization:
        return detached_row(self.engine, auth_id)

    def actions(self, auth_id: int) -> list[Action]:
        with transaction(self.engine) as session:
            rows = list(session.scalars(select(Action).where(Action.authorization_id == auth_id)
                                        .order_by(Action.id)))
            for r in rows:
                session.expunge(r)
            return rows

    def alerts(self, auth_id: int) -> dict[str, Alert]:
        with transaction(self.engine) as session:
            rows = list(session.scalars(select(Alert).where(Alert.authorization_id == auth_id)))
            for r in rows:
                session.expunge(r)
            return {a.kind: a for a in rows}

    def events(self, auth_id: int) -> list[str]:
        return [r.event for r in audit.query(self.engine, authorization_id=auth_id)]

    def ledger(self, order_id: str) -> list[tuple[str, int]]:
        return [(e["operation"], e["amount"]) for e in self.sandbox.ledger()
                if e["order_id"] == order_id]


@pytest.fixture
def world(engine: Engine, db_url: str, clock: FrozenClock,
          sandbox_server: SandboxServer) -> World:
    sandbox_server.reset()
    sandbox_server.set_now(clock.now(), freeze=True)
    config = parse_config({
        "database": {"url": db_url},
        "providers": {name: {"base_url": url} for name, url in sandbox_server.base_urls().items()},
    }, environ=SANDBOX_ENV)
    return World(engine, config, clock, sandbox_server)


# ----------------------------------------------------------- 1. pending effects are not final


def test_jpmmps_pending_capture_is_confirmed_only_when_the_provider_says_so(world: World) -> None:
    auth_id = world.order("jpmmps", "jp-pend-1", 10_000, settle_seconds=60)
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CONFIRMING_CAPTURE, row.last_error
    assert row.captured_amount == 0
    # First poll at once, then 5 s later: the row is due again then, not before.
    assert row.next_action_at == world.clock.now() + dt.timedelta(seconds=5)
    [action] = world.actions(auth_id)
    assert action.status == "confirming"
    world.advance(dt.timedelta(seconds=5))
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CONFIRMING_CAPTURE
    assert row.next_action_at == world.clock.now() + dt.timedelta(seconds=15)
    world.advance(dt.timedelta(seconds=60))
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 10_000
    assert row.next_action_at is None
    [action] = world.actions(auth_id)
    assert action.status == "succeeded"
    assert world.ledger("jp-pend-1") == [("capture", 10_000)]
    events = world.events(auth_id)
    assert "scan:capture:still_pending" in events
    assert events.index("scan:capture:outcome") < events.index("scan:capture:confirmed")


def test_jpmmps_capture_failed_by_the_provider_pages_and_tries_again(world: World) -> None:
    auth_id = world.order("jpmmps", "jp-fail-1", 10_000, settle_seconds=30,
                          settle_outcome="fail")
    world.scan()
    assert world.row(auth_id).state == State.CONFIRMING_CAPTURE
    world.advance(dt.timedelta(seconds=31))
    world.scan()
    actions = world.actions(auth_id)
    assert actions[0].status == "failed"
    # Nothing moved, there is time: a new attempt goes out under a new key.
    assert len(actions) == 2 and actions[1].attempt == 2
    assert actions[1].idempotency_key != actions[0].idempotency_key
    row = world.row(auth_id)
    assert row.state == State.CONFIRMING_CAPTURE and row.captured_amount == 0
    alert = world.alerts(auth_id)["action_failed"]
    assert alert.severity == "critical" and alert.status == "firing"
    assert "failed our capture of 100.00 EUR" in alert.summary
    assert world.ledger("jp-fail-1") == [("capture", 10_000), ("capture_failed", 10_000),
                                         ("capture", 10_000)]


def test_flitt_capture_hold_then_captured(world: World) -> None:
    auth_id = world.order("flitt", "fl-hold-1", 5_000, settle_seconds=20)
    world.scan()
    assert world.row(auth_id).state == State.CONFIRMING_CAPTURE
    world.advance(dt.timedelta(seconds=5))
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CONFIRMING_CAPTURE  # the 5 s poll saw it still on hold
    world.advance(dt.timedelta(seconds=15))
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 5_000


def test_flitt_reversal_processing_is_confirmed_before_it_counts(world: World) -> None:
    auth_id = world.order("flitt", "fl-rev-1", 5_000, settle_seconds=20,
                          register={"on_deadline": "cancel"})
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CONFIRMING_CANCEL, row.last_error
    world.advance(dt.timedelta(seconds=20))
    world.scan()
    assert world.row(auth_id).state == State.CANCELED
    assert world.ledger("fl-rev-1") == [("cancel", 5_000)]
    assert "scan:cancel:confirmed" in world.events(auth_id)


def test_capture_still_pending_pages_at_critical_and_hands_over_at_the_deadline(
    world: World,
) -> None:
    auth_id = world.order("jpmmps", "jp-slow-1", 10_000, settle_seconds=3 * 86_400)
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CONFIRMING_CAPTURE
    deadline = row.deadline
    critical_at = deadline - dt.timedelta(hours=6)
    # Polls a minute before critical_at back off (15 s, 30 s, 1 min ...) and one is
    # clipped to fall exactly on critical_at.
    world.advance(critical_at - dt.timedelta(minutes=1) - world.clock.now())
    world.scan()
    polls = []
    while (next_at := world.row(auth_id).next_action_at) != critical_at and len(polls) < 5:
        assert next_at is not None and next_at < critical_at
        polls.append(next_at - world.clock.now())
        world.advance(next_at - world.clock.now())
        world.scan()
    assert world.row(auth_id).next_action_at == critical_at
    assert polls == [dt.timedelta(seconds=15), dt.timedelta(seconds=30)]
    assert "effect_pending" not in world.alerts(auth_id)
    world.advance(critical_at - world.clock.now())
    world.scan()
    alert = world.alerts(auth_id)["effect_pending"]
    assert alert.severity == "critical"
    assert world.row(auth_id).state == State.CONFIRMING_CAPTURE
    world.advance(deadline - world.clock.now())
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.NEEDS_ATTENTION
    assert world.alerts(auth_id)["needs_attention"].severity == "critical"


# ------------------------------------------------------- 2. a lapsed hold is money lost


@pytest.mark.parametrize("provider", ["smartpay", "jpmmps", "flitt", "clearpay"])
def test_hold_released_at_the_provider_without_our_cancel_is_expired_and_pages(
    world: World, provider: str,
) -> None:
    order_id = "7001" if provider == "clearpay" else f"{provider}-lapsed-1"
    # The provider let the hold go an hour ago, before our own window says so.
    auth_id = world.order(provider, order_id, 10_000,
                          expires_at=world.clock.now() - dt.timedelta(hours=1))
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.EXPIRED, (row.state, row.last_error)
    assert row.captured_amount == 0 and row.next_action_at is None
    alert = world.alerts(auth_id)["authorization_expired"]
    assert alert.severity == "critical" and alert.status == "firing"
    assert world.ledger(order_id) == []  # we never cancelled, nothing was captured
    # The audit keeps the provider's own word for it.
    states = [r.detail for r in audit.query(world.engine, authorization_id=auth_id)
              if r.event == "scan:status:read"]
    assert states and all('"provider_state"' in d for d in states)
    # Not resolved by a later pass: only an ack or `resolve` ends it.
    world.advance(dt.timedelta(hours=1))
    world.scan()
    assert world.alerts(auth_id)["authorization_expired"].status == "firing"
    assert "canceled" not in {r.state_to for r in audit.query(world.engine,
                                                             authorization_id=auth_id)}


# ------------------------------------- 3. never more than registered, never blind to a mismatch


def _mismatch_events(world: World, auth_id: int) -> list[Any]:
    return [r for r in audit.query(world.engine, authorization_id=auth_id)
            if r.event == "scan:provider:mismatch"]


def test_jpmmps_full_capture_takes_the_registered_amount_not_what_the_provider_holds(
    world: World,
) -> None:
    # Registered 10.00, the provider holds 15.00: a "full" capture must name 10.00.
    auth_id = world.order("jpmmps", "jp-more-1", 1_500, register={"amount": 1_000})
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 1_000
    assert world.ledger("jp-more-1") == [("capture", 1_000)]
    alert = world.alerts(auth_id)["provider_mismatch"]
    assert alert.severity == "warning"
    assert "15.00 EUR" in alert.summary and "10.00 EUR" in alert.summary
    [event] = _mismatch_events(world, auth_id)[:1]
    assert json.loads(event.detail)["provider_amount"] == 1_500


def test_provider_holding_less_than_registered_caps_the_capture(world: World) -> None:
    auth_id = world.order("clearpay", "7101", 1_000, register={"amount": 1_500})
    world.scan()
    row = world.row(auth_id)
    assert row.captured_amount == 1_000  # never above the provider's open amount
    assert world.ledger("7101") == [("capture", 1_000)]
    assert "provider_mismatch" in world.alerts(auth_id)
    assert _mismatch_events(world, auth_id)


def test_currency_disagreement_captures_nothing_and_pages(world: World) -> None:
    authorized_at = world.clock.now() - DUE_AGE["flitt"]
    world.sandbox.create_order("flitt", "fl-cur-1", 5_000, "EUR", authorized_at=authorized_at)
    auth_id = service.register(world.engine, world.config, {
        "provider": "flitt", "order_id": "fl-cur-1", "amount": 5_000, "currency": "GEL",
        "authorized_at": authorized_at.isoformat(), "on_deadline": "capture",
    }, actor="test", clock=world.clock).authorization.id
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.NEEDS_ATTENTION
    assert world.ledger("fl-cur-1") == []
    alerts = world.alerts(auth_id)
    assert alerts["provider_mismatch"].severity == "critical"
    assert "EUR" in alerts["provider_mismatch"].summary
    assert alerts["needs_attention"].severity == "critical"


# ------------------------------------------- 4. the provider's expiry is read early, and wins


@pytest.mark.parametrize("provider", ["smartpay", "clearpay"])
def test_early_read_takes_an_earlier_provider_expiry_and_replans(world: World,
                                                                 provider: str) -> None:
    order_id = "7201" if provider == "clearpay" else "sp-early-1"
    authorized_at = world.clock.now() - dt.timedelta(hours=1)
    real_expiry = authorized_at + dt.timedelta(days=4)  # our window says 7 / 13 days
    auth_id = world.order(provider, order_id, 10_000, age=dt.timedelta(hours=1),
                          expires_at=real_expiry)
    assert world.row(auth_id).deadline > real_expiry
    world.scan()
    row = world.row(auth_id)
    assert row.last_synced_at == world.clock.now()
    assert row.deadline == real_expiry and row.deadline_source == "provider_reported"
    assert row.next_action_at == real_expiry - dt.timedelta(hours=48)  # alert_at, re-planned
    earlier = [r for r in audit.query(world.engine, authorization_id=auth_id)
               if r.event == "scan:deadline:earlier"]
    assert len(earlier) == 1 and real_expiry.isoformat() in earlier[0].detail
    assert world.ledger(order_id) == []
    # Read once: a later pass does not read it again before alert_at.
    reads = len([r for r in world.sandbox.requests() if r["operation"] == "status"])
    world.advance(dt.timedelta(minutes=5))
    world.scan()
    assert len([r for r in world.sandbox.requests() if r["operation"] == "status"]) == reads


def test_early_read_of_an_expiry_already_inside_capture_lead_captures_at_once(
    world: World,
) -> None:
    authorized_at = world.clock.now() - dt.timedelta(days=3, hours=12)
    auth_id = world.order("smartpay", "sp-early-2", 10_000,
                          age=dt.timedelta(days=3, hours=12),
                          expires_at=authorized_at + dt.timedelta(days=4))
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 10_000
    assert world.ledger("sp-early-2") == [("capture", 10_000)]


def test_an_order_the_provider_does_not_know_pages(world: World) -> None:
    auth_id = service.register(world.engine, world.config, {
        "provider": "jpmmps", "order_id": "jp-nobody", "amount": 1_000, "currency": "EUR",
        "authorized_at": (world.clock.now() - dt.timedelta(hours=1)).isoformat(),
    }, actor="test", clock=world.clock).authorization.id
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.NEEDS_ATTENTION
    assert "does not know this order" in (row.last_error or "")
    assert world.alerts(auth_id)["needs_attention"].severity == "critical"
    assert "scan:early_read:unknown_order" in world.events(auth_id)


def test_early_reads_are_bounded_per_pass_and_never_delay_a_due_capture(
    engine: Engine, db_url: str, clock: FrozenClock, sandbox_server: SandboxServer,
) -> None:
    sandbox_server.reset()
    sandbox_server.set_now(clock.now(), freeze=True)
    config = parse_config({
        "database": {"url": db_url},
        "scheduler": {"batch_size": 2},
        "providers": {name: {"base_url": url} for name, url in sandbox_server.base_urls().items()},
    }, environ=SANDBOX_ENV)
    world = World(engine, config, clock, sandbox_server)
    fresh = [world.order("smartpay", f"sp-fresh-{n}", 1_000,
                         age=dt.timedelta(hours=10 - n)) for n in range(5)]
    due = world.order("clearpay", "7301", 5_000)
    world.scan()
    assert world.row(due).state == State.CAPTURED
    synced = [auth_id for auth_id in fresh if world.row(auth_id).last_synced_at is not None]
    assert synced == fresh[:2]  # two per pass, earliest deadline first
    world.scan()
    world.scan()
    assert all(world.row(auth_id).last_synced_at is not None for auth_id in fresh)


# ------------------------------------------- 5. unknown outcomes, the guard after the wait


def test_5xx_on_a_capture_is_an_unknown_outcome_resolved_by_a_status_read(world: World) -> None:
    auth_id = world.order("clearpay", "7401", 5_000)
    # More 503s than the in-call retries (same key) can ride out.
    world.sandbox.add_fault(provider="clearpay", operation="capture", kind="error",
                            count=4, status=503)
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CAPTURING  # not "nothing moved": no new attempt can follow
    [action] = world.actions(auth_id)
    assert action.status == "unknown"
    # Nor can an instruction slip a capture of another amount (a new key) in meanwhile.
    with pytest.raises(InstructionRefused, match="capturing"):
        service.instruct(world.engine, world.config, auth_id, InstructionKind.CAPTURE_NOW,
                         "test", amount=1_000, clock=world.clock)
    world.advance(dt.timedelta(minutes=10))  # past the recovery delay
    world.scan()
    row = world.row(auth_id)
    assert row.state == State.CAPTURED and row.captured_amount == 5_000
    actions = world.actions(auth_id)
    assert [a.idempotency_key for a in actions] == [action.idempotency_key]
    assert world.ledger("7401") == [("capture", 5_000)]
    events = world.events(auth_id)
    assert events.index("recovery:capture:check") < events.index("recovery:capture:resend")


class _Gated:
    """An adapter whose status reads wait for a gate: something to hold a slot with."""

    def __init__(self, inner: ProviderAdapter, gate: asyncio.Event) -> None:
        self.inner, self.gate = inner, gate
        self.name, self.rules = inner.name, inner.rules

    async def status(self, ref: AuthRef) -> ProviderResult:
        await self.gate.wait()
        return await self.inner.status(ref)

    async def capture(self, ref: AuthRef, amount: int, key: str, *, final: bool) -> ProviderResult:
        return await self.inner.capture(ref, amount, key, final=final)

    async def cancel(self, ref: AuthRef, key: str) -> ProviderResult:
        return await self.inner.cancel(ref, key)

    async def check(self) -> ProviderResult:
        return await self.inner.check()


@pytest.mark.parametrize("late", [True, False])
def test_the_guard_is_checked_after_waiting_for_a_slot(world: World, late: bool) -> None:
    world.sandbox.create_order("jpmmps", "jp-slot-1", 1_000, "EUR",
                               authorized_at=world.clock.now() - dt.timedelta(days=4))
    ref = AuthRef(1, "jp-slot-1", 1_000, "EUR")
    guard_at = world.clock.now() + dt.timedelta(minutes=1)

    async def scenario() -> ProviderResult | GuardReached:
        async with httpx.AsyncClient(timeout=10) as client:
            gate = asyncio.Event()
            inner = build_adapter(world.config.providers[ProviderName.JPMMPS], client)
            limited = LimitedAdapter(_Gated(inner, gate), max_concurrency=1)
            holder = asyncio.create_task(limited.status(ref))  # takes the only slot
            await asyncio.sleep(0)
            token = SEND_GUARD.set(lambda: (guard_at - world.clock.now()).total_seconds())
            try:
                capture = asyncio.create_task(limited.capture(ref, 1_000, "slot-1", final=True))
            finally:
                SEND_GUARD.reset(token)
            await asyncio.sleep(0)
            if late:
                world.advance(dt.timedelta(minutes=1))  # the guard passes while it waits
            gate.set()
            await holder
            try:
                return await capture
            except GuardReached as exc:
                return exc

    outcome = asyncio.run(scenario())
    captures = [r for r in world.sandbox.requests() if r["operation"] == "capture"]
    if late:
        assert isinstance(outcome, GuardReached), outcome
        assert captures == []  # nothing left after the guard
    else:
        assert isinstance(outcome, ProviderResult) and outcome.outcome is Outcome.PENDING
        assert len(captures) == 1


def test_two_databases_against_one_merchant_account_never_share_a_key(
    world: World, tmp_path: Path,
) -> None:
    other_engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    schema.upgrade(other_engine)
    other_config = parse_config({
        "database": {"url": f"sqlite:///{tmp_path / 'other.db'}"},
        "providers": {name: {"base_url": url} for name, url in world.sandbox.base_urls().items()},
    }, environ=SANDBOX_ENV)
    other = World(other_engine, other_config, world.clock, world.sandbox)
    try:
        first = world.order("jpmmps", "jp-db-a", 1_000)
        second = other.order("jpmmps", "jp-db-b", 2_000)
        assert first == second  # the same row id in each database
        world.scan()
        other.scan()
        [a], [b] = world.actions(first), other.actions(second)
        assert a.idempotency_key != b.idempotency_key
        assert other.row(second).state == State.CAPTURED
        assert other.row(second).captured_amount == 2_000
        assert world.ledger("jp-db-a") == [("capture", 1_000)]
        assert world.ledger("jp-db-b") == [("capture", 2_000)]
    finally:
        other_engine.dispose()


# ------------------------------------------------- "already done" is confirmed, not assumed


def _someone_else(world: World, provider: ProviderName, script: Any) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await script(build_adapter(world.config.providers[provider], client))

    asyncio.run(run())


def test_clearpay_410_after_someone_else_captured_books_the_providers_amount_and_pages(
    world: World,
) -> None:
    auth_id = world.order("clearpay", "7501", 5_000)
    world.sandbox.add_fault(provider="clearpay", operation="capture", kind="drop_before_apply")
    world.scan()
    assert world.row(auth_id).state == State.CAPTURING  # our capture's outcome is unknown
    ref = AuthRef(999, "7501", 5_000, "GBP")

    async def capture_part_and_void_the_rest(adapter: ProviderAdapter) -> None:
        assert (await adapter.capture(ref, 3_000, "other-1", final=False)).outcome \
            is Outcome.SUCCEEDED
        await adapter.cancel(ref, "other-2")

    _someone_else(world, ProviderName.CLEARPAY, capture_part_and_void_the_rest)
    world.advance(dt.timedelta(minutes=10))
    world.scan()  # recovery: status shows 30.00 of 50.00, resend, 410 payment_captured
    row = world.row(auth_id)
    assert row.state == State.CAPTURED
    assert row.captured_amount == 3_000  # the provider's amount, not the 50.00 we asked
    alert = world.alerts(auth_id)["provider_mismatch"]
    assert alert.severity == "critical" and alert.status == "firing"
    assert "30.00 GBP" in alert.summary and "50.00 GBP" in alert.summary
    assert world.ledger("7501") == [("capture", 3_000), ("void", 2_000)]


# --------------------------------- instructions the provider cannot carry out: refused up front


def test_an_uncapturable_clearpay_remainder_is_refused_with_a_422_naming_the_amount(
    world: World,
) -> None:
    auth_id = world.order("clearpay", "7601", 10_000, age=dt.timedelta(hours=1))
    secret = tokens.create(world.engine, "shop", tokens.Scope.WRITE, "test", world.clock.now())
    with ThreadedServer(create_app(world.engine, world.config, world.clock)) as server, \
            httpx.Client(base_url=server.url, timeout=10,
                         headers={"Authorization": f"Bearer {secret}"}) as client:
        refused = client.post(f"/v1/authorizations/{auth_id}/capture-instruction",
                              json={"amount": 9_950, "when": "now"})
        accepted = client.post(f"/v1/authorizations/{auth_id}/capture-instruction",
                               json={"amount": 9_900, "when": "now"})
    assert refused.status_code == 422, refused.text
    assert "amount" in refused.text and "minimum capture" in refused.text
    assert accepted.status_code == 202, accepted.text


def test_releasing_a_wanted_remainder_below_the_minimum_alerts(world: World) -> None:
    world.sandbox.create_order("clearpay", "7701", 10_000, "GBP",
                               authorized_at=world.clock.now() - DUE_AGE["clearpay"])

    async def capture_most(adapter: ProviderAdapter) -> None:
        ref = AuthRef(999, "7701", 10_000, "GBP")
        assert (await adapter.capture(ref, 9_950, "elsewhere-1", final=False)).outcome \
            is Outcome.SUCCEEDED

    _someone_else(world, ProviderName.CLEARPAY, capture_most)
    auth_id = service.register(world.engine, world.config, {
        "provider": "clearpay", "order_id": "7701", "amount": 10_000, "currency": "GBP",
        "authorized_at": (world.clock.now() - DUE_AGE["clearpay"]).isoformat(),
        "on_deadline": "capture",
    }, actor="test", clock=world.clock).authorization.id
    world.scan()
    assert world.ledger("7701") == [("capture", 9_950), ("void", 50)]
    alert = world.alerts(auth_id)["action_failed"]
    assert "releasing 0.50 GBP still wanted" in alert.summary
    assert "minimum capture 1.00 GBP" in alert.summary
