"""The adapter scaffolding: one call pipeline, with small hooks each provider fills in.

``HttpAdapter`` owns the mechanism every adapter shares — build the request, send
it through ``exchange``, classify a non-2xx answer, read the provider's data, and
hand it to a verdict — so that a provider module is about its wire format only:
its credentials and headers, where its status lives, how its data reads as a
``ProviderSnapshot``, what its error codes mean, and what each answer means for
capture and cancel.
"""

from __future__ import annotations

import abc
import base64
import datetime as dt
import hashlib
import json
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import ProviderSettings
from watchdog.domain import ProviderName
from watchdog.errors import ConfigError
from watchdog.money import CurrencyError, exponent, from_major
from watchdog.providers import registry
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderResult,
    ProviderRules,
    ProviderSnapshot,
    ProviderState,
)
from watchdog.providers.http.transport import (
    Answer,
    CallContext,
    exchange,
    generic_http_failure,
    malformed,
    timeout_for,
)
from watchdog.secrets import Secret

CHECK_ORDER_ID = "expiry-watchdog-check-0"  # a sentinel id no provider knows: expect "not found"

Verdict = Callable[[Answer, Any], ProviderResult]  # judges the data of a 2xx answer
SnapshotVerdict = Callable[[Answer, ProviderSnapshot], ProviderResult]  # judges its snapshot


# --------------------------------------------------------------------------- wire values


def seg(value: str) -> str:
    """One URL path segment, percent-encoded (an order id never changes the path)."""
    return urllib.parse.quote(value, safe="")


def ms_epoch_to_utc(value: Any) -> dt.datetime | None:
    """A millisecond epoch as an aware UTC datetime; None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso_to_utc(value: Any) -> dt.datetime | None:
    """An ISO-8601 instant with an offset as aware UTC; None when absent, bad or naive."""
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(dt.UTC)


def minor_units(value: Any, currency: Any) -> int | None:
    """A major-unit amount (a number or decimal string) in minor units; None when it is not one.

    Also None for an amount that is not exact in ``currency``, or a currency we
    do not know: a snapshot leaves such an amount unknown rather than guess it.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        return from_major(value, currency)
    except ValueError:
        return None


def bounded_key(idempotency_key: str, limit: int) -> str:
    """The key itself when it fits in ``limit`` characters, else its SHA-256 hex cut to fit.

    Stable across retries (the same key always gives the same value), so a
    provider with a short idempotency field still dedupes our replays.
    """
    if len(idempotency_key) <= limit:
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:limit]


def basic_authorization(user: Secret, password: Secret) -> tuple[str, str]:
    """The ``Authorization`` value ``Basic base64(user:password)``, and its token.

    The token is returned apart because it is a secret too: the adapter masks it
    in everything it keeps.
    """
    token = base64.b64encode(f"{user.reveal()}:{password.reveal()}".encode()).decode("ascii")
    return "Basic " + token, token


