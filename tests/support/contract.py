"""Contract subjects: what the provider contract (tests/providers/test_contract.py) runs on.

The contract is one set of tests; a subject is one thing that must pass it. Each real adapter
is a subject over real HTTP against the in-repo sandbox, and ``FakeProvider`` is a subject for
each provider's rules, so the scan tests that use the fake rely on behaviour the adapters have
too. A subject does, for its provider, what a scenario needs done outside the adapter: create
an order, move the provider's clock past the order's expiry, revoke the credentials, make the
next capture's answer get lost after it applied, and list the effects an order has had. The
sandbox does these through its control API; the fake through its own attributes and an
injected clock (never the wall clock, never a sleep).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from tests.support.providers import CLASSES, NOW, run, settings_for
from watchdog.clock import FrozenClock
from watchdog.domain import ProviderName
from watchdog.providers import registry
from watchdog.providers.base import AuthRef, ProviderAdapter, ProviderRules
from watchdog.providers.fake import FakeProvider
from watchdog.providers.http import make_http_client
from watchdog.sandbox import credentials, dialect
from watchdog.sandbox.server import SandboxServer

T = TypeVar("T")

#: One second past a deadline is past it: the provider lapses orders at ``now >= expires_at``.
PAST = dt.timedelta(seconds=1)

_ids = itertools.count(1)


def currency(provider: ProviderName) -> str:
    """The currency the sandbox gives this provider's orders (a fake order uses the same)."""
    return dialect.dialect(provider.value).default_currency


class ContractSubject(Protocol):
    """One thing the provider contract runs on: a provider's adapter, or the fake in its place."""

    @property
    def provider(self) -> ProviderName:
        """The provider whose behaviour is under test."""
        ...

    @property
    def rules(self) -> ProviderRules:
        """The capture rules the adapter under test declares."""
        ...

    @property
    def confirms_captures_later(self) -> bool:
        """True if a capture is answered PENDING and confirmed by a later status (JPMMPS's
        API does this; the fake answers every capture at once, as the scan tests expect)."""
        ...

    def order(self, amount: int = 10_000) -> AuthRef:
        """Create an open authorization of ``amount`` minor units at the provider."""
        ...

    def expire(self, ref: AuthRef, by: dt.timedelta = PAST) -> None:
        """Move the provider's clock to ``by`` after ``ref``'s expiry (by default just past
        it, so the provider lapses the order; a negative ``by`` stops short of it)."""
        ...

    def revoke_credentials(self) -> tuple[str, ...]:
        """Make the adapter's credentials wrong from now on; return the secret values it
        now holds, which no answer may repeat (none for the fake, which holds no secret)."""
        ...

    def drop_next_capture_answer(self) -> None:
        """Make the next capture apply at the provider and its answer be lost."""
        ...

    def effects(self, ref: AuthRef) -> list[object]:
        """The effects (captures, cancels) the provider has recorded for ``ref``'s order."""
        ...

    def adapter(self) -> contextlib.AbstractAsyncContextManager[ProviderAdapter]:
        """The adapter under test, for the length of one ``async with``."""
        ...


