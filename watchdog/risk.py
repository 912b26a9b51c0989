"""What the authorizations themselves say is at risk, judged with the caller's clock.

``check`` is the second line of defence: it must not believe the scanner's alerts, so it
reads the deadlines and states and judges them here. Each problem is one WHERE
(``clauses``) that ``read_risk`` counts with range queries on
``ix_authorizations_state_deadline`` (state, deadline), so its cost follows the rows near
their deadline, not the table, and no row is loaded to be judged in Python.

States are matched generically: any state not final is open, and any state whose name
starts with ``confirming`` is a capture or cancel the provider accepted but has not yet
confirmed (a state the provider-answer work adds), so a new confirming state is judged
without a change here.

Merchant accounts (issue 19): a row is judged with its own account's leads when that
account overrides its provider's (``account_overrides``), else with the provider's; the
few example ids in the status line name their account (``#4 flitt/ge-shop``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, exists, func, literal, not_, select
from sqlalchemy.orm import Session

from watchdog.accounts import DEFAULT_ACCOUNT, label
from watchdog.alerts.outbox import AlertKind, AlertStatus, dedup_key
from watchdog.config import Config, PolicySettings
from watchdog.domain import FINAL_STATES, OnDeadline, ProviderName, State
from watchdog.models import Alert, Authorization

CONFIRMING_PREFIX = "confirming"
IN_FLIGHT_STATES = frozenset({State.CAPTURING.value, State.CANCELING.value})
EXAMPLES = 5  # ids named per problem in the status line


def is_confirming(state: str) -> bool:
    """A capture or cancel the provider accepted and we are waiting for it to confirm."""
    return state.startswith(CONFIRMING_PREFIX)


def is_in_flight(state: str) -> bool:
    """A capture or cancel request is at the provider (sent, or accepted and confirming)."""
    return state in IN_FLIGHT_STATES or is_confirming(state)


@dataclass(frozen=True, slots=True)
class Found:
    """How many authorizations have one problem, and the smallest few ids to look at.

    ``accounts`` names, by id, the provider account (``flitt/ge-shop``) of each example
    that belongs to a named merchant account; a row of a provider without accounts
    (account ``default``) is named by its id alone, so a one-account configuration reads
    as it did before accounts existed.
    """

    count: int = 0
    ids: list[int] = field(default_factory=list)
    accounts: dict[int, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        """``3 (#4, #9 flitt/ge-shop, #12)``."""
        more = ", ..." if self.count > len(self.ids) else ""
        named = ", ".join(f"#{i} {self.accounts[i]}" if i in self.accounts else f"#{i}"
                          for i in self.ids)
        return f"{self.count} ({named}{more})"


@dataclass
class Risk:
    """The authorizations that need a human, by reason (see ``clauses``)."""

    past_deadline: Found = field(default_factory=Found)
    critical_window: Found = field(default_factory=Found)
    alert_window: Found = field(default_factory=Found)
    confirming: Found = field(default_factory=Found)
    expired_unacknowledged: Found = field(default_factory=Found)
    needs_attention: int = 0

    def critical(self) -> list[str]:
        """The problems that page."""
        out = []
        if self.past_deadline:
            out.append(f"{self.past_deadline} open past the deadline")
        if self.critical_window:
            out.append(f"{self.critical_window} inside critical_lead with no capture or "
                       "cancel in flight")
        if self.expired_unacknowledged:
            out.append(f"{self.expired_unacknowledged} expired, unacknowledged")
        if self.needs_attention:
            out.append(f"{self.needs_attention} need attention")
        return out

    def warning(self) -> list[str]:
        """The problems that notify."""
        out = []
        if self.alert_window:
            out.append(f"{self.alert_window} alert-only inside alert_lead")
        if self.confirming:
            out.append(f"{self.confirming} pending provider confirmation")
        return out


def open_states() -> list[str]:
    """Every state that is not final (new states are open until declared final)."""
    return [s.value for s in State if s not in FINAL_STATES]


def idle_states() -> list[str]:
    """Open states in which nothing is at the provider: something must still act."""
    return [s for s in open_states() if not is_in_flight(s) and s != State.NEEDS_ATTENTION.value]


def confirming_range() -> ColumnElement[bool]:
    """``state`` starts with ``confirming``, as an index range (LIKE scans on SQLite)."""
    upper = CONFIRMING_PREFIX[:-1] + chr(ord(CONFIRMING_PREFIX[-1]) + 1)
    return and_(Authorization.state >= CONFIRMING_PREFIX, Authorization.state < upper)


def _judged(policy: PolicySettings) -> tuple[dt.timedelta, dt.timedelta, OnDeadline]:
    """The parts of a policy ``check`` judges by: the leads and the default action."""
    return policy.alert_lead, policy.critical_lead, policy.on_deadline


def _provider_policy(config: Config, provider: ProviderName) -> PolicySettings:
    """The provider section's policy: what a row of an account not (or no longer)
    configured plans with (``Config.policy_for``)."""
    return config.providers[provider].policy


def account_overrides(config: Config) -> dict[tuple[ProviderName, str], PolicySettings]:
    """The configured accounts whose policy judges differently from their provider's:
    another alert_lead, critical_lead or on_deadline (``config.policy_for``).

    Only these get clauses of their own, so a configuration whose accounts share their
    provider's policy (or has no accounts) is judged by the same per-provider query as
    before accounts existed.
    """
    found: dict[tuple[ProviderName, str], PolicySettings] = {}
    for provider, accounts in config.accounts.items():
        base = _judged(_provider_policy(config, provider))
        for account in accounts:  # an explicitly configured ``default`` account too
            policy = config.policy_for(provider, account)
            if _judged(policy) != base:
                found[(provider, account)] = policy
    return found


def clauses(now: dt.datetime, config: Config) -> dict[str, ColumnElement[bool]]:
    """What each problem means, as a WHERE on ``authorizations`` judged at ``now`` with each
    provider account's own leads. Every clause is one range on (state, deadline) and a filter.

    - ``past_deadline``: open, not confirming, not needing attention (counted on its own),
      deadline reached;
    - ``critical_window``: idle (nothing in flight) and inside the account's critical_lead;
    - ``alert_window``: idle, alert-only (no instruction; ``on_deadline``, or the account's
      policy, is ``alert``) and inside alert_lead but not yet critical_lead;
    - ``confirming``: accepted by the provider, waiting for it to confirm, any deadline.

    The leads are the provider section's (which a row of an account no longer configured
    plans with too), except for an account that overrides them (``account_overrides``): its
    rows are judged with its own, as the Planner plans them.
    """
    past = [s for s in open_states() if not is_confirming(s) and s != State.NEEDS_ATTENTION.value]
    policies = {p: _provider_policy(config, p) for p in ProviderName}
    overrides = account_overrides(config)

    def per_account(value: Callable[[PolicySettings], Any], type_: Any) -> ColumnElement[Any]:
        # A CASE, not an OR of per-provider ranges: SQLite would run one index range per
        # provider and look every row up four times; this is one range, then a filter.
        by_provider = case(
            {p.value: literal(value(policy), type_) for p, policy in policies.items()},
            value=Authorization.provider,
        )
        if not overrides:
            return by_provider
        return case(
            *[(and_(Authorization.provider == p.value, Authorization.account == account),
               literal(value(policy), type_))
              for (p, account), policy in overrides.items()],
            else_=by_provider,
        )

    def instant(lead: Callable[[PolicySettings], dt.timedelta]) -> ColumnElement[Any]:
        return per_account(lambda p: now + lead(p), Authorization.deadline.type)

    every = [*policies.values(), *overrides.values()]
    default = per_account(lambda p: p.on_deadline.value, Authorization.state.type)
    idle = Authorization.state.in_(idle_states())
    longest_critical = now + max(p.critical_lead for p in every)
    longest_alert = now + max(p.alert_lead for p in every)
    shortest_critical = now + min(p.critical_lead for p in every)
    critical_at = instant(lambda p: p.critical_lead)
    return {
        "past_deadline": and_(Authorization.state.in_(past), Authorization.deadline <= now),
        "critical_window": and_(idle, Authorization.deadline > now,
                                Authorization.deadline <= longest_critical,
                                Authorization.deadline <= critical_at),
        "alert_window": and_(idle, Authorization.deadline > shortest_critical,
                             Authorization.deadline <= longest_alert,
                             Authorization.deadline > critical_at,
                             Authorization.deadline <= instant(lambda p: p.alert_lead),
                             Authorization.instruction.is_(None),
                             func.coalesce(Authorization.on_deadline, default)
                             == OnDeadline.ALERT.value),
        "confirming": confirming_range(),
    }


def _found(session: Session, where: ColumnElement[bool]) -> Found:
    """The count of rows matching ``where`` and its first few ids with their accounts (the
    examples are at most ``EXAMPLES`` rows, read only when there is something to name)."""
    count = session.scalar(select(func.count()).select_from(Authorization).where(where)) or 0
    if not count:
        return Found()
    examples = session.execute(
        select(Authorization.id, Authorization.provider, Authorization.account)
        .where(where).order_by(Authorization.id).limit(EXAMPLES)).all()
    return Found(count, [i for i, _, _ in examples],
                 {i: label(p, a) for i, p, a in examples if a and a != DEFAULT_ACCOUNT})


def read_risk(session: Session, now: dt.datetime, config: Config) -> Risk:
    """Count (and name the first few of, with their accounts) the authorizations behind
    each problem, and the rows needing attention, and the expired rows nobody acknowledged."""
    risk = Risk()
    for name, where in clauses(now, config).items():
        setattr(risk, name, _found(session, where))
    risk.needs_attention = session.scalar(select(func.count()).where(
        Authorization.state == State.NEEDS_ATTENTION.value)) or 0
    # An expired authorization is unacknowledged until an operator acknowledged its
    # authorization_expired alert; one the scanner never alerted about counts too.
    prefix = dedup_key(AlertKind.AUTHORIZATION_EXPIRED, 0).removesuffix("0")
    acknowledged = exists().where(
        Alert.dedup_key == literal(prefix) + cast(Authorization.id, String),
        Alert.status != AlertStatus.FIRING.value,
    )
    unacknowledged = and_(Authorization.state == State.EXPIRED.value, not_(acknowledged))
    risk.expired_unacknowledged = _found(session, unacknowledged)
    return risk