def _json_number(value: Any) -> Any:
    """Decimals go on the wire as JSON numbers: Decimal("18.20") -> 18.2."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- the adapter


class HttpAdapter(abc.ABC):
    """What every adapter shares: settings, injected client, timeouts, rules, secrets, the call.

    A subclass sets ``provider`` and fills in the hooks: ``_configure``
    (credentials), ``_headers``, ``_status_route`` and ``_parse_snapshot`` (where
    the status lives and how it reads), ``_error_fields`` / ``_known_failure``
    (what its errors mean), and ``_capture`` / ``_cancel``, which send through
    ``_call`` or ``_send`` with a verdict of their own. The protocol's methods
    (``status``, ``check``, ``capture``, ``cancel``) are implemented here, once.
    """

    provider: ProviderName  # set by each subclass
    status_words: tuple[str, str] = ("status", "order")  # (state field, noun) in status messages
    check_currency: str = "EUR"  # the currency a found sentinel would be read in

    def __init__(
        self, settings: ProviderSettings, client: httpx.AsyncClient,
        rules: ProviderRules | None = None, *, clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Check the settings are this provider's and usable, then read the credentials."""
        if settings.name != self.provider:
            raise ValueError(f"{type(self).__name__} needs {self.provider} settings, "
                             f"got {settings.name}")
        if not settings.base_url:
            raise ConfigError(f"providers.{settings.name}.base_url: not set; the adapter "
                              "cannot be built without it")
        self._settings = settings
        self._client = client
        self._clock = clock
        self._rules = rules or registry.rules(self.provider, settings)
        self._timeout = timeout_for(settings)
        self._base = settings.base_url.rstrip("/")
        self._secret_values: tuple[Secret | str, ...] = ()
        self._configure()

    @abc.abstractmethod
    def _configure(self) -> None:
        """Read the provider's credentials from the settings (a missing one raises ConfigError).

        A hook, called once at the end of ``__init__``: it keeps what the wire needs
        and sets ``_secret_values`` to everything a result or log line must mask.
        """

    @property
    def name(self) -> ProviderName:
        """The provider this adapter speaks to."""
        return self.provider

    @property
    def rules(self) -> ProviderRules:
        """The provider's capture rules (window from the settings)."""
        return self._rules

    # ------------------------------------------------------------------ the protocol, shared

    async def status(self, ref: AuthRef) -> ProviderResult:
        """Read the provider's current view of ``ref`` (see ``_status_route``); moves no money."""
        return await self._status(ref.order_id, ref.currency, self._ctx("status"))

    async def check(self) -> ProviderResult:
        """Read a sentinel order: the provider's "not found" proves the keys and the host work.

        Each adapter's ``_known_failure`` says which answer is that "not found".
        """
        return await self._status(CHECK_ORDER_ID, self.check_currency, self._ctx("check"))

    async def capture(
        self, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """Capture ``amount`` minor units (see ``_capture``); ``final`` may release the rest.

        A currency we cannot represent exactly, or an amount that is not positive
        minor units, is REJECTED here, before anything is sent.
        """
        ctx = self._ctx("capture")
        refused = self._refuse_currency(ctx, ref.currency) or self._refuse_amount(ctx, amount)
        if refused is not None:
            return refused
        return await self._capture(ctx, ref, amount, idempotency_key, final=final)

    async def cancel(self, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """Release whatever is still authorized and uncaptured (see ``_cancel``)."""
        return await self._cancel(self._ctx("cancel"), ref, idempotency_key)

    async def _status(self, order_id: str, currency: str, ctx: CallContext) -> ProviderResult:
        """The one status read behind ``status`` and ``check``."""
        method, path, body = self._status_route(order_id)
        return await self._call(ctx, method, path,
                                lambda answer, snap: self._status_verdict(ctx, answer, snap),
                                currency=currency, body=body)

    def _status_verdict(
        self, ctx: CallContext, answer: Answer, snap: ProviderSnapshot
    ) -> ProviderResult:
        """SUCCEEDED with the snapshot; UNKNOWN for a state we do not know (never guessed at)."""
        field, noun = self.status_words
        if snap.state is ProviderState.UNRECOGNISED:
            return ctx.answered(Outcome.UNKNOWN, f"unrecognised {field} {snap.raw_state!r}; "
                                "not guessed at", answer, snapshot=snap)
        return ctx.answered(Outcome.SUCCEEDED, f"{noun} is {snap.raw_state}", answer,
                            snapshot=snap)

    # ------------------------------------------------------------------ the call pipeline

    def _ctx(self, operation: str) -> CallContext:
        """The context of one operation: who calls, and which secrets to mask."""
        return CallContext(self.provider, operation, self._secret_values, self._clock)

    def _build(
        self, method: str, path: str, *, body: Any = None, headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """One request on the injected client: compact JSON body, explicit timeouts."""
        content = None if body is None else json.dumps(
            body, separators=(",", ":"), default=_json_number
        )
        # Built directly, not with ``client.build_request``: the client adds no defaults
        # we want (each adapter sets its own headers) and merging them cost a tenth of
        # a call's CPU time.
        return httpx.Request(
            method, self._base + path, content=content, headers=dict(headers or {}),
            extensions={"timeout": self._timeout.as_dict()},
        )

    async def _send(
        self, ctx: CallContext, method: str, path: str, verdict: Verdict, *, body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        """Send one request; ``verdict`` judges the data of a 2xx, every other answer is classified.

        No answer is ``exchange``'s to classify, a non-2xx ``_failure``'s, and a 2xx
        that is a failure in disguise ``_unwrap``'s. ``headers`` default to ``_headers()``.
        """
        request = self._build(method, path, body=body,
                              headers=self._headers() if headers is None else headers)
        answer = await exchange(self._client, request, ctx)
        if isinstance(answer, ProviderResult):
            return answer
        if not answer.ok:
            return self._failure(ctx, answer)
        data = self._unwrap(ctx, answer)
        if isinstance(data, ProviderResult):
            return data
        return verdict(answer, data)

    async def _call(
        self, ctx: CallContext, method: str, path: str, verdict: SnapshotVerdict, *,
        currency: str, body: Any = None, headers: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        """``_send``, reading the data as a snapshot first: one we cannot read is ``malformed``."""

        def judge(answer: Answer, data: Any) -> ProviderResult:
            """Parse the snapshot, then let ``verdict`` say what it means."""
            snap = self._parse_snapshot(data, currency)
            if isinstance(snap, str):
                return malformed(ctx, answer, snap)
            return verdict(answer, snap)

        return await self._send(ctx, method, path, judge, body=body, headers=headers)

    def _failure(self, ctx: CallContext, answer: Answer) -> ProviderResult:
        """Classify a non-2xx answer: shared statuses, then the provider's own, then 4xx REJECTED.

        What every provider means the same way (401/403, 408, 429, 5xx) comes first;
        ``_known_failure`` then decides the statuses only this provider gives a
        meaning; any other 4xx is REJECTED, and anything else an unusable answer.
        """
        code, text, rid = self._error_fields(answer)
        generic = generic_http_failure(ctx, answer, code=code, text=text, request_id=rid)
        if generic is not None:
            return generic
        known = self._known_failure(ctx, answer, code, text, rid)
        if known is not None:
            return known
        if 400 <= answer.status < 500:
            return ctx.answered(Outcome.REJECTED, f"refused ({code or 'no code'}): "
                                f"{text or 'no message'}", answer, provider_code=code,
                                request_id=rid)
        return malformed(ctx, answer, "unexpected HTTP status", provider_code=code,
                         request_id=rid)

    # ------------------------------------------------------------------ hooks

    def _headers(self) -> dict[str, str]:
        """The headers of every request: JSON both ways and our User-Agent (hook: add auth)."""
        return {"Content-Type": "application/json", "Accept": "application/json",
                "User-Agent": self._settings.user_agent}

    @abc.abstractmethod
    def _status_route(self, order_id: str) -> tuple[str, str, Any]:
        """Method, path and body of the status read of ``order_id``."""

    @abc.abstractmethod
    def _parse_snapshot(self, data: Any, currency: str) -> ProviderSnapshot | str:
        """The provider's data as a snapshot; a string explains why it could not be read."""

    @abc.abstractmethod
    async def _capture(
        self, ctx: CallContext, ref: AuthRef, amount: int, idempotency_key: str, *, final: bool
    ) -> ProviderResult:
        """Send the capture of an amount already checked to be sendable."""

    @abc.abstractmethod
    async def _cancel(self, ctx: CallContext, ref: AuthRef, idempotency_key: str) -> ProviderResult:
        """Send the release of what is still open."""

    def _unwrap(self, ctx: CallContext, answer: Answer) -> Any:
        """The provider's data in a 2xx answer: its JSON body, unless a subclass knows better.

        A ProviderResult instead when the 2xx is itself a failure (an envelope that
        says so, a signature that does not verify, no data at all).
        """
        return answer.data

    def _error_fields(self, answer: Answer) -> tuple[str | None, str, str | None]:
        """The provider's error code, message and request id in a non-2xx answer.

        By default none is known but the request id from the headers.
        """
        return None, "", answer.request_id

    def _known_failure(
        self, ctx: CallContext, answer: Answer, code: str | None, text: str, rid: str | None,
    ) -> ProviderResult | None:
        """A non-2xx this provider gives a meaning of its own; None leaves it to the shared rules.

        Typically: a request still in flight, an effect already there, the check's "not found".
        """
        return None

    # ------------------------------------------------------------------ refusals before sending

    def _refuse_currency(self, ctx: CallContext, currency: str) -> ProviderResult | None:
        """REJECTED, before any request, for a currency we cannot represent exactly."""
        try:
            exponent(currency)
        except CurrencyError as exc:
            return ctx.result(Outcome.REJECTED, f"nothing sent: {exc}",
                              provider_code="currency")
        return None

    def _refuse_amount(self, ctx: CallContext, amount: int) -> ProviderResult | None:
        """REJECTED, before any request, for an amount that is not positive minor units."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return ctx.result(Outcome.REJECTED,
                              f"nothing sent: capture amount must be a positive integer of "
                              f"minor units, got {amount!r}", provider_code="amount")
        return None
