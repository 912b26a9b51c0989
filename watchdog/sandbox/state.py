"""Everything the sandbox remembers: its clock, orders, the effects ledger, the request log.

All of it lives in memory and is only touched from the server's event loop, so
handlers are plain synchronous functions that run to completion between awaits:
no locks, O(1) dict lookups, no disk I/O.

The sandbox clock is the real UTC clock plus an offset that tests move
(``set_now`` / ``advance``); it can also be frozen at one instant.  Orders lapse
lazily: any read or write of an order first checks ``now >= expires_at``.  A
lapse is the provider's own doing, so it is *not* an entry in the effects
ledger (the ledger lists only effects a client request caused).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from watchdog.sandbox.accounts import current as current_account
from watchdog.sandbox.dialect import DialectView

UTC = dt.UTC

OPERATIONS: Final = ("capture", "cancel", "status")

#: Authorization window per provider when the order is created without ``expires_at``
#: (each dialect's ``default_window``).
DEFAULT_WINDOWS: Final[Mapping[str, dt.timedelta]] = DialectView(lambda d: d.default_window)

#: Currency an auto-created order gets when the request does not name one.
DEFAULT_CURRENCIES: Final[Mapping[str, str]] = DialectView(lambda d: d.default_currency)

#: How many request-log rows are kept (oldest dropped first) so long benchmarks stay bounded.
REQUEST_LOG_LIMIT: Final = 200_000

OrderState = Literal["authorized", "pending", "declined"]
ORDER_STATES: Final = ("authorized", "pending", "declined")


def iso(instant: dt.datetime) -> str:
    """Render an aware instant as ISO 8601 UTC with milliseconds and a ``Z``."""
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(instant: dt.datetime) -> int:
    """Milliseconds since the epoch (Smartpay's timestamp format)."""
    return int(instant.timestamp() * 1000)


class SandboxClock:
    """Real UTC time shifted by an offset; optionally frozen."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._frozen: dt.datetime | None = None

    def now(self) -> dt.datetime:
        """The sandbox's current instant (aware UTC)."""
        if self._frozen is not None:
            return self._frozen
        return dt.datetime.now(UTC) + self._offset

    def set(self, instant: dt.datetime, *, freeze: bool = False) -> None:
        """Jump to ``instant`` (aware); keep flowing from there unless ``freeze``."""
        if instant.tzinfo is None:
            raise ValueError("instant must be time-zone aware")
        instant = instant.astimezone(UTC)
        if freeze:
            self._frozen = instant
        else:
            self._frozen = None
            self._offset = instant - dt.datetime.now(UTC)

    def advance(self, delta: dt.timedelta) -> None:
        """Move forward (or back, if negative) by ``delta``."""
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta

    @property
    def frozen(self) -> bool:
        """Whether the clock stands still."""
        return self._frozen is not None

    def reset(self) -> None:
        """Back to the real clock."""
        self._offset = dt.timedelta(0)
        self._frozen = None


@dataclass(slots=True)
class PendingEffect:
    """A capture or cancel the provider accepted and finishes later (JPMMPS
    ``CAPTURE_PENDING``, Flitt ``hold`` / reversal ``processing``).

    ``applied`` effects are on the order already and are taken back when they fail;
    the others are applied only when they succeed. ``record`` is the provider's own
    history entry whose ``status`` follows the outcome (JPMMPS modifications)."""

    operation: str  # capture | cancel
    amount: int
    settles_at: dt.datetime
    fails: bool
    applied: bool
    released: int = 0  # uncaptured money an applied capture released with it
    key: str | None = None
    record: dict[str, Any] | None = None


@dataclass(slots=True)
class Order:
    """One authorization held at a provider; amounts in integer minor units."""

    provider: str
    order_id: str
    amount: int
    currency: str
    authorized_at: dt.datetime
    expires_at: dt.datetime
    state: OrderState
    created_at: dt.datetime
    updated_at: dt.datetime
    account: str = "default"  # the merchant account that holds it (sandbox.accounts)
    captured: int = 0
    released: int = 0  # uncaptured money given back (cancel, void, reverse, remainder, lapse)
    refunded: int = 0  # captured money given back (Flitt reverse after capture)
    closed: bool = False  # no further capture is possible
    canceled: bool = False  # closed by an explicit cancel / void / reverse
    lapsed_at: dt.datetime | None = None
    capture_count: int = 0
    reference: str | None = None  # merchant reference (Clearpay)
    settles_at: dt.datetime | None = None  # JPMMPS: when CAPTURE_PENDING turns CAPTURED
    #: Per order: seconds a capture / cancel stays pending (None: the provider's default,
    #: which is synchronous except for JPMMPS captures), and whether it then fails.
    settle_seconds: float | None = None
    settle_fails: bool = False
    pending: PendingEffect | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # provider-specific records

    @property
    def open_amount(self) -> int:
        """What can still be captured."""
        if self.closed or self.state != "authorized":
            return 0
        return self.amount - self.captured - self.released

    @property
    def lapsed(self) -> bool:
        """Whether the authorization ran out before it was settled."""
        return self.lapsed_at is not None


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A response kept for idempotent replay."""

    fingerprint: str
    status: int
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    at: dt.datetime


def order_key(provider: str, order_id: str, account: str = "default") -> tuple[str, str]:
    """Where an order is kept: by provider and order id, a named account's apart."""
    return (provider, order_id) if account == "default" else (f"{provider}@{account}", order_id)


class SandboxState:
    """The sandbox's whole memory; one instance per server."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        auto_create: bool = False,
        auto_create_amount: int = 10_000,
        capture_settle_seconds: Mapping[str, float] | None = None,
    ) -> None:
        """``capture_settle_seconds={"<provider>_capture_settle_seconds": N}`` (a dialect with
        a ``settle_help``) keeps that provider's captures pending for N sandbox seconds."""
        from watchdog.sandbox.dialect import settle_option_names
        from watchdog.sandbox.faults import FaultBook

        allowed = settle_option_names()
        capture_settle_seconds = capture_settle_seconds or {}
        unknown = sorted(set(capture_settle_seconds) - set(allowed))
        if unknown:
            raise TypeError(f"SandboxState got an unexpected keyword argument {unknown[0]!r}")
        self._capture_settle = {
            allowed[key]: dt.timedelta(seconds=value)
            for key, value in capture_settle_seconds.items()
        }

        self.latency = latency
        self.auto_create = auto_create
        self.auto_create_amount = auto_create_amount
        self.clock = SandboxClock()
        self.faults = FaultBook()
        self.orders: dict[tuple[str, str], Order] = {}
        self.ledger: list[dict[str, Any]] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self.answers: dict[tuple[str, str], StoredAnswer] = {}
        self.inflight: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)
        #: Bumped by ``reset``; a request that started before a reset applies nothing.
        self.generation = 0

    # -- orders ---------------------------------------------------------------------------

    def create_order(
        self,
        provider: str,
        order_id: str,
        amount: int,
        currency: str,
        *,
        authorized_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        state: OrderState = "authorized",
        account: str | None = None,
    ) -> Order:
        """Store a new authorization; raise KeyError if the id is taken at that provider
        account (``account``: the current request's)."""
        account = current_account() if account is None else account
        key = order_key(provider, order_id, account)
        if key in self.orders:
            raise KeyError(f"{provider} order {order_id!r} already exists")
        now = self.clock.now()
        auth = (authorized_at or now).astimezone(UTC)
        expires = (expires_at or auth + DEFAULT_WINDOWS[provider]).astimezone(UTC)
        order = Order(
            provider=provider, order_id=order_id, amount=amount, currency=currency,
            authorized_at=auth, expires_at=expires, state=state,
            created_at=auth, updated_at=auth, account=account,
        )
        self.orders[key] = order
        self.refresh(order)
        return order

    def find(self, provider: str, order_id: str, *, currency: str | None = None,
             amount: int | None = None, account: str | None = None) -> Order | None:
        """The order of the account (the current request's), lapsed if its time is up;
        auto-created when that option is on."""
        account = current_account() if account is None else account
        order = self.orders.get(order_key(provider, order_id, account))
        if order is None:
            if not self.auto_create:
                return None
            order = self.create_order(
                provider, order_id, amount or self.auto_create_amount,
                currency or DEFAULT_CURRENCIES[provider], account=account,
            )
        self.refresh(order)
        return order

    def pend(self, order: Order, operation: str, amount: int, *, applied: bool,
             default_seconds: float | None, released: int = 0, key: str | None = None,
             record: dict[str, Any] | None = None) -> PendingEffect | None:
        """Make ``operation`` pending on ``order`` when the order (or the provider's
        default) says so; None means it is synchronous."""
        seconds = order.settle_seconds if order.settle_seconds is not None else default_seconds
        if seconds is None:
            return None
        effect = PendingEffect(operation, amount, self.clock.now() + dt.timedelta(seconds=seconds),
                               order.settle_fails, applied, released, key, record)
        order.pending = effect
        return effect

    def _settle(self, order: Order, now: dt.datetime) -> None:
        """Finish a pending effect whose time has come: confirm it or take it back."""
        effect = order.pending
        if effect is None or now < effect.settles_at:
            return
        order.pending = None
        order.updated_at = effect.settles_at
        if effect.record is not None:
            effect.record["status"] = "FAILED" if effect.fails else "COMPLETED"
        if effect.fails:
            if effect.applied and effect.operation == "capture":
                order.captured -= effect.amount
                order.released -= effect.released
                order.capture_count -= 1
                order.closed = False
            elif effect.applied:
                order.released -= effect.amount
                order.closed = order.canceled = False
            self.record_effect(order, f"{effect.operation}_failed", effect.amount, effect.key)
            return
        if not effect.applied and effect.operation == "cancel":
            order.released += effect.amount
            order.closed = order.canceled = True
            self.record_effect(order, "cancel", effect.amount, effect.key)

    def refresh(self, order: Order) -> None:
        """Settle a pending effect that is due, then apply the lapse if the sandbox clock
        has reached the order's deadline."""
        if order.pending is not None:
            self._settle(order, self.clock.now())
        if order.lapsed_at is None and order.open_amount > 0:
            now = self.clock.now()
            if now >= order.expires_at:
                order.released += order.open_amount
                order.closed = True
                order.lapsed_at = order.expires_at
                order.updated_at = order.expires_at

    def capture_settle(self, provider: str) -> dt.timedelta:
        """How long ``provider``'s captures stay pending (zero unless configured)."""
        return self._capture_settle.get(provider, dt.timedelta(0))

    def next_id(self) -> int:
        """A process-unique counter for provider-side ids."""
        return next(self._ids)

    # -- ledger and request log ----------------------------------------------------------

    def record_effect(self, order: Order, operation: str, amount: int,
                      key: str | None) -> dict[str, Any]:
        """Append an applied effect to the ledger."""
        entry = {
            "seq": len(self.ledger) + 1,
            "provider": order.provider,
            "account": order.account,
            "order_id": order.order_id,
            "operation": operation,
            "amount": amount,
            "currency": order.currency,
            "idempotency_key": key,
            "at": iso(self.clock.now()),
        }
        self.ledger.append(entry)
        return entry

    def record_request(self, provider: str, operation: str, method: str, path: str,
                       status: int | None, fault: str | None) -> None:
        """Append one provider request to the request log (status None = connection dropped)."""
        self.requests.append({
            "provider": provider, "operation": operation, "method": method, "path": path,
            "status": status, "fault": fault, "at": iso(self.clock.now()),
            "account": current_account(),
        })

    # -- idempotent answers --------------------------------------------------------------

    def recall(self, scope: str, key: str, window: dt.timedelta | None) -> StoredAnswer | None:
        """The answer stored under ``key`` if it is still within ``window`` (None = forever)."""
        stored = self.answers.get((scope, key))
        if stored is None:
            return None
        if window is not None and self.clock.now() - stored.at >= window:
            del self.answers[(scope, key)]
            return None
        return stored

    def remember(self, scope: str, key: str, fingerprint: str, status: int, body: bytes,
                 content_type: str | None, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Store an answer for replay."""
        self.answers[(scope, key)] = StoredAnswer(
            fingerprint, status, body, content_type, headers, self.clock.now())

    def reset(self) -> None:
        """Forget everything (orders, ledger, log, faults, answers) and return to real time."""
        self.orders.clear()
        self.ledger.clear()
        self.requests.clear()
        self.answers.clear()
        self.inflight.clear()
        self.faults.clear()
        self.clock.reset()
        self.generation += 1
