"""The ``/v1`` endpoints. Handlers are thin: parse, authorise, call ``watchdog.service``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from watchdog import audit, service, tokens
from watchdog.api import queries
from watchdog.api.errors import ApiError
from watchdog.api.schemas import (
    MAX_ID,
    AuditTrail,
    AuthorizationPage,
    CaptureInstructionIn,
    ErrorBody,
    InstructionAccepted,
    PlanOut,
    RecordOut,
    RegistrationIn,
)
from watchdog.clock import Clock
from watchdog.config import Config
from watchdog.domain import OPEN_STATES, InstructionKind, ProviderName, State
from watchdog.durations import parse_duration
from watchdog.errors import InstructionError, ValidationError
from watchdog.planner import Planner
from watchdog.registration import parse_instant

MAX_HORIZON = dt.timedelta(days=366)
_INSTANTS = ("authorized_at", "expires_at")


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What every handler needs; lives on ``app.state.watchdog``."""

    engine: Engine
    config: Config
    clock: Clock
    planner: Planner = field(init=False)  # the configuration's, built once with the app

    def __post_init__(self) -> None:
        object.__setattr__(self, "planner", Planner(self.config))


def context(request: Request) -> ApiContext:
    """The app's context."""
    ctx = request.app.state.watchdog
    assert isinstance(ctx, ApiContext)
    return ctx


_bearer = HTTPBearer(auto_error=False, description="A token from `expiry-watchdog tokens create`.")
_UNAUTHORIZED = ApiError(401, [("authorization", "a valid bearer token is required")],
                         {"WWW-Authenticate": "Bearer"})


def reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tokens.TokenInfo:
    """Any active token; 401 otherwise, with no hint about what was wrong."""
    if credentials is None:
        raise _UNAUTHORIZED
    ctx = context(request)
    info = tokens.authenticate(ctx.engine, credentials.credentials, ctx.clock.now())
    if info is None:
        raise _UNAUTHORIZED
    return info


def writer(principal: Annotated[tokens.TokenInfo, Depends(reader)]) -> tokens.TokenInfo:
    """An active write token; 403 for a read token."""
    if principal.scope is not tokens.Scope.WRITE:
        raise ApiError(403, [("authorization", "this token may only read")])
    return principal


