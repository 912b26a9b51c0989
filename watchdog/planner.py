"""The Planner: timeline, decision and re-planning for one configuration.

``watchdog.policy`` holds the pure functions of (authorization, provider rules, policy,
now); the Planner binds the last two once for a configuration (each provider's rules from
the registry, with the configured window, and each provider's policy) so every caller
(the scan, the service layer, ``explain``, the API) asks the same object instead of
rebuilding that setup. Still pure: no I/O, no clock; ``now`` is an argument.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from watchdog import policy
from watchdog.config import Config, PolicySettings
from watchdog.domain import (
    AuthorizationSnapshot,
    DeadlineSource,
    InstructionKind,
    OnDeadline,
    ProviderName,
)
from watchdog.policy import Decision, Timeline
from watchdog.providers import registry
from watchdog.providers.base import ProviderRules


@dataclass(frozen=True, slots=True)
class Replan:
    """Where an authorization stands after a change: its deadline and the next instant it
    needs attention (None: nothing more to do)."""

    deadline: dt.datetime
    deadline_source: DeadlineSource
    next_action_at: dt.datetime | None

    def columns(self) -> dict[str, Any]:
        """The values as the authorization's column values (what the store writes)."""
        return {
            "deadline": self.deadline,
            "deadline_source": self.deadline_source.value,
            "next_action_at": self.next_action_at,
        }


class Planner:
    """Timeline, decision and re-planning of authorizations under one configuration.

    Built once per process (or per command) from the configuration and passed to whoever
    plans; the rules and policy of each provider are resolved on first use and kept.
    """

    __slots__ = ("_policies", "_rules", "config")

    def __init__(self, config: Config) -> None:
        self.config = config
        self._rules: dict[ProviderName, ProviderRules] = {}
        self._policies: dict[ProviderName, PolicySettings] = {}

    def rules(self, provider: ProviderName) -> ProviderRules:
        """The provider's capture rules with the configured window (the registry's)."""
        found = self._rules.get(provider)
        if found is None:
            found = registry.rules(provider, self.config.providers.get(provider))
            self._rules[provider] = found
        return found

    def policy(self, provider: ProviderName) -> PolicySettings:
        """The policy in force for the provider (its own, else the global one)."""
        found = self._policies.get(provider)
        if found is None:
            found = self.config.policy_for(provider)
            self._policies[provider] = found
        return found

    def timeline(self, auth: AuthorizationSnapshot) -> Timeline:
        """The authorization's alert/act/critical/guard instants and its deadline."""
        return policy.timeline(auth, self.rules(auth.provider), self.policy(auth.provider))

    def decide(self, auth: AuthorizationSnapshot, now: dt.datetime) -> Decision:
        """What must happen to ``auth`` at ``now`` and when to look again."""
        return policy.plan(auth, self.rules(auth.provider), self.policy(auth.provider), now)

    def replan(self, auth: AuthorizationSnapshot, now: dt.datetime) -> Replan:
        """The deadline and the next instant to store for ``auth`` as it stands at ``now``."""
        rules, settings = self.rules(auth.provider), self.policy(auth.provider)
        tl = policy.timeline(auth, rules, settings)
        decision = policy.plan(auth, rules, settings, now)
        return Replan(tl.deadline, tl.deadline_source, decision.next_action_at)

    def on_deadline(self, auth: AuthorizationSnapshot) -> OnDeadline:
        """What happens at the deadline: instruction, then the authorization's own, then
        the provider's policy."""
        return policy.effective_on_deadline(auth, self.policy(auth.provider))

    def open_amount(self, auth: AuthorizationSnapshot) -> int:
        """What may still be captured (minor units) under the provider's rules."""
        return policy.open_amount(auth, self.rules(auth.provider))

    def capture_target(self, auth: AuthorizationSnapshot) -> int:
        """How much the deadline capture would take now (minor units; 0 = nothing)."""
        return policy.capture_target(auth, self.rules(auth.provider))

    def validate_instruction(
        self,
        auth: AuthorizationSnapshot,
        kind: InstructionKind,
        amount: int | None,
        final: bool,
    ) -> None:
        """Refuse an instruction the provider's rules or the open amount cannot honour."""
        policy.validate_instruction(auth, self.rules(auth.provider), kind, amount, final)
