"""SmartPay by J.P. Morgan Mobility Payment Solutions: capture / cancel / status.

Wire facts (providers.md §2): Basic ``base64(merchantKey:authenticationKey)``;
``Content-Type: application/json``, ``Accept-Language: en-US``, ``Origin`` and
``User-Agent`` on every call; amounts as decimal JSON numbers in major units;
``modificationId`` (≤ 64 chars) is the idempotency key.

Decisions documented here:

* Every capture names its amount in ``modifiedAmount``, a full one too: without
  it the API captures whatever the transaction holds, which may be more than was
  registered with the watchdog. JPMMPS is single-capture.
* A capture answered ``CAPTURE_PENDING`` is PENDING (not SUCCEEDED): the provider
  accepted it and confirms asynchronously, so the caller polls ``status`` until it
  shows ``CAPTURED`` (confirmed) or the capture gone (failed).
* A modification counts only by its own ``status``: ``COMPLETED`` / ``SUCCESS``
  (or no status at all, as in the documented examples) is done; ``PENDING`` /
  ``PROCESSING`` / ``INITIATED`` is pending (the snapshot says CAPTURE_PENDING);
  ``FAILED`` / ``REJECTED`` / ``DECLINED`` / ``ERROR`` moved nothing and is not
  counted; any other word makes the snapshot UNRECOGNISED (never guessed at).
* A ``modificationId`` longer than 64 characters is replaced by the SHA-256 hex
  of the key (exactly 64 characters): stable across retries, so replays dedupe.
* ``Origin`` is ``settings.origin`` or, when unset, the base URL's own origin.
* The error body schema is UNCONFIRMED: we read ``errorCode``/``code``/``error``
  and ``message``/``description``/``errorMessage`` when present and classify by
  HTTP status (401/403 credentials, 429/5xx retryable, other 4xx rejected).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from watchdog.domain import ProviderName
from watchdog.money import to_major
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderResult,
    ProviderRules,
    ProviderSnapshot,
    ProviderState,
)
from watchdog.providers.http import (
    Answer,
    CallContext,
    HttpAdapter,
    basic_authorization,
    bounded_key,
    malformed,
    minor_units,
    seg,
)
from watchdog.providers.spec import ProviderSpec

NAME = ProviderName.declare("jpmmps")
MERCHANT_KEY_ENV = "WATCHDOG_JPMMPS_MERCHANT_KEY"
AUTH_KEY_ENV = "WATCHDOG_JPMMPS_AUTHENTICATION_KEY"
MODIFICATION_ID_MAX = 64

_STATES: dict[str, ProviderState] = {
    "CREATED": ProviderState.PENDING,
    "AUTORIZATION_INITIALIZED": ProviderState.PENDING,  # sic, as documented
    "AUTHORIZATION_INITIALIZED": ProviderState.PENDING,
    "AUTHORIZATION_COMPLETED": ProviderState.AUTHORIZED,
    "CAPTURE_PENDING": ProviderState.CAPTURE_PENDING,
    "CAPTURED": ProviderState.CAPTURED,
    "SETTLED": ProviderState.CAPTURED,
    "CANCELLED": ProviderState.CANCELED,
    "CANCELED": ProviderState.CANCELED,
}


MOD_DONE = frozenset({"COMPLETED", "SUCCESS", "SUCCEEDED", "SUCCESSFUL", "CAPTURED", "SETTLED",
                      "CANCELLED", "CANCELED"})
MOD_PENDING = frozenset({"PENDING", "PROCESSING", "INITIATED", "CREATED", "IN_PROGRESS"})
MOD_FAILED = frozenset({"FAILED", "REJECTED", "DECLINED", "ERROR", "REFUSED"})


def modification_status(mod: Any) -> str:
    """``done`` / ``pending`` / ``failed`` / ``unrecognised`` for one modification's own
    status; a modification without a status (the documented examples) is done."""
    raw = mod.get("status") if isinstance(mod, dict) else None
    if raw is None or raw == "":
        return "done"
    word = str(raw).upper()
    if word in MOD_DONE:
        return "done"
    if word in MOD_PENDING:
        return "pending"
    if word in MOD_FAILED:
        return "failed"
    return "unrecognised"


def modification_id(idempotency_key: str) -> str:
    """The key itself when it fits in 64 characters, else its SHA-256 hex (64 characters)."""
    return bounded_key(idempotency_key, MODIFICATION_ID_MAX)


def normalise_state(raw_state: str) -> ProviderState:
    """Documented names; anything that says EXPIRED is EXPIRED; the rest is never guessed."""
    state = _STATES.get(raw_state.upper())
    if state is not None:
        return state
    if "EXPIRED" in raw_state.upper():
        return ProviderState.EXPIRED
    return ProviderState.UNRECOGNISED


def snapshot_from_payment(data: Any, currency: str) -> ProviderSnapshot | str:
    """Normalise the shared response model; a string explains why it could not be read."""
    if not isinstance(data, dict):
        return "the answer is not a JSON object"
    raw_state = data.get("paymentStatus")
    if not isinstance(raw_state, str) or not raw_state:
        return "the answer has no paymentStatus"
    state = normalise_state(raw_state)
    overview = data.get("transactionOverview")
    total: int | None = None
    shown_currency: str | None = None
    if isinstance(overview, dict):
        total = minor_units(overview.get("amount"), overview.get("currencyCode") or currency)
        code = overview.get("currencyCode")
        shown_currency = code if isinstance(code, str) else None
    captured: int | None = 0 if state is ProviderState.AUTHORIZED else None
    mods = data.get("modifications")
    amounts: list[int | None] = []
    pending = False
    for mod in mods if isinstance(mods, list) else []:
        mdata = mod.get("modificationData") if isinstance(mod, dict) else None
        if not isinstance(mdata, dict) or mdata.get("type") != "CAPTURE":
            continue
        verdict = modification_status(mod)
        if verdict == "unrecognised":
            return ProviderSnapshot(ProviderState.UNRECOGNISED,
                                    f"{raw_state}/capture {mod.get('status')}"[:40])
        if verdict == "failed":
            continue  # a failed capture moved nothing
        if verdict == "pending":
            pending = True
            continue
        value = mdata.get("amount")
        if isinstance(value, dict):
            value = value.get("amount")
        if value is None and isinstance(mdata.get("modifiedAmount"), dict):
            value = mdata["modifiedAmount"].get("amount")
        # a capture without an amount captured everything
        amounts.append(minor_units(value, currency) if value is not None else total)
    if amounts and all(a is not None for a in amounts):
        captured = sum(a for a in amounts if a is not None)
    if pending and state is not ProviderState.UNRECOGNISED:
        # Our capture is accepted, not done, whatever the payment status says meanwhile.
        state = ProviderState.CAPTURE_PENDING
    open_amount: int | None = None
    if state is ProviderState.AUTHORIZED:
        open_amount = total
    elif state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING, ProviderState.CANCELED,
                   ProviderState.EXPIRED):
        open_amount = 0
    return ProviderSnapshot(state, raw_state, captured_amount=captured, open_amount=open_amount,
                            amount=total, currency=shown_currency)


def foreign_answer(answer: Answer, ref: AuthRef, amount: int | None) -> str | None:
    """Why a modification answer is not about our request (a ``modificationId`` replay of
    another transaction's answer), or None when it is ours or does not say."""
    data = answer.data if isinstance(answer.data, dict) else {}
    overview = data.get("transactionOverview")
    tx = overview.get("transactionId") if isinstance(overview, dict) else None
    if tx is not None and str(tx) != ref.order_id:
        return f"the answer is about transaction {tx!r}, not {ref.order_id!r}"
    mod = data.get("modification")
    mdata = mod.get("modificationData") if isinstance(mod, dict) else None
    if amount is not None and isinstance(mdata, dict) and mdata.get("amount") is not None:
        shown = minor_units(mdata.get("amount"), mdata.get("currencyCode") or ref.currency)
        if shown is not None and shown != amount:
            return f"the answer is for an amount of {shown}, not {amount}"
    return None


def capture_result(
    ctx: CallContext, answer: Answer, snap: ProviderSnapshot, ref: AuthRef | None = None,
    amount: int | None = None,
) -> ProviderResult:
    """What a 2xx capture answer means: (pending) capture SUCCEEDED, a final state REJECTED;
    an answer about another transaction or amount (a replay) is never ours: UNKNOWN."""
    foreign = foreign_answer(answer, ref, amount) if ref is not None else None
    if foreign is not None:
        return ctx.answered(Outcome.UNKNOWN, f"not booked: {foreign} (a replayed answer to "
                            "another request?); confirm with a status read", answer,
                            provider_code="foreign_answer")
    if snap.state is ProviderState.CAPTURED:
        return ctx.answered(Outcome.SUCCEEDED, f"captured ({snap.raw_state})", answer,
                            snapshot=snap)
    if snap.state is ProviderState.CAPTURE_PENDING:
        return ctx.answered(Outcome.PENDING, "capture accepted, CAPTURE_PENDING: not final "
                            "until a status read shows it CAPTURED", answer, snapshot=snap)
    if snap.state in (ProviderState.CANCELED, ProviderState.EXPIRED, ProviderState.DECLINED):
        return ctx.answered(Outcome.REJECTED, f"not captured: the payment is {snap.raw_state}",
                            answer, snapshot=snap)
    return malformed(ctx, answer, f"paymentStatus after capture is {snap.raw_state!r}",
                     snapshot=snap)


def cancel_result(ctx: CallContext, answer: Answer, snap: ProviderSnapshot) -> ProviderResult:
    """What a 2xx cancel answer means: CANCELED SUCCEEDED, (pending) capture REJECTED."""
    if snap.state is ProviderState.CANCELED:
        mod = answer.data.get("modification") if isinstance(answer.data, dict) else None
        if isinstance(mod, dict) and modification_status(mod) == "pending":
            return ctx.answered(Outcome.PENDING, "cancellation accepted, pending: not final "
                                "until a status read confirms it", answer, snapshot=snap)
        return ctx.answered(Outcome.SUCCEEDED, "cancelled", answer, snapshot=snap)
    if snap.state in (ProviderState.CAPTURED, ProviderState.CAPTURE_PENDING):
        return ctx.answered(Outcome.REJECTED, f"not cancelled: the payment is {snap.raw_state}",
                            answer, snapshot=snap)
    return malformed(ctx, answer, f"paymentStatus after cancel is {snap.raw_state!r}",
                     snapshot=snap)


class JpmmpsAdapter(HttpAdapter):
    """JPMMPS SmartPay modification and status APIs."""

    provider = NAME
    status_words = ("paymentStatus", "payment")
    check_currency = "EUR"

    def _configure(self) -> None:
        """Basic auth from merchant and authentication keys; Origin from settings or base URL."""
        self._merchant_key = self._settings.credential(MERCHANT_KEY_ENV)
        auth_key = self._settings.credential(AUTH_KEY_ENV)
        self._authorization, token = basic_authorization(self._merchant_key, auth_key)
        self._secret_values = (self._merchant_key, auth_key, token)
        parts = urllib.parse.urlsplit(self._base)
        self._origin = self._settings.origin or f"{parts.scheme}://{parts.netloc}"

    def _headers(self) -> dict[str, str]:
        """Credentials, language, Origin and User-Agent on every call; JSON both ways."""
        return {
            "Authorization": self._authorization,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Language": "en-US",
            "Origin": self._origin,
            "User-Agent": self._settings.user_agent,
        }

    def _status_route(self, order_id: str) -> tuple[str, str, Any]:
        """GET /payment/status/{transactionId}."""
        return "GET", f"/payment/status/{seg(order_id)}", None

    def _parse_snapshot(self, data: Any, currency: str) -> ProviderSnapshot | str:
        """The shared response model (status, capture and cancel all answer with it)."""
        return snapshot_from_payment(data, currency)

    def _error_fields(self, answer: Answer) -> tuple[str | None, str, str | None]:
        """The UNCONFIRMED error schema: the first of each of the names we have seen used."""
        data = answer.data
        if not isinstance(data, dict):
            return None, "", answer.request_id
        code = next((data[k] for k in ("errorCode", "code", "error") if data.get(k) is not None),
                    None)
        text = next((data[k] for k in ("message", "description", "errorMessage", "detail")
                     if data.get(k)), "")
        rid = next((str(data[k]) for k in ("requestId", "traceId", "correlationId")
                    if data.get(k)), None) or answer.request_id
        return (str(code) if code is not None else None), str(text), rid

    def _known_failure(
        self, ctx: CallContext, answer: Answer, code: str | None, text: str, rid: str | None,
    ) -> ProviderResult | None:
        """The check's sentinel transaction answered 400 or 404: keys and host work."""
        if ctx.operation == "check" and answer.status in (400, 404):
            return ctx.answered(Outcome.SUCCEEDED, "credentials accepted and JPMMPS reachable "
                                f"(sentinel transaction answered HTTP {answer.status})", answer,
                                provider_code=code, request_id=rid)
        return None

    async def _capture(
        self, ctx: CallContext, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """POST /payment/capture, always with ``modifiedAmount`` (never "whatever is held")."""
        body: dict[str, Any] = {
            "transactionId": ref.order_id,
            "merchantKey": self._merchant_key.reveal(),
            "modificationId": modification_id(idempotency_key),
            "modifiedAmount": {"amount": to_major(amount, ref.currency),
                               "currencyCode": ref.currency},
        }
        return await self._call(ctx, "POST", "/payment/capture",
                                lambda answer, snap: capture_result(ctx, answer, snap, ref,
                                                                    amount),
                                currency=ref.currency, body=body)

    async def _cancel(self, ctx: CallContext, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """POST /payment/cancel (releases the full authorized amount)."""
        body = {"transactionId": ref.order_id, "modificationId": modification_id(idempotency_key),
                "merchantKey": self._merchant_key.reveal()}
        return await self._call(ctx, "POST", "/payment/cancel",
                                lambda answer, snap: cancel_result(ctx, answer, snap),
                                currency=ref.currency, body=body)

TRANSACTION_ID_MAX = 36


def order_id_problem(order_id: str) -> str | None:
    """A JPMMPS transactionId has at most 36 characters."""
    if len(order_id) > TRANSACTION_ID_MAX:
        return f"a JPMMPS transactionId has at most {TRANSACTION_ID_MAX} characters"
    return None


SPEC = ProviderSpec(
    name=NAME,
    rank=20,
    rules=ProviderRules(NAME, dt.timedelta(days=5), multiple_captures=False,
                        partial_releases_remainder=True, reports_expiry=False),
    default_base_url=None,  # handed out with the credentials
    connect_timeout=10.0,
    read_timeout=90.0,  # JPMMPS asks for >= 90 s
    secret_variables=(MERCHANT_KEY_ENV, AUTH_KEY_ENV),
    explain="one capture only; a partial capture releases the remainder; window set per "
    "merchant (default 5 days), not shown by the API",
    # Status names containing EXPIRED read as EXPIRED (see snapshot_from_payment).
    states={**_STATES, "EXPIRED": ProviderState.EXPIRED},
    evidence_keys=frozenset({"reconciliationReferenceId", "paymentStatus", "creationDate",
                             "lastStatusDate", "transactionOverview", "transactionId",
                             "currencyCode", "modifications", "modificationId",
                             "modificationData"}),
    not_found_codes=frozenset({"TRANSACTION_NOT_FOUND"}),
    adapter=JpmmpsAdapter,
    order_id_problem=order_id_problem,
)