class SandboxSubject:
    """A real adapter over real HTTP (the production aiohttp client) against the sandbox."""

    def __init__(self, server: SandboxServer, provider: ProviderName) -> None:
        self.server = server
        self._provider = provider
        self._secrets: Mapping[str, str] = credentials.SANDBOX_ENV

    def __repr__(self) -> str:
        return f"SandboxSubject({self._provider})"

    @property
    def provider(self) -> ProviderName:
        """The provider whose adapter is under test."""
        return self._provider

    @property
    def rules(self) -> ProviderRules:
        """The adapter's rules, as its spec declares them."""
        return registry.rules(self._provider)

    @property
    def confirms_captures_later(self) -> bool:
        """JPMMPS confirms captures asynchronously: its capture answer is PENDING."""
        return self._provider is ProviderName.JPMMPS

    def order(self, amount: int = 10_000) -> AuthRef:
        """Create the order through the control API, authorized at the sandbox's now."""
        order_id = f"{next(_ids)}{self._provider.value[:2]}"
        if dialect.dialect(self._provider.value).order_id_problem(order_id):
            order_id = str(400000 + next(_ids))  # a provider with numeric ids
        self.server.create_order(provider=self._provider.value, order_id=order_id,
                                 amount=amount, currency=currency(self._provider),
                                 authorized_at=self.server.now())
        return AuthRef(authorization_id=1, order_id=order_id, amount=amount,
                       currency=currency(self._provider))

    def expire(self, ref: AuthRef, by: dt.timedelta = PAST) -> None:
        """Set the sandbox clock to ``by`` after the order's ``expires_at``, as the sandbox
        has it (the clock flows on from there)."""
        order = self.server.order(self._provider.value, ref.order_id)
        assert order is not None, f"no sandbox order {ref.order_id}"
        expires_at = dt.datetime.fromisoformat(order["expires_at"])
        self.server.set_now(expires_at + by)

    def revoke_credentials(self) -> tuple[str, ...]:
        """Configure later adapters with every sandbox credential altered."""
        self._secrets = {k: v + "-wrong" for k, v in credentials.SANDBOX_ENV.items()}
        return tuple(self._secrets.values())

    def drop_next_capture_answer(self) -> None:
        """A sandbox fault: the next capture applies, then the connection drops."""
        self.server.add_fault(provider=self._provider.value, operation="capture",
                              kind="drop_after_apply", count=1)

    def effects(self, ref: AuthRef) -> list[object]:
        """The sandbox ledger's entries for the order."""
        return [e for e in self.server.ledger() if str(e.get("order_id")) == ref.order_id]

    @contextlib.asynccontextmanager
    async def adapter(self) -> AsyncIterator[ProviderAdapter]:
        """The provider's adapter on a fresh production HTTP client, at the sandbox's URL."""
        async with make_http_client() as client:
            settings = settings_for(self._provider,
                                    base_url=self.server.base_urls()[self._provider.value],
                                    secrets=dict(self._secrets))
            yield CLASSES[self._provider](settings, client)


class FakeSubject:
    """``FakeProvider`` with one provider's rules, on a frozen clock of its own."""

    def __init__(self, provider: ProviderName) -> None:
        self.clock = FrozenClock(NOW)
        self.fake = FakeProvider(provider, now=self.clock.now)

    def __repr__(self) -> str:
        return f"FakeSubject({self.fake.name})"

    @property
    def provider(self) -> ProviderName:
        """The provider whose rules the fake follows."""
        return self.fake.name

    @property
    def rules(self) -> ProviderRules:
        """The fake's rules (the provider's, from the registry)."""
        return self.fake.rules

    @property
    def confirms_captures_later(self) -> bool:
        """Never: the fake answers each capture with its final outcome."""
        return False

    def order(self, amount: int = 10_000) -> AuthRef:
        """Add the order, expiring one rules window after the fake's now."""
        order_id = f"fake-{next(_ids)}"
        self.fake.add(order_id, amount, expires_at=self.clock.now() + self.fake.rules.window)
        return AuthRef(authorization_id=1, order_id=order_id, amount=amount,
                       currency=currency(self.provider))

    def expire(self, ref: AuthRef, by: dt.timedelta = PAST) -> None:
        """Set the fake's clock to ``by`` after the order's ``expires_at``."""
        expires_at = self.fake.orders[ref.order_id].expires_at
        assert expires_at is not None, f"fake order {ref.order_id} has no expiry"
        self.clock.set(expires_at + by)

    def revoke_credentials(self) -> tuple[str, ...]:
        """``credentials_ok = False``; the fake holds no secret that could leak."""
        self.fake.credentials_ok = False
        return ()

    def drop_next_capture_answer(self) -> None:
        """``apply_then_lose``: the next money call applies and answers UNKNOWN."""
        self.fake.apply_then_lose = 1

    def effects(self, ref: AuthRef) -> list[object]:
        """The fake ledger's entries for the order."""
        return [e for e in self.fake.ledger if e[1] == ref.order_id]

    @contextlib.asynccontextmanager
    async def adapter(self) -> AsyncIterator[ProviderAdapter]:
        """The same fake every time: its orders and ledger outlive one scenario."""
        yield self.fake


def calls(subject: ContractSubject, script: Callable[[ProviderAdapter], Awaitable[T]]) -> T:
    """Run ``script`` on the subject's adapter to completion (tests stay synchronous)."""

    async def scenario() -> T:
        async with subject.adapter() as adapter:
            return await script(adapter)

    return run(scenario())
