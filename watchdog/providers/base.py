"""The provider boundary: one protocol, frozen results, and the rules that drive the planner.

Every adapter answers the only question on-call cares about — did money move? —
through ``Outcome``. Adapters know their wire format and nothing about the database.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from watchdog.domain import ProviderName


class Outcome(enum.StrEnum):
    """What happened to a request, in terms of money."""

    SUCCEEDED = "succeeded"  # the provider confirmed the effect now
    ALREADY_DONE = "already_done"  # the effect was already there (e.g. our own lost response)
    REJECTED = "rejected"  # terminal refusal: nothing moved and retrying will not help
    RETRYABLE = "retryable"  # nothing moved (or a replay is safe); try again later, same key
    UNKNOWN = "unknown"  # the request may have reached the provider; no answer came back
    PENDING = "pending"  # accepted, not yet final (CAPTURE_PENDING, hold): confirm by status

    @property
    def money_moved(self) -> bool | None:
        """True / False / None (unknown), the three answers on-call needs."""
        if self in (Outcome.SUCCEEDED, Outcome.ALREADY_DONE):
            return True
        if self in (Outcome.REJECTED, Outcome.RETRYABLE):
            return False
        return None


class ProviderState(enum.StrEnum):
    """A provider's view of an authorization, normalised across the four APIs."""

    AUTHORIZED = "authorized"  # open, nothing captured
    PARTIALLY_CAPTURED = "partially_captured"  # something captured, remainder still capturable
    CAPTURE_PENDING = "capture_pending"  # capture accepted, not yet confirmed
    CAPTURED = "captured"  # captured, nothing more capturable
    CANCELED = "canceled"  # voided / reversed / cancelled before capture
    EXPIRED = "expired"  # lapsed at the provider
    DECLINED = "declined"  # never authorized / capture declined
    PENDING = "pending"  # not yet authorized
    UNRECOGNISED = "unrecognised"  # a status string we do not know: never guessed at


@dataclass(frozen=True, slots=True)
class AuthRef:
    """What an adapter needs to address one authorization at the provider."""

    authorization_id: int
    order_id: str
    amount: int
    currency: str
    captured_amount: int = 0
    account: str = "default"  # the merchant account at the provider (watchdog.accounts)


@dataclass(frozen=True, slots=True)
class ProviderSnapshot:
    """The provider's current view: state, money and (where the API shows it) its own deadline."""

    state: ProviderState
    raw_state: str
    captured_amount: int | None = None
    open_amount: int | None = None
    expires_at: dt.datetime | None = None
    # What the provider holds in total and in which currency, where the API shows it:
    # compared with what was registered (a disagreement is audited and alerted).
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """One answer from a provider call: outcome, evidence for the audit, and what to do next."""

    outcome: Outcome
    operation: str  # "status" | "capture" | "cancel"
    provider: ProviderName
    http_status: int | None = None
    provider_code: str | None = None
    request_id: str | None = None
    message: str = ""
    retry_after: float | None = None
    snapshot: ProviderSnapshot | None = None
    raw: Any = field(default=None, compare=False)  # redacted answer, kept for the audit

    @property
    def money_moved(self) -> bool | None:
        """Did money move? True / False / None (unknown)."""
        return self.outcome.money_moved

    def describe(self) -> str:
        """One sentence for logs and alerts, naming the provider's code and request id."""
        parts = [f"{self.provider} {self.operation}: {self.outcome}"]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.provider_code:
            parts.append(f"code {self.provider_code}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        text = ", ".join(parts)
        return f"{text}: {self.message}" if self.message else text


@dataclass(frozen=True, slots=True)
class ProviderRules:
    """A provider's capture rules, as the planner needs them (declared in its ``SPEC``)."""

    name: ProviderName
    window: dt.timedelta
    multiple_captures: bool  # can a second capture follow a partial one?
    partial_releases_remainder: bool  # does a partial capture release the rest (by default)?
    reports_expiry: bool  # does ``status`` show the provider's own deadline?
    min_capture_amount: int = 1


class ProviderAdapter(Protocol):
    """One provider's capture API. Implementations get their ``httpx.AsyncClient`` injected."""

    @property
    def name(self) -> ProviderName: ...

    @property
    def rules(self) -> ProviderRules: ...

    async def status(self, ref: AuthRef) -> ProviderResult:
        """Read the provider's current view of ``ref``; moves no money."""
        ...

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """Capture ``amount`` minor units; ``final`` says the remainder may be released."""
        ...

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """Release whatever is still authorized and uncaptured."""
        ...

    async def check(self) -> ProviderResult:
        """Verify credentials and reachability without moving money."""
        ...
