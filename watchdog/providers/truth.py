"""Each provider's truth: every status word it documents, what it means for us, and what
the watchdog does when a status read shows it on an open authorization.

The tables live in each provider's ``SPEC.states`` and are the adapters' own status maps
(the adapters read them to normalise a status), so there is no second copy to drift;
``explain`` shows the row of a row's last provider status, and
``tests/providers/test_truth.py`` walks every row of every table through the reconciliation
and checks that the in-repo sandbox speaks no word outside it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from watchdog.domain import ProviderName
from watchdog.providers.base import ProviderState
from watchdog.providers.registry import RegistryView


class Meaning(enum.StrEnum):
    """What a provider status means for money."""

    NOT_AUTHORIZED = "not authorized"  # pending or declined: nothing to capture (pages)
    OPEN = "open"  # capturable
    PENDING = "pending"  # an effect accepted, not final: polled
    CAPTURED = "captured"  # captured (how much: the amounts in the answer)
    RELEASED = "released"  # hold released: ours if we cancelled, else money lost (pages)
    UNKNOWN = "unknown"  # never guessed at (pages)


MEANINGS: Mapping[ProviderState, Meaning] = {
    ProviderState.PENDING: Meaning.NOT_AUTHORIZED,
    ProviderState.DECLINED: Meaning.NOT_AUTHORIZED,
    ProviderState.AUTHORIZED: Meaning.OPEN,
    ProviderState.PARTIALLY_CAPTURED: Meaning.OPEN,
    ProviderState.CAPTURE_PENDING: Meaning.PENDING,
    ProviderState.CAPTURED: Meaning.CAPTURED,
    ProviderState.CANCELED: Meaning.RELEASED,
    ProviderState.EXPIRED: Meaning.RELEASED,
    ProviderState.UNRECOGNISED: Meaning.UNKNOWN,
}

TABLES: Mapping[ProviderName, Mapping[str, ProviderState]] = RegistryView(lambda s: s.states)
"""Every documented status word per provider and the normalised state it maps to: each
provider's ``SPEC.states`` (Flitt's ``approved`` is read with its ``capture_status``; JPMMPS
names containing ``EXPIRED``)."""


def meaning_of(provider: ProviderName, raw_state: str | None) -> str:
    """One line for ``explain``: what ``raw_state`` means for money at ``provider``."""
    if not raw_state:
        return "not read from the provider yet"
    table = TABLES[provider]
    state = table.get(raw_state) or table.get(raw_state.upper()) or table.get(raw_state.lower())
    if state is None:
        return f"{raw_state!r} is not in {provider}'s table: never guessed at"
    return f"{raw_state} = {MEANINGS[state]} ({state})"
