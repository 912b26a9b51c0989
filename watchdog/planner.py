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
from watchdog.accounts import DEFAULT_ACCOUNT
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
        self._rules: dict[tuple[ProviderName, str], ProviderRules] = {}
        self._policies: dict[tuple[ProviderName, str], PolicySettings] = {}

    def rules(self, provider: ProviderName, account: str = DEFAULT_ACCOUNT) -> ProviderRules:
        """The provider's capture rules with the account's configured window (the
        registry's); the provider's window for an account no longer configured."""
        key = (provider, account)
        found = self._rules.get(key)
        if found is None:
            found = registry.rules(provider, self.config.settings_of(provider, account))
            self._rules[key] = found
        return found

    def policy(self, provider: ProviderName, account: str = DEFAULT_ACCOUNT) -> PolicySettings:
        """The policy in force for the provider account (its own, the provider's, else the
        global one)."""
        key = (provider, account)
        found = self._policies.get(key)
        if found is None:
            found = self.config.policy_for(provider, account)
            self._policies[key] = found
        return found

    def _rules_of(self, auth: AuthorizationSnapshot) -> ProviderRules:
        return self.rules(auth.provider, auth.account)

    def _policy_of(self, auth: AuthorizationSnapshot) -> PolicySettings:
        return self.policy(auth.provider, auth.account)

    def timeline(self, auth: AuthorizationSnapshot) -> Timeline:
        """The authorization's alert/act/critical/guard instants and its deadline."""
        return policy.timeline(auth, self._rules_of(auth), self._policy_of(auth))

    def decide(self, auth: AuthorizationSnapshot, now: dt.datetime) -> Decision:
        """What must happen to ``auth`` at ``now`` and when to look again."""
        return policy.plan(auth, self._rules_of(auth), self._policy_of(auth), now)

    def replan(self, auth: AuthorizationSnapshot, now: dt.datetime) -> Replan:
        """The deadline and the next instant to store for ``auth`` as it stands at ``now``."""
        rules, settings = self._rules_of(auth), self._policy_of(auth)
        tl = policy.timeline(auth, rules, settings)
        decision = policy.plan(auth, rules, settings, now)
        return Replan(tl.deadline, tl.deadline_source, decision.next_action_at)

    def on_deadline(self, auth: AuthorizationSnapshot) -> OnDeadline:
        """What happens at the deadline: instruction, then the authorization's own, then
        the provider's policy."""
        return policy.effective_on_deadline(auth, self._policy_of(auth))

    def open_amount(self, auth: AuthorizationSnapshot) -> int:
        """What may still be captured (minor units) under the provider's rules."""
        return policy.open_amount(auth, self._rules_of(auth))

    def capture_target(self, auth: AuthorizationSnapshot) -> int:
        """How much the deadline capture would take now (minor units; 0 = nothing)."""
        return policy.capture_target(auth, self._rules_of(auth))

    def validate_instruction(
        self,
        auth: AuthorizationSnapshot,
        kind: InstructionKind,
        amount: int | None,
        final: bool,
    ) -> None:
        """Refuse an instruction the provider's rules or the open amount cannot honour."""
        policy.validate_instruction(auth, self._rules_of(auth), kind, amount, final)
