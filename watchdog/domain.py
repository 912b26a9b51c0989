"""The watchdog's vocabulary: providers, states, actions. Pure data, no I/O."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class ProviderName(enum.StrEnum):
    """The providers the watchdog speaks to."""

    SMARTPAY = "smartpay"
    JPMMPS = "jpmmps"
    FLITT = "flitt"
    CLEARPAY = "clearpay"


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

    @property
    def remaining_amount(self) -> int:
        """Authorized amount not yet captured (ignoring provider-side releases)."""
        return self.amount - self.captured_amount
