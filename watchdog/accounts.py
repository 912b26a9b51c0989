"""Merchant accounts at a provider: the name rule, the secrets naming rule, where an account's
settings live in the configuration.

A team rarely has one account per provider (two brands, two JPMMPS merchant keys; a Flitt
``merchant_id`` per shop; a UK and an Australian Clearpay merchant). Each account is its own
world at the provider: its own credentials, window, limits and base URL. In the
configuration an account is ``[providers.<name>.accounts.<account>]`` and inherits what it
does not set from ``[providers.<name>]``; a provider section with no ``accounts`` is the one
account ``default``, so a configuration written before accounts existed means what it meant.

Secrets of an account come from the environment (or systemd credentials) under the
provider's variable with the account's name after the provider's:
``WATCHDOG_FLITT_SECRET_KEY`` of account ``ge-shop`` is ``WATCHDOG_FLITT_GE_SHOP_SECRET_KEY``
(upper case, ``-`` as ``_``). The account ``default`` reads the provider's variables as they
are.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from watchdog.errors import ValidationError

if TYPE_CHECKING:
    from watchdog.config import Config

DEFAULT_ACCOUNT = "default"
"""The account of a provider section without ``accounts``, and of a registration that names none."""

ACCOUNT_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
"""An account name: 1-32 lower-case letters, digits and ``-``, not starting with ``-``.

No ``_`` and no upper case, so the name maps to exactly one environment-variable infix."""

ACCOUNT_RULE = "1-32 lower-case letters, digits and '-', starting with a letter or digit"


def account_problem(name: object) -> str | None:
    """Why ``name`` cannot be an account name (None: it can)."""
    if not isinstance(name, str) or not ACCOUNT_PATTERN.fullmatch(name):
        return f"{name!r} is not an account name ({ACCOUNT_RULE})"
    return None


def parse_account(value: object, field: str = "account") -> str:
    """A registration's account: ``default`` when empty, else a valid name (ValidationError)."""
    if value is None or value == "":
        return DEFAULT_ACCOUNT
    text = str(value).strip()
    problem = account_problem(text)
    if problem is not None:
        raise ValidationError(field, problem)
    return text


def secret_variable(variable: str, provider: str, account: str) -> str:
    """The environment variable (and systemd credential name) of ``variable`` for ``account``.

    ``secret_variable("WATCHDOG_FLITT_SECRET_KEY", "flitt", "ge-shop")`` is
    ``WATCHDOG_FLITT_GE_SHOP_SECRET_KEY``; the ``default`` account's is ``variable`` itself.
    """
    if account == DEFAULT_ACCOUNT:
        return variable
    infix = account.upper().replace("-", "_")
    prefix = f"WATCHDOG_{provider.upper()}_"
    if variable.startswith(prefix):
        return f"{prefix}{infix}_{variable[len(prefix):]}"
    return f"{variable}_{infix}"  # a provider whose variables do not follow the prefix rule


def where(provider: str, account: str) -> str:
    """The configuration path of an account, for messages: ``providers.flitt.accounts.ge-shop``
    (``providers.flitt`` for the implicit ``default``)."""
    if account == DEFAULT_ACCOUNT:
        return f"providers.{provider}"
    return f"providers.{provider}.accounts.{account}"


def label(provider: str, account: str) -> str:
    """How an account is named in human text: ``flitt`` or ``flitt/ge-shop``."""
    return provider if account == DEFAULT_ACCOUNT else f"{provider}/{account}"


def parse_target(text: str) -> tuple[str, str | None]:
    """``flitt``: (``flitt``, None), every account; ``flitt/ge-shop``: that one account."""
    provider, sep, account = text.partition("/")
    return provider, (account if sep else None)


def require_account(config: Config, provider: str, account: str) -> None:
    """ValidationError on ``account`` unless the provider has that account configured."""
    from watchdog.domain import ProviderName

    known = config.accounts_of(ProviderName(provider))
    if account not in known:
        raise ValidationError(
            "account", f"{account!r} is not a configured {provider} account "
            f"(configured: {', '.join(known)})")
