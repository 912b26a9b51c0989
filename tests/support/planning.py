"""Builders shared by the pure unit tests: one authorization snapshot, one policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from watchdog.config import PolicySettings
from watchdog.domain import AuthorizationSnapshot, ProviderName, State
from watchdog.providers import registry
from watchdog.providers.base import ProviderRules

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
POLICY = PolicySettings()  # 48h / 24h / 6h leads, 15m safety margin, capture at the deadline


def snapshot(**overrides: Any) -> AuthorizationSnapshot:
    """An open Smartpay authorization of 10 000 JPY made at T0, with ``overrides``."""
    base = AuthorizationSnapshot(
        id=1, provider=ProviderName.SMARTPAY, order_id="order-1", amount=10_000,
        currency="JPY", authorized_at=T0, state=State.AUTHORIZED,
    )
    return replace(base, **overrides)


def rules(provider: ProviderName = ProviderName.SMARTPAY, **overrides: Any) -> ProviderRules:
    """The provider's default rules, with ``overrides``."""
    return replace(registry.rules(provider), **overrides)
