"""Model-based test of the money rules: Hypothesis drives the watchdog through random lives.

One machine = one SQLite file migrated by alembic, two in-memory providers with different
rules (Clearpay: several partial captures, and it reports its own — possibly earlier —
expiry; Flitt: a single capture that releases the rest), and a frozen clock. Rules
register authorizations of random amounts and ages, give merchant instructions, run scan
passes, crash a worker in the middle of a pass (kill -9 while the provider call is out,
with or without the effect applied), lose provider answers after the effect was applied,
queue provider faults, and move the clock by minutes to days.

After every step:

* no authorization is ever captured beyond its authorized amount (the fake's ledger);
* Flitt: at most one capture, and a capture and a cancel together only when the cancel
  released a remainder after a partial capture; nobody captures after a cancel;
* no effect reached a provider at or after the authorization's deadline guard
  (true deadline - safety margin; the true deadline includes the provider's own expiry,
  which the watchdog learns only by reading the status). The clock never moves during a
  step, so each new ledger entry is stamped with the clock time of the step that made it;
* once an authorization is final, the stored captured amount is what the provider holds;
* the audit chain verifies, and each authorization's audit trail replays to its stored
  state (the last ``state_to`` among its audit rows is the row's state).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from watchdog import audit, schema, service
from watchdog.clock import FrozenClock
from watchdog.config import parse_config
from watchdog.db import make_engine, transaction
from watchdog.domain import InstructionKind, ProviderName, State
from watchdog.errors import InstructionError, TransitionError
from watchdog.models import AuditRow, Authorization
from watchdog.providers.base import AuthRef, Outcome, ProviderResult, ProviderRules
from watchdog.providers.fake import FakeProvider
from watchdog.scan import Scanner

START = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
PROVIDERS = (ProviderName.CLEARPAY, ProviderName.FLITT)
CURRENCY = {ProviderName.CLEARPAY: "GBP", ProviderName.FLITT: "GEL"}


class Crash(BaseException):
    """kill -9 in the middle of a provider call: nothing after it runs in that worker."""


class CrashingProvider:
    """Wraps a fake: every money call dies, after (or before) the provider applied it."""

    def __init__(self, inner: FakeProvider, applied: bool) -> None:
        self.inner = inner
        self.applied = applied

    @property
    def name(self) -> ProviderName:
        return self.inner.name

    @property
    def rules(self) -> ProviderRules:
        return self.inner.rules

    async def status(self, ref: AuthRef) -> ProviderResult:
        return await self.inner.status(ref)

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        if self.applied:
            await self.inner.capture(ref, amount, idempotency_key, final=final)
        raise Crash

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        if self.applied:
            await self.inner.cancel(ref, idempotency_key)
        raise Crash

    async def check(self) -> ProviderResult:
        return await self.inner.check()


async def _no_sleep(_: float) -> None:
    return None


@dataclass(frozen=True)
class Registered:
    """What the model knows about one authorization."""

    provider: ProviderName
    order_id: str
    amount: int
    authorized_at: dt.datetime
    provider_expires_at: dt.datetime | None


class WatchdogMachine(RuleBasedStateMachine):
    """The watchdog against two fake providers, one frozen clock and one SQLite file."""

    authorizations = Bundle("authorizations")

    def __init__(self) -> None:
        super().__init__()
        self.workdir = Path(tempfile.mkdtemp(prefix="watchdog-model-"))
        url = f"sqlite:///{self.workdir / 'model.db'}"
        self.engine = make_engine(url)
        schema.upgrade(self.engine)
        self.config = parse_config({"database": {"url": url}}, environ={})
        self.clock = FrozenClock(START)
        self.fakes = {p: FakeProvider(p) for p in PROVIDERS}
        self.scanner = Scanner(self.engine, self.config, dict(self.fakes), self.clock, "model",
                               sleep=_no_sleep)
        self.known: dict[int, Registered] = {}
        self.stamps: dict[ProviderName, list[dt.datetime]] = {p: [] for p in PROVIDERS}
        self.ids = itertools.count(1)

    def teardown(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ rules

    @rule(
        target=authorizations,
        provider=st.sampled_from(PROVIDERS),
        amount=st.integers(1, 50_000),
        # Time left until the window closes: mostly "due now or soon", sometimes days away.
        time_left=st.one_of(
            st.integers(-120, 30 * 60), st.integers(0, 13 * 24 * 60)
        ).map(lambda m: dt.timedelta(minutes=m)),
        on_deadline=st.sampled_from([None, "capture", "cancel", "alert"]),
        capture_percent=st.none() | st.integers(1, 100),
        provider_expiry_earlier=st.none() | st.integers(1, 96).map(lambda h: dt.timedelta(hours=h)),
    )
    def register(
        self,
        provider: ProviderName,
        amount: int,
        time_left: dt.timedelta,
        on_deadline: str | None,
        capture_percent: int | None,
        provider_expiry_earlier: dt.timedelta | None,
    ) -> object:
        n = next(self.ids)
        order_id = str(100_000 + n) if provider is ProviderName.CLEARPAY else f"fl-{n}"
        window = self.config.providers[provider].window
        authorized_at = self.clock.now() - max(window - time_left, dt.timedelta(0))
        expires_at = None
        if provider is ProviderName.CLEARPAY and provider_expiry_earlier is not None:
            # Clearpay reports its own expiry; here it is earlier than our window says.
            expires_at = authorized_at + window - provider_expiry_earlier
        self.fakes[provider].add(order_id, amount, expires_at=expires_at)
        data: dict[str, object] = {
            "provider": provider.value, "order_id": order_id, "amount": amount,
            "currency": CURRENCY[provider], "authorized_at": authorized_at.isoformat(),
        }
        if on_deadline is not None:
            data["on_deadline"] = on_deadline
        if capture_percent is not None:
            data["capture_amount"] = max(1, amount * capture_percent // 100)
        result = service.register(self.engine, self.config, data, actor="merchant",
                                  clock=self.clock)
        assert result.created
        auth_id = result.authorization.id
        self.known[auth_id] = Registered(provider, order_id, amount, authorized_at, expires_at)
        return auth_id

    @rule(
        auth_id=authorizations,
        kind=st.sampled_from(list(InstructionKind)),
        percent=st.none() | st.integers(1, 120),
        final=st.booleans(),
    )
    def instruct(
        self, auth_id: int, kind: InstructionKind, percent: int | None, final: bool
    ) -> None:
        amount = None if percent is None else max(1, self.known[auth_id].amount * percent // 100)
        # Refused when not open, in flight, too much, or a partial single capture: fine.
        with contextlib.suppress(InstructionError, TransitionError):
            service.instruct(self.engine, self.config, auth_id, kind, "merchant",
                             amount=amount, final=final, clock=self.clock)

    @rule()
    def scan_pass(self) -> None:
        asyncio.run(self.scanner.run_pass())

    @rule(wait=st.integers(1, 30).map(lambda m: dt.timedelta(minutes=m)))
    def scan_pass_later(self, wait: dt.timedelta) -> None:
        """A later pass: leases of crashed workers and recovery delays may have run out."""
        self.clock.advance(wait)
        asyncio.run(self.scanner.run_pass())

    @rule(provider=st.sampled_from(PROVIDERS), applied=st.booleans())
    def crash_mid_pass(self, provider: ProviderName, applied: bool) -> None:
        """A worker dies while its money calls to ``provider`` are out; it never returns."""
        adapters = {p: (CrashingProvider(f, applied) if p is provider else f)
                    for p, f in self.fakes.items()}
        worker = f"crashed-{next(self.ids)}"
        scanner = Scanner(self.engine, self.config, adapters, self.clock, worker,
                          sleep=_no_sleep)
        with contextlib.suppress(Crash):
            asyncio.run(scanner.run_pass())

    @rule(provider=st.sampled_from(PROVIDERS), count=st.integers(1, 2))
    def lose_answers(self, provider: ProviderName, count: int) -> None:
        """The next money calls are applied at the provider, but their answer is lost."""
        self.fakes[provider].apply_then_lose = count

    @rule(
        provider=st.sampled_from(PROVIDERS),
        faults=st.lists(st.sampled_from([Outcome.RETRYABLE, Outcome.UNKNOWN]),
                        min_size=1, max_size=4),
    )
    def provider_faults(self, provider: ProviderName, faults: list[Outcome]) -> None:
        self.fakes[provider].faults.extend(faults)

    @rule(delta=st.one_of(
        st.integers(1, 59).map(lambda m: dt.timedelta(minutes=m)),
        st.integers(1, 48).map(lambda h: dt.timedelta(hours=h)),
        st.integers(1, 4).map(lambda d: dt.timedelta(days=d)),
    ))
    def move_clock(self, delta: dt.timedelta) -> None:
        self.clock.advance(delta)

    # ------------------------------------------------------------------ invariants

    def stamp_new_effects(self) -> None:
        """The clock is frozen within a step: new ledger entries happened at "now"."""
        for provider, fake in self.fakes.items():
            stamps = self.stamps[provider]
            stamps.extend([self.clock.now()] * (len(fake.ledger) - len(stamps)))

    @invariant()
    def money_rules_hold(self) -> None:
        self.stamp_new_effects()
        with transaction(self.engine) as session:
            rows = {r.id: r for r in session.scalars(select(Authorization))}
            trail: dict[int, str] = {}
            for auth_id, state_to in session.execute(
                select(AuditRow.authorization_id, AuditRow.state_to)
                .where(AuditRow.state_to.is_not(None))
                .order_by(AuditRow.id)
            ):
                trail[auth_id] = state_to
        for auth_id, known in self.known.items():
            fake = self.fakes[known.provider]
            effects = [
                (op, amount, at)
                for (op, order_id, amount), at in zip(fake.ledger, self.stamps[known.provider],
                                                      strict=True)
                if order_id == known.order_id
            ]
            ops = [op for op, _, _ in effects]
            captured = sum(amount for op, amount, _ in effects if op == "capture")
            what = f"authorization {auth_id} ({known.provider} {known.order_id}): {effects}"

            assert captured <= known.amount, f"over-captured {what}"
            assert ops.count("cancel") <= 1, f"cancelled twice {what}"
            if "cancel" in ops:
                assert "capture" not in ops[ops.index("cancel"):], f"capture after cancel {what}"
            if not fake.rules.multiple_captures:
                assert ops.count("capture") <= 1, f"second capture on single-capture {what}"
                if "cancel" in ops and "capture" in ops:
                    assert captured < known.amount, f"capture and cancel of everything {what}"

            guard = self._true_deadline(known) - self.config.policy_for(
                known.provider).safety_margin
            late = [e for e in effects if e[2] >= guard]
            assert not late, f"effect at or after the deadline guard {guard.isoformat()}: {what}"

            row = rows[auth_id]
            if State(row.state).is_final:
                assert row.captured_amount == captured, (
                    f"stored captured_amount {row.captured_amount} ({row.state}) but the "
                    f"provider holds {captured}: {what}")
            assert trail.get(auth_id) == row.state, (
                f"audit trail of {auth_id} ends in {trail.get(auth_id)} but the row is "
                f"{row.state}")
        audit.verify(self.engine)

    def _true_deadline(self, known: Registered) -> dt.datetime:
        window = self.config.providers[known.provider].window
        deadline = known.authorized_at + window
        if known.provider_expires_at is not None:
            deadline = min(deadline, known.provider_expires_at)
        return deadline


WatchdogMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWatchdogStateMachine = WatchdogMachine.TestCase
