"""Heartbeat leases on real SQLite and PostgreSQL: a live worker keeps its rows through a
provider call longer than the lease; a dead worker's rows are free one lease after its
last heartbeat, and its late writes are refused.

Time is a FrozenClock; the heartbeat thread is stood in for by ``Heartbeat.beat`` at the
instants the test chooses (the thread itself is checked on its own at the end).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import threading
from collections import Counter

from sqlalchemy import Engine, func, select

from watchdog import audit, service, store, workers
from watchdog.clock import SYSTEM_CLOCK, FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.domain import ProviderName, State
from watchdog.models import Authorization, Worker
from watchdog.providers.base import AuthRef, ProviderResult
from watchdog.providers.fake import FakeProvider
from watchdog.scan import Scanner
from watchdog.workers import Heartbeat

DAY = dt.timedelta(days=1)
ROWS = 8


class SlowProvider:
    """The fake provider behind a gate: captures apply at once (the money moved) but the
    answer waits until the test opens the gate. Counts every call, per row."""

    def __init__(self, fake: FakeProvider, expected: int) -> None:
        self.fake = fake
        self.gate = asyncio.Event()
        self.in_flight = asyncio.Event()
        self.expected = expected
        self.calls: Counter[str] = Counter()
        self.waiting = 0

    @property
    def name(self) -> ProviderName:
        return self.fake.name

    @property
    def rules(self):  # type: ignore[no-untyped-def]
        return self.fake.rules

    async def status(self, ref: AuthRef) -> ProviderResult:
        self.calls[ref.order_id] += 1
        return await self.fake.status(ref)

    async def capture(self, ref: AuthRef, amount: int, key: str, *, final: bool) -> ProviderResult:
        self.calls[ref.order_id] += 1
        result = await self.fake.capture(ref, amount, key, final=final)
        self.waiting += 1
        if self.waiting == self.expected:
            self.in_flight.set()
        await self.gate.wait()
        return result

    async def cancel(self, ref: AuthRef, key: str) -> ProviderResult:
        self.calls[ref.order_id] += 1
        return await self.fake.cancel(ref, key)

    async def check(self) -> ProviderResult:
        return await self.fake.check()


def _due_rows(engine: Engine, config: Config, clock: FrozenClock, fake: FakeProvider) -> list[int]:
    ids = []
    for i in range(ROWS):
        order_id = str(5000 + i)
        fake.add(order_id, 1000 + i)
        ids.append(service.register(engine, config, {
            "provider": "clearpay", "order_id": order_id, "amount": 1000 + i, "currency": "GBP",
            "authorized_at": (clock.now() - 12 * DAY - dt.timedelta(hours=1)).isoformat(),
        }, actor="test", clock=clock).authorization.id)
    return ids


def _scanner(engine: Engine, config: Config, clock: FrozenClock, adapter: object, worker: str) -> Scanner:
    async def no_sleep(_: float) -> None:
        return None

    return Scanner(engine, config, {ProviderName.CLEARPAY: adapter}, clock, worker,  # type: ignore[dict-item]
                   sleep=no_sleep)


def _states(engine: Engine) -> Counter[str]:
    with transaction(engine) as s:
        return Counter(s.scalars(select(Authorization.state)))


def test_a_live_worker_keeps_its_rows_through_a_call_longer_than_the_lease(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    lease = config.scheduler.lease
    fake = FakeProvider(ProviderName.CLEARPAY)
    _due_rows(engine, config, clock, fake)
    slow_a = SlowProvider(fake, ROWS)
    slow_b = SlowProvider(fake, ROWS)
    a = _scanner(engine, config, clock, slow_a, "a")
    b = _scanner(engine, config, clock, slow_b, "b")
    beat_a = Heartbeat(engine, "a", clock, lease)
    beat_b = Heartbeat(engine, "b", clock, lease)

    async def scenario() -> None:
        beat_a.beat()
        a_pass = asyncio.create_task(a.run_pass())
        await asyncio.wait_for(slow_a.in_flight.wait(), 30)
        # A's captures take four leases to answer; A's heartbeat keeps beating meanwhile.
        for _ in range(4):
            clock.advance(lease)
            beat_a.beat()
            beat_b.beat()
            report = await b.run_pass()
            assert report.claimed == 0
        assert slow_b.calls == Counter()  # B never touched A's rows
        slow_a.gate.set()
        await a_pass

    asyncio.run(scenario())
    assert Counter(order for _, order, _ in fake.ledger) == Counter({str(5000 + i): 1 for i in range(ROWS)})
    assert _states(engine) == Counter({State.CAPTURED.value: ROWS})
    refused = [r for r in audit.query(engine) if r.event == "scan:write:refused"]
    assert refused == []


def test_a_dead_workers_rows_are_free_one_lease_after_its_last_heartbeat(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    lease = config.scheduler.lease
    fake = FakeProvider(ProviderName.CLEARPAY)
    ids = _due_rows(engine, config, clock, fake)
    frozen = SlowProvider(fake, ROWS)  # A applies the captures, then never answers
    live = SlowProvider(fake, ROWS)
    live.gate.set()
    a = _scanner(engine, config, clock, frozen, "a")
    b = _scanner(engine, config, clock, live, "b")
    beat_a = Heartbeat(engine, "a", clock, lease)
    beat_b = Heartbeat(engine, "b", clock, lease)

    async def scenario() -> None:
        beat_a.beat()
        last_beat = clock.now()
        a_pass = asyncio.create_task(a.run_pass())
        await asyncio.wait_for(frozen.in_flight.wait(), 30)
        # A stops heartbeating (killed, or frozen) with every row in flight.
        clock.set(last_beat + lease)
        beat_b.beat()
        assert (await b.run_pass()).claimed == 0  # exactly one lease: still A's
        clock.set(last_beat + lease + dt.timedelta(seconds=1))
        beat_b.beat()
        report = await b.run_pass()
        assert report.claimed == ROWS  # one second later: all free, and recovered by B
        assert _states(engine) == Counter({State.CAPTURED.value: ROWS})
        # A wakes up: every late write of its is refused by the generation fence.
        frozen.gate.set()
        await a_pass

    asyncio.run(scenario())
    assert Counter(order for _, order, _ in fake.ledger) == Counter({str(5000 + i): 1 for i in range(ROWS)})
    assert _states(engine) == Counter({State.CAPTURED.value: ROWS})
    refused = {r.authorization_id for r in audit.query(engine) if r.event == "scan:write:refused"}
    assert refused == set(ids)
    assert audit.verify(engine).rows == len(audit.query(engine))


def test_a_claim_by_a_worker_without_heartbeat_runs_out_with_its_lease(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    lease = config.scheduler.lease
    fake = FakeProvider(ProviderName.CLEARPAY)
    _due_rows(engine, config, clock, fake)
    assert len(store.claim_due(engine, "gone", clock.now(), lease, 100)) == ROWS
    assert store.claim_due(engine, "other", clock.now() + lease, lease, 100) == []
    later = clock.now() + lease + dt.timedelta(seconds=1)
    assert len(store.claim_due(engine, "other", later, lease, 100)) == ROWS


def test_the_heartbeat_thread_renews_the_workers_row_and_removes_it_on_stop(engine: Engine) -> None:
    heartbeat = Heartbeat(engine, "thread-test", SYSTEM_CLOCK, dt.timedelta(seconds=0.3))

    def beat_at() -> dt.datetime | None:
        with transaction(engine) as s:
            return s.scalar(select(Worker.heartbeat_at).where(Worker.id == "thread-test"))

    heartbeat.start()
    try:
        first = beat_at()
        assert first is not None
        renewed = threading.Event()
        for _ in range(100):  # the thread beats every 0.1 s; give it up to 5 s
            if (beat_at() or first) > first:
                renewed.set()
                break
            renewed.wait(0.05)
        assert renewed.is_set(), "the heartbeat thread did not renew the worker's row"
    finally:
        heartbeat.stop()
    assert beat_at() is None


def test_next_work_is_the_soonest_due_row_or_the_instant_a_held_row_comes_free(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    lease = config.scheduler.lease
    fake = FakeProvider(ProviderName.CLEARPAY)
    ids = _due_rows(engine, config, clock, fake)
    t0 = clock.now()
    with transaction(engine) as s:
        first_due = store.next_work_at(s, lease)
    assert first_due is not None and first_due <= t0  # due now

    # A worker heartbeats at t0 and holds every row: the work comes back when it could die.
    Heartbeat(engine, "holder", clock, lease).beat()
    store.claim_due(engine, "holder", t0, lease, 100)
    with transaction(engine) as s:
        held_free_at = store.next_work_at(s, lease)
    assert held_free_at == t0 + lease + store.FREE_AFTER
    assert store.claim_due(engine, "other", t0 + lease, lease, 100) == []
    assert len(store.claim_due(engine, "other", held_free_at, lease, 100)) == ROWS

    # One row released and planned 20 s out (a confirmation poll): that is the next work.
    with transaction(engine) as s:
        s.execute(Authorization.__table__.update().where(Authorization.id == ids[0]).values(
            claimed_by=None, claimed_until=None, next_action_at=t0 + dt.timedelta(seconds=20)))
        assert store.next_work_at(s, lease) == t0 + dt.timedelta(seconds=20)


def test_a_pass_takes_back_rows_its_own_worker_left_leased(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    """A release that failed (the database was away) leaves rows leased to a worker that
    keeps heartbeating: nobody else may take them, so its next pass must."""
    lease = config.scheduler.lease
    fake = FakeProvider(ProviderName.CLEARPAY)
    _due_rows(engine, config, clock, fake)
    beat = Heartbeat(engine, "a", clock, lease)
    beat.beat()
    store.claim_due(engine, "a", clock.now(), lease, 100)  # ... and the pass lost them
    clock.advance(lease * 2)
    beat.beat()
    assert store.claim_due(engine, "b", clock.now(), lease, 100) == []  # a is alive
    live = SlowProvider(fake, ROWS)
    live.gate.set()
    report = asyncio.run(_scanner(engine, config, clock, live, "a").run_pass())
    assert report.claimed == ROWS
    assert _states(engine) == Counter({State.CAPTURED.value: ROWS})


def test_a_restarted_worker_takes_over_a_dead_incarnations_rows_at_once(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    """Same machine (boot id and PID namespace), pid gone: no lease to wait out. A live pid,
    or a pid on another machine, keeps its rows."""
    lease = config.scheduler.lease
    fake = FakeProvider(ProviderName.CLEARPAY)
    ids = _due_rows(engine, config, clock, fake)
    finished = subprocess.Popen(["true"])  # any short-lived process: its pid is gone
    finished.wait()
    dead_pid = finished.pid
    here = workers.host_key()
    assert here is not None, "this test needs Linux's /proc"
    holders = {"dead": (here, dead_pid), "alive": (here, os.getpid()),
               "elsewhere": ("other-boot/1", dead_pid)}
    with transaction(engine) as s:
        for name, (host, pid) in holders.items():
            workers.beat(s, name, clock.now(), host, pid)
    rows = iter(ids)
    for name in holders:
        assert len(store.claim_due(engine, name, clock.now(), lease, 2)) == 2
    with transaction(engine) as s:  # one of the dead one's rows was mid-capture
        s.execute(Authorization.__table__.update().where(
            Authorization.claimed_by == "dead", Authorization.id == next(rows)).values(
            state=State.CAPTURING.value, next_action_at=clock.now() + lease))
    restarted = Heartbeat(engine, "restarted", clock, lease)
    restarted.start()
    restarted.stop()
    with transaction(engine) as s:
        held = Counter(s.scalars(select(Authorization.claimed_by).where(
            Authorization.claimed_by.is_not(None))))
        known = set(s.scalars(select(Worker.id)))
        due_now = s.scalar(select(func.count()).where(Authorization.next_action_at <= clock.now()))
    assert held == Counter({"alive": 2, "elsewhere": 2})
    assert "dead" not in known and {"alive", "elsewhere"} <= known
    assert due_now == ROWS  # the in-flight row is due now, not one lease later
