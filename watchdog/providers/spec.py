"""``ProviderSpec``: everything the watchdog knows about one provider, declared in one place.

Each ``watchdog/providers/<name>.py`` ends with ``SPEC = ProviderSpec(...)``; the registry
(``registry.py``) collects them, and configuration, secrets, ``explain``, the CLI, the
audit's evidence filter, registration and the scan read a provider's facts from there,
never from a table of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchdog.domain import ProviderName
from watchdog.providers.base import ProviderAdapter, ProviderRules, ProviderState

if TYPE_CHECKING:
    import httpx

    from watchdog.config import ProviderSettings

AdapterFactory = Callable[["ProviderSettings", "httpx.AsyncClient"], ProviderAdapter]


def any_order_id(order_id: str) -> str | None:
    """The default order-id check: every id the registration pattern allows is fine."""
    return None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider, whole: its rules, defaults, secrets, words, truth table and adapter."""

    name: ProviderName
    #: Where the provider is listed among the others (``config show``, the API's enum).
    rank: int
    #: Capture rules with the default window (``providers.<name>.window`` replaces it).
    rules: ProviderRules
    #: ``providers.<name>.base_url`` when the file does not set one (None: handed out
    #: with the credentials, so the operator must set it).
    default_base_url: str | None
    connect_timeout: float
    read_timeout: float
    #: Environment variables (and systemd credential file names) of its secrets.
    secret_variables: tuple[str, ...]
    #: One line for ``explain``: what its rules mean in practice.
    explain: str
    #: Every documented status word and the normalised state it maps to (its truth).
    states: Mapping[str, ProviderState]
    #: Keys of its answers the audit keeps (besides the ones every adapter records).
    evidence_keys: frozenset[str]
    #: How it says "no such order" to a status read (provider codes).
    not_found_codes: frozenset[str]
    #: Builds its bare adapter from settings and the injected client.
    adapter: AdapterFactory
    #: Why an order id cannot be one of its ids (None: it can), checked at registration.
    order_id_problem: Callable[[str], str | None] = any_order_id

    def __post_init__(self) -> None:
        """The rules must be this provider's."""
        if self.rules.name != self.name:
            raise ValueError(f"ProviderSpec {self.name}: rules are named {self.rules.name}")