Ctx = Annotated[ApiContext, Depends(context)]
Reader = Annotated[tokens.TokenInfo, Depends(reader)]
Writer = Annotated[tokens.TokenInfo, Depends(writer)]
AuthorizationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The watchdog's id.")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "No, wrong or revoked token.", 403: "A read token on a write endpoint.",
            404: "No such authorization.", 409: "Conflicts with the stored state.",
            413: "Body larger than 64 KiB.", 422: "A field was rejected.",
            503: "The database is unavailable; retry."}
    return {c: {"model": ErrorBody, "description": text[c]} for c in (401, 422, 503, *codes)}


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` inlined (for a hand-written request body)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result = walk(schema)
    assert isinstance(result, dict)
    return result


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body the handler parses itself (after auth)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": _inline_refs(model.model_json_schema())}}}}


router = APIRouter(prefix="/v1")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValidationError("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object")
    return data


def _guard(data: dict[str, Any]) -> None:
    """Refuse what the database cannot store and the calendar cannot hold.

    ``validate_record`` decides everything else; these only turn would-be crashes
    (NUL bytes, unpaired surrogates, instants at the ends of the calendar) into 422s.
    """
    for name, value in data.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError(name, "is not valid UTF-8 text") from None
            if "\x00" in value:
                raise ValidationError(name, "must not contain NUL characters")
    for name in _INSTANTS:
        value = data.get(name)
        if value in (None, ""):
            continue
        try:
            instant = parse_instant(value, name)
        except ValidationError:
            continue  # validate_record reports it, in its own order
        except (ValueError, OverflowError):
            raise ValidationError(name, "is outside the supported calendar range") from None
        if not dt.datetime(2, 1, 1, tzinfo=dt.UTC) <= instant <= dt.datetime(
                9998, 1, 1, tzinfo=dt.UTC):
            raise ValidationError(name, "is outside the supported calendar range")


def _strict_types(model: type[BaseModel], raw: bytes) -> None:
    """Check the body against ``model`` as JSON, with no coercion (``"5000"`` is not an
    amount, ``"true"`` not a boolean), and reject every bad field at once."""
    try:
        model.model_validate_json(raw, strict=True)
    except PydanticValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None


def _register(ctx: ApiContext, data: dict[str, Any], actor: str) -> tuple[bool, dict[str, Any]]:
    for attempt in (1, 2):
        try:
            result = service.register(ctx.engine, ctx.config, data, actor, ctx.clock,
                                      planner=ctx.planner)
            break
        except IntegrityError:  # a concurrent identical registration won the race
            if attempt == 2:
                raise
    return result.created, queries.get_record(ctx.engine, ctx.planner, result.authorization.id)


@router.post(
    "/authorizations", status_code=201, response_model=RecordOut,
    responses={200: {"model": RecordOut, "description": "Already registered, identical."},
               **_errors(403, 409, 413)},
    openapi_extra=_body_schema(RegistrationIn), summary="Register an authorization to watch",
)
async def register(request: Request, response: Response, ctx: Ctx, who: Writer) -> Any:
    """Same record and validation as the import. Identical re-registration answers 200;
    different data for the same (provider, order_id) answers 409 naming the fields."""
    raw = await request.body()  # read after authentication, so a bad token never learns more
    data = _json_object(raw)
    _guard(data)
    _strict_types(RegistrationIn, raw)
    created, body = await run_in_threadpool(_register, ctx, data, f"api:{who.name}")
    response.status_code = 201 if created else 200
    return body


@router.get("/authorizations/{authorization_id}", response_model=RecordOut,
            responses=_errors(404), summary="One authorization and its timeline")
def get_authorization(authorization_id: AuthorizationId, ctx: Ctx, who: Reader) -> Any:
    """The stored record and its planned timeline."""
    return queries.get_record(ctx.engine, ctx.planner, authorization_id)


@router.get("/authorizations", response_model=AuthorizationPage, responses=_errors(),
            summary="List authorizations (cursor pagination by id)")
def list_authorizations(
    ctx: Ctx, who: Reader,
    provider: Annotated[ProviderName | None, Query()] = None,
    account: Annotated[str | None, Query(
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        description="Only rows of this merchant account (of any provider, or of `provider`)."
    )] = None,
    state: Annotated[State | None, Query()] = None,
    due_before: Annotated[str | None, Query(
        description="Only rows whose next action is at or before this ISO 8601 instant.",
        json_schema_extra={"format": "date-time"})] = None,
    cursor: Annotated[str | None, Query(max_length=64,
                                        description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Authorizations ordered by id; follow ``next_cursor`` until it is null."""
    due = None
    if due_before is not None:
        try:
            due = parse_instant(due_before, "due_before")
        except ValidationError:
            raise
        except (ValueError, OverflowError):
            raise ValidationError("due_before", "is outside the supported calendar range") from None
    after = queries.decode_cursor(cursor) if cursor is not None else 0
    page = queries.list_authorizations(ctx.engine, provider=provider, state=state,
                                       due_before=due, after_id=after, limit=limit,
                                       account=account)
    return {"items": page.items, "next_cursor": page.next_cursor}


def _instruct(ctx: ApiContext, authorization_id: int, kind: InstructionKind, actor: str,
              amount: int | None, final: bool) -> dict[str, Any]:
    try:
        row = service.instruct(ctx.engine, ctx.config, authorization_id, kind, actor,
                               amount=amount, final=final, clock=ctx.clock,
                               planner=ctx.planner)
    except InstructionError as exc:
        state = queries.current_state(ctx.engine, authorization_id)
        if state is not None and state not in OPEN_STATES:
            raise ApiError(409, [("state", str(exc))]) from None
        raise
    return {"authorization": service.authorization_dict(row), "instruction": kind.value,
            "amount": row.instruction_amount, "final": final}


@router.post("/authorizations/{authorization_id}/capture-instruction", status_code=202,
             response_model=InstructionAccepted, responses=_errors(403, 404, 409, 413),
             openapi_extra=_body_schema(CaptureInstructionIn),
             summary="Capture now, or be ready to capture at the deadline")
async def capture_instruction(authorization_id: AuthorizationId, request: Request,
                              ctx: Ctx, who: Writer) -> Any:
    """Validated against the open amount and the provider's partial/multiple-capture rules;
    the worker carries it out on its next pass."""
    raw = await request.body()  # read after authentication, so a bad token never learns more
    try:
        body = CaptureInstructionIn.model_validate_json(raw or b"null", strict=True)
    except PydanticValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
    kind = (InstructionKind.CAPTURE_NOW if body.when == "now"
            else InstructionKind.CAPTURE_AT_DEADLINE)
    return await run_in_threadpool(_instruct, ctx, authorization_id, kind, f"api:{who.name}",
                                   body.amount, body.final)


@router.post("/authorizations/{authorization_id}/cancel", status_code=202,
             response_model=InstructionAccepted, responses=_errors(403, 404, 409, 413),
             summary="Cancel (void) now")
def cancel(authorization_id: AuthorizationId, ctx: Ctx, who: Writer) -> Any:
    """Release the authorization; the worker carries it out on its next pass."""
    return _instruct(ctx, authorization_id, InstructionKind.CANCEL_NOW, f"api:{who.name}",
                     None, False)


@router.get("/authorizations/{authorization_id}/audit", response_model=AuditTrail,
            responses=_errors(404), summary="An authorization's audit trail")
def audit_trail(authorization_id: AuthorizationId, ctx: Ctx, who: Reader) -> Any:
    """Every audit row for the authorization, oldest first."""
    queries.get_record(ctx.engine, ctx.planner, authorization_id)  # 404 if unknown
    rows = audit.query(ctx.engine, authorization_id=authorization_id)
    return {"items": [audit.row_as_dict(r) for r in rows]}


@router.get("/plan", response_model=PlanOut, responses=_errors(),
            summary="What happens next (same view as `expiry-watchdog plan`)")
def plan(ctx: Ctx, who: Reader,
         horizon: Annotated[str, Query(max_length=32, description="e.g. 72h, 7d")] = "72h",
         ) -> Any:
    """Upcoming events within the horizon, soonest first, and money at risk per provider,
    merchant account and currency; every entry names its account."""
    try:
        delta = parse_duration(horizon)
    except (ValueError, OverflowError) as exc:
        raise ValidationError("horizon", str(exc)) from None
    if delta > MAX_HORIZON:
        raise ValidationError("horizon", "must be at most 366d")
    entries, at_risk = service.plan_view(ctx.engine, ctx.config, delta, ctx.clock,
                                         planner=ctx.planner)
    return {
        "horizon": horizon,
        "entries": [{"at": e.at.isoformat(), "what": e.what, "authorization_id": e.authorization_id,
                     "provider": e.provider, "account": e.account, "order_id": e.order_id,
                     "open_amount": e.open_amount, "currency": e.currency, "state": e.state}
                    for e in entries],
        "at_risk": [{"provider": p, "account": a, "currency": c, "amount": amount}
                    for (p, a, c), amount in sorted(at_risk.items())],
    }


__all__ = ["ApiContext", "router"]
