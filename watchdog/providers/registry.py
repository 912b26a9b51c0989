"""Build adapters from configuration: one per enabled provider, each behind its limits."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from watchdog.config import Config, ProviderSettings
from watchdog.domain import ProviderName
from watchdog.providers.base import ProviderAdapter
from watchdog.providers.clearpay import ClearpayAdapter
from watchdog.providers.flitt import FlittAdapter
from watchdog.providers.jpmmps import JpmmpsAdapter
from watchdog.providers.limits import LimitedAdapter
from watchdog.providers.smartpay import SmartpayAdapter

ADAPTERS: dict[ProviderName, Callable[[ProviderSettings, httpx.AsyncClient], ProviderAdapter]] = {
    ProviderName.SMARTPAY: SmartpayAdapter,
    ProviderName.JPMMPS: JpmmpsAdapter,
    ProviderName.FLITT: FlittAdapter,
    ProviderName.CLEARPAY: ClearpayAdapter,
}


def build_adapter(settings: ProviderSettings, client: httpx.AsyncClient) -> ProviderAdapter:
    """The bare adapter for ``settings.name`` (ConfigError if its base URL or keys are missing)."""
    return ADAPTERS[settings.name](settings, client)


def build_adapters(
    config: Config, client: httpx.AsyncClient
) -> dict[ProviderName, ProviderAdapter]:
    """Every enabled provider with a base URL, wrapped in its concurrency and rate limits."""
    adapters: dict[ProviderName, ProviderAdapter] = {}
    for name, settings in config.providers.items():
        if not settings.enabled or not settings.base_url:
            continue
        adapters[name] = LimitedAdapter(
            build_adapter(settings, client), settings.max_concurrency, settings.rate_limit
        )
    return adapters
