"""Guard rails before money moves: one class each, that both decides and explains.

A guard rail holds back a capture or cancel the planner decided on (dry run, a pause, the
per-pass action budgets, the amount limit). Each one is a ``GuardRail`` whose ``check`` is
the decision the scan takes (``watchdog.scan.guards.guard_rail``) and whose ``describe``
is the line ``explain`` prints, both read from the same ``Situation``, so the two cannot
drift apart. ``GUARD_RAILS`` is the one list both loop over; a new guard rail is one class
here (with its config key in ``PolicySettings``) and its tests. Pure: no I/O, no clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from watchdog.accounts import DEFAULT_ACCOUNT
from watchdog.config import PolicySettings
from watchdog.controls import GLOBAL, Pause, pause_for
from watchdog.domain import ActionKind, ProviderName
from watchdog.money import format_money


class Hold(NamedTuple):
    """Why an action must wait."""

    event: str  # "would" (dry run), "held" (on-call is alerted), "deferred" (budget)
    reason: str
    retry_later: bool  # look again after a scan interval; False gives the row up this pass


@dataclass(frozen=True, slots=True)
class Situation:
    """What the guard rails look at for one authorization, read by the caller."""

    authorization_id: int
    provider: ProviderName
    currency: str
    policy: PolicySettings  # the provider's policy
    global_policy: PolicySettings
    dry_run: bool  # the run's own switch: the scan's --dry-run, or the global policy's
    pauses: dict[str, Pause]
    actions_this_pass: Mapping[str, int]  # actions charged this pass, by provider
    approved: Callable[[], bool]  # an operator approved an above-limit capture (read lazily)
    account: str = DEFAULT_ACCOUNT  # the merchant account at the provider


class GuardRail(ABC):
    """One guard rail: ``check`` holds an action back (or lets it go with None),
    ``describe`` says in one line for ``explain`` how it stands (None: not in force).
    Both are abstract, so a rail that decides without explaining cannot be built."""

    #: Short name, for logs and tests.
    name: str = "guard rail"
    #: Where ``explain`` lists this rail (lower first); the scan checks in list order.
    explain_rank: int = 100

    @abstractmethod
    def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
        """Why ``kind`` of ``amount`` (minor units) must wait now, or None to let it go."""

    @abstractmethod
    def describe(self, s: Situation) -> str | None:
        """The rail as it stands for this authorization, or None when it is not in force."""

    def remedy(self, s: Situation) -> str | None:
        """What an operator can do to lift the rail (for ``explain``), if anything."""
        return None


class DryRun(GuardRail):
    """``dry_run`` (global, per provider, or the scan's ``--dry-run``): audit "would"."""

    name = "dry_run"
    explain_rank = 20

    def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
        """A dry run lets nothing move; the scan audits what it would have done."""
        if s.dry_run or s.policy.dry_run:
            return Hold("would", f"dry run: would {kind} {amount or ''}".strip(), True)
        return None

    def describe(self, s: Situation) -> str | None:
        """Says that nothing will move while a dry run is on."""
        if s.dry_run or s.policy.dry_run:
            return "dry_run is on: nothing will move"
        return None


class Paused(GuardRail):
    """An operator's pause (``expiry-watchdog pause``): global, per provider or per account."""

    name = "pause"
    explain_rank = 10

    def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
        """A pause holds money back and tells on-call; the row is tried again later."""
        paused = pause_for(s.pauses, s.provider, s.account)
        if paused is None:
            return None
        scope = "all providers" if paused.scope == GLOBAL else paused.scope
        return Hold("held", f"{scope} paused by {paused.actor}: {paused.reason}", True)

    def describe(self, s: Situation) -> str | None:
        """Who paused what, since when, and why."""
        paused = pause_for(s.pauses, s.provider, s.account)
        if paused is None:
            return None
        return (
            f"PAUSED ({paused.scope}) by {paused.actor} since "
            f"{paused.since.isoformat()}: {paused.reason}"
        )

    def remedy(self, s: Situation) -> str | None:
        """The resume command for the pause in force."""
        paused = pause_for(s.pauses, s.provider, s.account)
        if paused is None:
            return None
        return f"`expiry-watchdog resume --provider {paused.scope}` lets money move"


class ActionBudget(GuardRail):
    """``max_actions_per_pass``, global and per provider: the rest waits for a later pass."""

    name = "max_actions_per_pass"
    explain_rank = 40

    def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
        """Defers an action once this pass has used up the global or the provider budget."""
        budget = s.global_policy.max_actions_per_pass
        if budget is not None and sum(s.actions_this_pass.values()) >= budget:
            return Hold("deferred", f"action budget of {budget} per pass used up", False)
        provider_budget = s.policy.max_actions_per_pass
        if provider_budget is not None and s.actions_this_pass.get(s.provider, 0) >= (
            provider_budget
        ):
            return Hold(
                "deferred", f"{s.provider} action budget of {provider_budget} used up", False
            )
        return None

    def describe(self, s: Situation) -> str | None:
        """The provider's budget, when any budget is set."""
        if (
            s.policy.max_actions_per_pass is not None
            or s.global_policy.max_actions_per_pass is not None
        ):
            return f"max_actions_per_pass {s.policy.max_actions_per_pass}"
        return None


class CaptureLimit(GuardRail):
    """``max_capture_amount``: a larger automatic capture waits for an operator's approval."""

    name = "max_capture_amount"
    explain_rank = 30

    def check(self, s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
        """Holds a capture above the limit until ``expiry-watchdog approve`` allows it."""
        limit = s.policy.max_capture_amount
        if (
            kind is ActionKind.CAPTURE
            and limit is not None
            and (amount or 0) > limit
            and not s.approved()
        ):
            return Hold(
                "held",
                f"capture of {format_money(amount or 0, s.currency)} exceeds "
                f"max_capture_amount {format_money(limit, s.currency)}; "
                f"approve with `expiry-watchdog approve {s.authorization_id}`",
                True,
            )
        return None

    def describe(self, s: Situation) -> str | None:
        """The limit, and whether this authorization is approved above it."""
        limit = s.policy.max_capture_amount
        if limit is None:
            return None
        return f"max_capture_amount {limit}: " + (
            "approved for this authorization"
            if s.approved()
            else f"a larger capture waits for `expiry-watchdog approve {s.authorization_id}`"
        )


GUARD_RAILS: list[GuardRail] = [DryRun(), Paused(), ActionBudget(), CaptureLimit()]
"""Every guard rail, in the order the scan checks them: the first that holds wins (a dry
run audits "would" even while paused; a used-up budget defers before the amount limit)."""


def first_hold(s: Situation, kind: ActionKind, amount: int | None) -> Hold | None:
    """The hold of the first guard rail that stops ``kind`` of ``amount``; None lets it go."""
    for rail in GUARD_RAILS:
        held = rail.check(s, kind, amount)
        if held is not None:
            return held
    return None


def in_explain_order() -> Iterator[GuardRail]:
    """Every guard rail, in the order ``explain`` lists them."""
    return iter(sorted(GUARD_RAILS, key=lambda rail: rail.explain_rank))


def descriptions(s: Situation) -> list[str]:
    """One line per guard rail in force for this authorization, for ``explain``."""
    return [line for rail in in_explain_order() if (line := rail.describe(s)) is not None]


def remedies(s: Situation) -> list[str]:
    """What an operator can do about the guard rails in force, for ``explain``."""
    return [fix for rail in in_explain_order() if (fix := rail.remedy(s)) is not None]
