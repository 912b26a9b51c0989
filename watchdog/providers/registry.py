"""The one registry of providers: every ``watchdog.providers.<name>`` module that declares
``SPEC``, found by walking the package (as APScheduler 3.x finds its job stores by entry
point). Everything that needs "each provider" iterates ``specs()``; nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from watchdog.domain import ProviderName
from watchdog.errors import ConfigError
from watchdog.providers.accounted import AccountRouter
from watchdog.providers.base import ProviderAdapter, ProviderRules
from watchdog.providers.limits import LimitedAdapter
from watchdog.providers.spec import ProviderSpec

if TYPE_CHECKING:
    import httpx

    from watchdog.config import Config, ProviderSettings

T = TypeVar("T")

_SPECS: dict[str, ProviderSpec] = {}
_NAMES: dict[str, ProviderName] = {}
_state = {"loaded": False, "loading": False}


def _load() -> None:
    """Import every module of ``watchdog.providers`` once and keep each ``SPEC`` found."""
    if _state["loaded"] or _state["loading"]:
        return
    _state["loading"] = True
    try:
        import watchdog.providers as package

        found = []
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            spec = getattr(module, "SPEC", None)
            if isinstance(spec, ProviderSpec):
                found.append(spec)
        for spec in sorted(found, key=lambda s: (s.rank, s.name.value)):
            _add(spec)
        _state["loaded"] = True
    finally:
        _state["loading"] = False


def _add(spec: ProviderSpec) -> None:
    if spec.name.value in _SPECS:
        raise ValueError(f"provider {spec.name} is registered twice")
    _SPECS[spec.name.value] = spec
    _NAMES[spec.name.value] = spec.name


def registered_names() -> Mapping[str, ProviderName]:
    """Every registered name by its string, in listing order (what ``ProviderName`` checks)."""
    _load()
    return _NAMES


def specs() -> tuple[ProviderSpec, ...]:
    """Every registered provider's spec, in listing order."""
    _load()
    return tuple(_SPECS.values())


def spec(name: str) -> ProviderSpec:
    """The spec of ``name``; ValueError naming the known ones when it is not registered."""
    _load()
    found = _SPECS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"{name!r} is not a registered provider "
                         f"(known: {', '.join(_SPECS)})")
    return found


@contextmanager
def registered(extra: ProviderSpec) -> Iterator[ProviderSpec]:
    """Register ``extra`` for the duration of a ``with`` block (a provider defined by a test)."""
    _load()
    _add(extra)
    try:
        yield extra
    finally:
        _SPECS.pop(extra.name.value, None)
        _NAMES.pop(extra.name.value, None)


class RegistryView(Mapping[ProviderName, T]):
    """A read-only ``{name: fact}`` mapping computed from the specs on every access."""

    def __init__(self, fact: Callable[[ProviderSpec], T]) -> None:
        self._fact = fact

    def __getitem__(self, name: ProviderName) -> T:
        try:
            return self._fact(spec(name))
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[ProviderName]:
        return iter([s.name for s in specs()])

    def __len__(self) -> int:
        return len(specs())


def rules(name: ProviderName, settings: ProviderSettings | None = None) -> ProviderRules:
    """The provider's capture rules, with the configured window when ``settings`` are given.

    The one place rules are made: the planner (``watchdog.planner.Planner.rules``) and the
    adapters read the same value.
    """
    base = spec(name).rules
    return base if settings is None else replace(base, window=settings.window)


def build_adapter(settings: ProviderSettings, client: httpx.AsyncClient) -> ProviderAdapter:
    """The bare adapter for ``settings.name`` (ConfigError if its base URL or keys are missing)."""
    return spec(settings.name).adapter(settings, client)


def configured_adapters(
    config: Config, client: httpx.AsyncClient
) -> tuple[dict[ProviderName, ProviderAdapter], dict[ProviderName, str]]:
    """An adapter for every usable provider, behind its concurrency and rate limits, and
    why each other one is unusable (disabled, no base URL, a missing credential)."""
    adapters: dict[ProviderName, ProviderAdapter] = {}
    problems: dict[ProviderName, str] = {}
    for name, settings in config.providers.items():
        if name in config.accounts:
            _configured_accounts(config, name, client, adapters, problems)
            continue
        adapter, why = account_adapter(settings, client)
        if adapter is None:
            problems[name] = why
            continue
        adapters[name] = adapter
    return adapters, problems


def account_adapter(
    settings: ProviderSettings, client: httpx.AsyncClient
) -> tuple[ProviderAdapter | None, str]:
    """One account's adapter behind its own limits, or why it is unusable."""
    if not settings.enabled:
        return None, "disabled in the configuration"
    if not settings.base_url:
        return None, f"{settings.where}.base_url is not set"
    try:
        adapter = build_adapter(settings, client)
    except ConfigError as exc:
        return None, str(exc)
    return LimitedAdapter(adapter, settings.max_concurrency, settings.rate_limit), ""


def _configured_accounts(
    config: Config, name: ProviderName, client: httpx.AsyncClient,
    adapters: dict[ProviderName, ProviderAdapter], problems: dict[ProviderName, str],
) -> None:
    """A provider with ``accounts``: one router over each usable account's own adapter (its
    credentials, base URL and limits); unusable when none is."""
    usable: dict[str, ProviderAdapter] = {}
    unusable: dict[str, str] = {}
    for account, settings in config.accounts[name].items():
        adapter, why = account_adapter(settings, client)
        if adapter is None:
            unusable[account] = why
        else:
            usable[account] = adapter
    if not usable:
        problems[name] = "; ".join(f"account {a}: {why}" for a, why in unusable.items())
        return
    adapters[name] = AccountRouter(name, spec(name).rules, usable, unusable)
