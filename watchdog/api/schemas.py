"""The API's wire shapes (OpenAPI components). Responses are built from the service's dicts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, StrictInt

from watchdog.domain import OnDeadline, ProviderName, State
from watchdog.money import CURRENCY_EXPONENTS

MAX_ID = 2**63 - 1
_CURRENCIES: list[JsonValue] = [*sorted(CURRENCY_EXPONENTS)]


class FieldError(BaseModel):
    """One rejected field and why."""

    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: the fields that failed and why."""

    errors: list[FieldError]


class RegistrationIn(BaseModel):
    """An authorization to watch; the same record the CSV/JSONL import takes.

    Validation is the import's (``watchdog.registration.validate_record``); this model
    documents it. Unknown fields are rejected.
    """

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName
    order_id: str = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$",
                          description="The provider's order/transaction id.")
    account: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        description="The merchant account at the provider, as configured "
                    "(`[providers.<name>.accounts.<account>]`); default `default`.")
    amount: StrictInt = Field(ge=1, le=10**15, description="Authorized amount in minor units.")
    currency: str = Field(description="ISO 4217 code, e.g. JPY.",
                          json_schema_extra={"enum": _CURRENCIES})
    authorized_at: str = Field(
        description="ISO 8601 instant with a UTC offset (naive times are rejected).",
        json_schema_extra={"format": "date-time"},
    )
    reference: str | None = Field(default=None, max_length=128)
    expires_at: str | None = Field(
        default=None, description="The provider's own expiry, if known (ISO 8601 with offset).",
        json_schema_extra={"format": "date-time"},
    )
    on_deadline: OnDeadline | None = None
    capture_amount: StrictInt | None = Field(
        default=None, ge=1, le=10**15,
        description="Minor units to capture at the deadline when not the full amount.",
    )


class CaptureInstructionIn(BaseModel):
    """Capture now, or be ready to capture at the deadline."""

    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(
        default=None, description="Minor units; default is the open amount."
    )
    when: Literal["now", "deadline"]
    final: StrictBool = Field(
        default=False,
        description="A partial capture may release the remainder (single-capture providers).",
    )


class AuthorizationOut(BaseModel):
    """One stored authorization."""

    id: int
    provider: ProviderName
    account: str = "default"
    order_id: str
    reference: str | None
    amount: int
    currency: str
    authorized_at: str
    expires_at: str | None
    on_deadline: OnDeadline | None
    capture_amount: int | None
    state: State
    captured_amount: int
    deadline: str | None
    deadline_source: str | None
    next_action_at: str | None
    instruction: str | None
    instruction_amount: int | None
    provider_state: str | None
    last_error: str | None


class TimelineOut(BaseModel):
    """The planned instants of one authorization."""

    alert_at: str
    act_at: str
    critical_at: str
    guard_at: str
    deadline: str
    deadline_source: str


class RecordOut(BaseModel):
    """An authorization with its planned timeline."""

    authorization: AuthorizationOut
    timeline: TimelineOut


class AuthorizationPage(BaseModel):
    """One page of authorizations, ordered by id; pass ``next_cursor`` as ``cursor``."""

    items: list[AuthorizationOut]
    next_cursor: str | None


class InstructionAccepted(BaseModel):
    """The instruction is recorded; the worker carries it out on its next pass."""

    authorization: AuthorizationOut
    instruction: str
    amount: int | None
    final: bool


class AuditRowOut(BaseModel):
    """One row of the append-only audit trail."""

    id: int
    recorded_at: str
    actor: str
    event: str
    authorization_id: int | None
    provider: str | None
    order_id: str | None
    amount: int | None
    currency: str | None
    idempotency_key: str | None
    state_from: str | None
    state_to: str | None
    outcome: str | None
    detail: Any
    prev_hash: str
    hash: str


class AuditTrail(BaseModel):
    """An authorization's audit trail, oldest first."""

    items: list[AuditRowOut]


class PlanEntryOut(BaseModel):
    """One upcoming event."""

    at: str
    what: str
    authorization_id: int
    provider: str
    account: str = Field(default="default",
                         description="The merchant account at the provider (`default` for a "
                                     "provider without `accounts`).")
    order_id: str
    open_amount: int
    currency: str
    state: str


class AtRisk(BaseModel):
    """Open, uncaptured money (minor units) per provider, merchant account and currency:
    two accounts of one provider are separate merchants, so their money is not added up."""

    provider: str
    account: str = Field(default="default", description="The merchant account at the provider.")
    currency: str
    amount: int


class PlanOut(BaseModel):
    """What will happen within the horizon, soonest first."""

    horizon: str
    entries: list[PlanEntryOut]
    at_risk: list[AtRisk]
