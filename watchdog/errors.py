"""The watchdog's error tree. Each message reads like a sentence to the operator."""

from __future__ import annotations


class WatchdogError(Exception):
    """Something went wrong in the watchdog."""


class ConfigError(WatchdogError):
    """The configuration is invalid; the message names the key and the problem."""


class ValidationError(WatchdogError):
    """A record was rejected; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class ConflictError(WatchdogError):
    """The same (provider, order_id) is already registered with different data."""

    def __init__(self, provider: str, order_id: str, differences: dict[str, tuple[object, object]]):
        self.provider = provider
        self.order_id = order_id
        self.differences = differences
        detail = ", ".join(
            f"{k}: stored {a!r}, given {b!r}" for k, b_a in differences.items() for a, b in [b_a]
        )
        super().__init__(
            f"{provider} order {order_id} is already registered with different data ({detail})"
        )


class NotFoundError(WatchdogError):
    """No authorization with that id."""


class TransitionError(WatchdogError):
    """A state transition was refused because the row was not in an allowed state or lease."""

    def __init__(self, authorization_id: int, wanted: str, reason: str) -> None:
        self.authorization_id = authorization_id
        self.wanted = wanted
        self.reason = reason
        super().__init__(f"authorization {authorization_id}: cannot move to {wanted}: {reason}")


class InstructionError(WatchdogError):
    """A merchant instruction cannot be honoured (amount, provider rules, state)."""


class InstructionRefused(InstructionError):
    """The authorization is not open (an action in flight, or final): refused and audited."""


class AuditIntegrityError(WatchdogError):
    """The audit chain does not verify: a row was edited, deleted or reordered."""


class DatabaseUnavailable(WatchdogError):
    """The database could not be reached; the pass backs off and retries."""
