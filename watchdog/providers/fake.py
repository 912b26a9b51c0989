"""An in-memory provider behind the same Protocol: a test double for the scan loop.

It follows the strictest rules of the four (single capture unless told otherwise)
and records every effect in ``ledger`` so tests can count them. It passes the same
behavioural contract as the real adapters (tests/providers/test_contract.py), so what
the scan tests learn from it holds against the providers: wrong credentials are refused
(``credentials_ok``), an order lapses at its ``expires_at`` on the clock it is given
(``now``), and a money call can apply and lose its answer (``apply_then_lose``).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from watchdog.domain import ProviderName
from watchdog.providers import registry
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderResult,
    ProviderRules,
    ProviderSnapshot,
    ProviderState,
)


@dataclass
class FakeOrder:
    """The fake provider's record of one authorization."""

    amount: int
    captured: int = 0
    canceled: bool = False
    expires_at: dt.datetime | None = None
    keys: dict[str, ProviderResult] = field(default_factory=dict)


class FakeProvider:
    """A provider that lives in a dict; faults are queued outcomes for the next calls.

    ``now`` is the provider's own clock: with one, an order lapses (as at a real provider)
    once ``now() >= expires_at``, and a capture or cancel of it is then refused. Without one
    (the default) orders never lapse: ``expires_at`` is only reported, which is what the
    scan tests want, since they give expiries on their own frozen clock, not the fake's.
    ``credentials_ok=False`` (or setting the attribute later) makes every call refused as
    the adapters refuse wrong credentials: REJECTED, nothing moved.
    """

    def __init__(
        self,
        name: ProviderName,
        rules: ProviderRules | None = None,
        *,
        now: Callable[[], dt.datetime] | None = None,
        credentials_ok: bool = True,
    ) -> None:
        self._name = name
        self._rules = rules or registry.rules(name)
        self._now = now
        self.orders: dict[str, FakeOrder] = {}
        self.ledger: list[tuple[str, str, int]] = []
        self.faults: deque[Outcome] = deque()
        self.apply_then_lose: int = 0  # next N money calls apply the effect, answer UNKNOWN
        self.credentials_ok = credentials_ok  # False: every call is refused as unauthorized

    @property
    def name(self) -> ProviderName:
        """The provider this fake stands in for."""
        return self._name

    @property
    def rules(self) -> ProviderRules:
        """Its capture rules."""
        return self._rules

    def add(self, order_id: str, amount: int, expires_at: dt.datetime | None = None) -> None:
        """Create an open authorization at the fake provider."""
        self.orders[order_id] = FakeOrder(amount=amount, expires_at=expires_at)

    def _result(
        self, outcome: Outcome, op: str, message: str = "", snapshot: ProviderSnapshot | None = None
    ) -> ProviderResult:
        return ProviderResult(outcome, op, self._name, message=message, snapshot=snapshot)

    def _refused(self, op: str) -> ProviderResult | None:
        """The answer to a call made with wrong credentials, or None when they are right."""
        if self.credentials_ok:
            return None
        return self._result(
            Outcome.REJECTED, op, f"bad credentials; check the {self._name} credentials"
        )

    def _lapsed(self, order: FakeOrder) -> bool:
        """Whether the provider's own deadline has passed on an order not canceled before it."""
        if self._now is None or order.expires_at is None or order.canceled:
            return False
        return self._now() >= order.expires_at

    def _snapshot(self, order: FakeOrder) -> ProviderSnapshot:
        lapsed = self._lapsed(order)
        if order.canceled:
            state = ProviderState.CAPTURED if order.captured else ProviderState.CANCELED
        elif order.captured == 0:
            state = ProviderState.EXPIRED if lapsed else ProviderState.AUTHORIZED
        elif order.captured >= order.amount or not self._rules.multiple_captures or lapsed:
            state = ProviderState.CAPTURED  # a lapse releases what a partial capture left
        else:
            state = ProviderState.PARTIALLY_CAPTURED
        open_amount = (
            0
            if state in (ProviderState.CAPTURED, ProviderState.CANCELED, ProviderState.EXPIRED)
            else (order.amount - order.captured)
        )
        return ProviderSnapshot(state, state.value, order.captured, open_amount, order.expires_at)

    async def status(self, ref: AuthRef) -> ProviderResult:
        """The order's current state."""
        if refused := self._refused("status"):
            return refused
        if self.faults:
            return self._result(self.faults.popleft(), "status", "injected fault")
        order = self.orders.get(ref.order_id)
        if order is None:
            return self._result(Outcome.REJECTED, "status", "order not found")
        return self._result(Outcome.SUCCEEDED, "status", snapshot=self._snapshot(order))

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """Capture, deduplicated by key; single capture unless the rules allow more."""
        if refused := self._refused("capture"):
            return refused
        order = self.orders.get(ref.order_id)
        if order is None:
            return self._result(Outcome.REJECTED, "capture", "order not found")
        if idempotency_key in order.keys:
            return order.keys[idempotency_key]
        if self.faults:
            return self._result(self.faults.popleft(), "capture", "injected fault")
        if self._lapsed(order):
            return self._result(Outcome.REJECTED, "capture", "the authorization has expired")
        open_amount = self._snapshot(order).open_amount or 0
        if order.canceled or amount > open_amount or amount <= 0:
            return self._result(Outcome.REJECTED, "capture", f"cannot capture {amount}")
        order.captured += amount
        self.ledger.append(("capture", ref.order_id, amount))
        result = self._result(Outcome.SUCCEEDED, "capture", snapshot=self._snapshot(order))
        order.keys[idempotency_key] = result
        if self.apply_then_lose:
            self.apply_then_lose -= 1
            return self._result(Outcome.UNKNOWN, "capture", "connection dropped")
        return result

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """Release whatever is open; refused once the order has lapsed (nothing is open)."""
        if refused := self._refused("cancel"):
            return refused
        order = self.orders.get(ref.order_id)
        if order is None:
            return self._result(Outcome.REJECTED, "cancel", "order not found")
        if idempotency_key in order.keys:
            return order.keys[idempotency_key]
        if self.faults:
            return self._result(self.faults.popleft(), "cancel", "injected fault")
        if order.canceled:
            return self._result(Outcome.ALREADY_DONE, "cancel", snapshot=self._snapshot(order))
        if self._lapsed(order):
            return self._result(Outcome.REJECTED, "cancel", "the authorization has expired")
        order.canceled = True
        self.ledger.append(("cancel", ref.order_id, order.amount - order.captured))
        result = self._result(Outcome.SUCCEEDED, "cancel", snapshot=self._snapshot(order))
        order.keys[idempotency_key] = result
        if self.apply_then_lose:
            self.apply_then_lose -= 1
            return self._result(Outcome.UNKNOWN, "cancel", "connection dropped")
        return result

    async def check(self) -> ProviderResult:
        """Reachable always; SUCCEEDED with the right credentials, REJECTED with wrong ones."""
        if refused := self._refused("check"):
            return refused
        return self._result(Outcome.SUCCEEDED, "check")
