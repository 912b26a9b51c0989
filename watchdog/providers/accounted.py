"""One provider, several merchant accounts: an adapter per account behind one router.

Each account is its own world at the provider (``watchdog.accounts``): its adapter is built
from its own settings (credentials, base URL, timeouts) and has its own concurrency and
rate-limit budget, so one account's limit never slows another. The router has the
``ProviderAdapter`` shape, so everything keyed by provider keeps working; what must reach
one account asks ``for_account``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from watchdog.accounts import DEFAULT_ACCOUNT
from watchdog.domain import ProviderName
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderAdapter,
    ProviderResult,
    ProviderRules,
)


class AccountRouter:
    """The adapters of a provider's usable accounts, and why each other account is not."""

    def __init__(
        self, name: ProviderName, rules: ProviderRules, adapters: Mapping[str, ProviderAdapter],
        problems: Mapping[str, str] | None = None,
    ) -> None:
        self._name = name
        self._rules = rules
        self.adapters = dict(adapters)
        self.problems = dict(problems or {})

    @property
    def name(self) -> ProviderName:
        """The provider."""
        return self._name

    @property
    def rules(self) -> ProviderRules:
        """The provider's rules (each account's own window is in its settings)."""
        return self._rules

    def for_account(self, account: str) -> ProviderAdapter | None:
        """The account's adapter; None when that account is not usable."""
        return self.adapters.get(account)

    def wrapped(self, wrap: Callable[[str, ProviderAdapter], ProviderAdapter]) -> AccountRouter:
        """The same router with every account's adapter wrapped (metering), by account."""
        return AccountRouter(self._name, self._rules,
                             {a: wrap(a, x) for a, x in self.adapters.items()}, self.problems)

    def _route(self, ref: AuthRef) -> ProviderAdapter:
        adapter = self.adapters.get(ref.account)
        if adapter is None:
            raise LookupError(f"{self._name} account {ref.account!r} is not usable: "
                              f"{self.problems.get(ref.account, 'not configured')}")
        return adapter

    async def status(self, ref: AuthRef) -> ProviderResult:
        """``status`` with the row's account."""
        return await self._route(ref).status(ref)

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """``capture`` with the row's account."""
        return await self._route(ref).capture(ref, amount, idempotency_key, final=final)

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """``cancel`` with the row's account."""
        return await self._route(ref).cancel(ref, idempotency_key)

    async def check(self) -> ProviderResult:
        """Every usable account's check; the first that failed, else the last."""
        results = [await a.check() for a in self.adapters.values()]
        failed = [r for r in results if r.outcome not in (Outcome.SUCCEEDED,
                                                          Outcome.ALREADY_DONE)]
        return (failed or results)[-1] if results else ProviderResult(
            Outcome.REJECTED, "check", self._name, message="no usable account")


def for_account(adapter: ProviderAdapter | None, account: str) -> ProviderAdapter | None:
    """The adapter that reaches ``account``: the router's, or a single-account provider's
    own adapter for ``default`` (None for any other account)."""
    if isinstance(adapter, AccountRouter):
        return adapter.for_account(account)
    if adapter is None or account != DEFAULT_ACCOUNT:
        return None
    return adapter


def accounts_of(adapter: ProviderAdapter) -> dict[str, ProviderAdapter]:
    """``{account: adapter}`` of a configured provider."""
    if isinstance(adapter, AccountRouter):
        return dict(adapter.adapters)
    return {DEFAULT_ACCOUNT: adapter}
