"""The watchdog's vocabulary: providers, states, actions. Pure data, no I/O."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class _ProviderNames(type):
    """Lets ``ProviderName`` read like the enum it was: ``ProviderName.CLEARPAY``, iteration,
    ``len`` and ``in``, all answered by the provider registry (``watchdog.providers.registry``)."""

    def __getattr__(cls, attr: str) -> ProviderName:
        if attr.isupper():
            found = _registered().get(attr.lower())
            if found is not None:
                return found
        raise AttributeError(f"type object 'ProviderName' has no attribute {attr!r}")

    def __iter__(cls) -> Iterator[ProviderName]:
        return iter(tuple(_registered().values()))

    def __len__(cls) -> int:
        return len(_registered())

    def __contains__(cls, value: object) -> bool:
        return isinstance(value, str) and value in _registered()

    def __getitem__(cls, key: int | str) -> ProviderName:
        """By position (an ordered collection, as Hypothesis samples it) or, as an enum, by
        attribute name (``ProviderName["CLEARPAY"]``)."""
        if isinstance(key, str):
            found = _registered().get(key.lower()) if key.isupper() else None
            if found is None:
                raise KeyError(key)
            return found
        return tuple(_registered().values())[key]


Sequence.register(_ProviderNames)  # ``ProviderName`` is an ordered collection of names


class ProviderName(str, metaclass=_ProviderNames):
    """The name of a provider the watchdog speaks to: a string the registry knows.

    Which names exist is the registry's business (one ``SPEC`` per provider module), so a
    new provider never edits this file. ``ProviderName("bogus")`` raises ValueError as the
    enum did; a name the registry knows is always the same object, so ``is`` compares.
    """

    __slots__ = ()

    def __new__(cls, value: object) -> ProviderName:
        """The registered name equal to ``value``; ValueError when there is none."""
        found = _registered().get(value) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"{value!r} is not a valid ProviderName")
        return found

    @classmethod
    def declare(cls, value: str) -> ProviderName:
        """The name a provider module gives itself (its ``SPEC`` makes it registered)."""
        return str.__new__(cls, value)

    @property
    def value(self) -> str:
        """The plain string, as the enum's ``.value`` was."""
        return str.__str__(self)

    @property
    def name(self) -> str:
        """The attribute spelling, ``CLEARPAY``."""
        return self.value.upper()

    def __repr__(self) -> str:
        return f"<ProviderName.{self.name}: {self.value!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProviderName, (self.value,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Validated (and shown in the OpenAPI document) as the enum of registered names."""
        from pydantic_core import core_schema

        choices = enum.StrEnum(  # type: ignore[misc]
            "ProviderName", {name.upper(): name for name in _registered()})
        return core_schema.no_info_after_validator_function(
            lambda member: ProviderName(member.value), handler.generate_schema(choices),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def _registered() -> Mapping[str, ProviderName]:
    """Every registered provider name, in the registry's order (loads it on first use)."""
    from watchdog.providers.registry import registered_names

    return registered_names()


class State(enum.StrEnum):
    """Where an authorization is in its life. The legal transitions between states, by
    event, are the table in ``watchdog.transitions``; every guarded write checks it."""

    AUTHORIZED = "authorized"
    CAPTURING = "capturing"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    CANCELING = "canceling"
    CANCELED = "canceled"
    # The provider accepted our capture / cancel but has not confirmed it yet (JPMMPS
    # CAPTURE_PENDING, Flitt ``hold`` / reversal ``processing``): polled, never final.
    CONFIRMING_CAPTURE = "confirming_capture"
    CONFIRMING_CANCEL = "confirming_cancel"
    EXPIRED = "expired"
    NEEDS_ATTENTION = "needs_attention"

    @property
    def is_final(self) -> bool:
        """True when nothing more will ever happen to the authorization."""
        return self in FINAL_STATES

    @property
    def is_in_flight(self) -> bool:
        """True while a capture or cancel request may be at the provider."""
        return self in (State.CAPTURING, State.CANCELING)

    @property
    def is_confirming(self) -> bool:
        """True while an accepted effect waits for the provider's confirmation."""
        return self in (State.CONFIRMING_CAPTURE, State.CONFIRMING_CANCEL)


FINAL_STATES = frozenset({State.CAPTURED, State.CANCELED, State.EXPIRED})
OPEN_STATES = frozenset({State.AUTHORIZED, State.PARTIALLY_CAPTURED})


class ActionStatus(enum.StrEnum):
    """Where a capture / cancel intent (an ``actions`` row) is."""

    PENDING = "pending"  # committed, the request may be on its way
    UNKNOWN = "unknown"  # sent, no usable answer: recovery asks the provider
    CONFIRMING = "confirming"  # accepted as pending: polled until confirmed or failed
    RETRYABLE = "retryable"  # nothing moved: the next intent reuses its key
    SUCCEEDED = "succeeded"
    ALREADY_DONE = "already_done"  # the effect was there already (confirmed by a status read)
    REJECTED = "rejected"  # refused: nothing moved, a human decides
    FAILED = "failed"  # accepted as pending, then failed at the provider: nothing moved
    ABANDONED = "abandoned"  # the deadline guard came first

    @property
    def is_open(self) -> bool:
        """True while the intent may still take effect without a new attempt (recovery
        looks for these)."""
        return self in (ActionStatus.PENDING, ActionStatus.UNKNOWN)


class OnDeadline(enum.StrEnum):
    """What to do when the deadline approaches and nobody said otherwise."""

    CAPTURE = "capture"
    CANCEL = "cancel"
    ALERT = "alert"


class ActionKind(enum.StrEnum):
    """An effect the watchdog can ask a provider for."""

    CAPTURE = "capture"
    CANCEL = "cancel"


class InstructionKind(enum.StrEnum):
    """What the merchant told us to do, overriding the default policy."""

    CAPTURE_NOW = "capture_now"
    CAPTURE_AT_DEADLINE = "capture_at_deadline"
    CANCEL_NOW = "cancel_now"


class DeadlineSource(enum.StrEnum):
    """Where the effective deadline came from (shown by ``explain`` and ``show``)."""

    PROVIDER_REPORTED = "provider_reported"
    EXPLICIT = "explicit"
    PROVIDER_WINDOW = "provider_window"


class AlertStage(enum.IntEnum):
    """How loudly we have already warned about an approaching deadline."""

    NONE = 0
    APPROACHING = 1
    CRITICAL = 2


@dataclass(frozen=True, slots=True)
class AuthorizationSnapshot:
    """Everything the planner needs to know about one authorization, as of one read."""

    id: int
    provider: ProviderName
    order_id: str
    amount: int
    currency: str
    authorized_at: dt.datetime
    state: State
    captured_amount: int = 0
    capture_count: int = 0
    expires_at: dt.datetime | None = None
    provider_expires_at: dt.datetime | None = None
    provider_open_amount: int | None = None
    on_deadline: OnDeadline | None = None
    capture_amount: int | None = None
    instruction: InstructionKind | None = None
    instruction_amount: int | None = None
    instruction_final: bool = False
    alert_stage: AlertStage = AlertStage.NONE
    last_synced_at: dt.datetime | None = None
    reference: str | None = None
    not_before: dt.datetime | None = None  # a retry waits until then
    account: str = "default"  # the merchant account at the provider (watchdog.accounts)

    @property
    def remaining_amount(self) -> int:
        """Authorized amount not yet captured (ignoring provider-side releases)."""
        return self.amount - self.captured_amount
