"""Several merchant accounts per provider in the sandbox (issue 19).

The account ``default`` is served where each dialect always was (``/<mount>``), with the
dialect's well-known test credentials. Any other account ``A`` is served under
``/accounts/A/<mount>``, with credentials of its own derived from the dialect's
(``for_account``): a request to one account carrying another account's credentials is
refused exactly as wrong credentials are. Each account has its own orders (the same order
id in two accounts is two orders) and its own idempotency keys.

``account_env(provider, account)`` is that account's credentials under the watchdog's
variable names (``WATCHDOG_<PROVIDER>_<ACCOUNT>_...``, ``watchdog.accounts``).
"""

from __future__ import annotations

import contextvars
import zlib

from watchdog.accounts import DEFAULT_ACCOUNT, secret_variable

ACCOUNT: contextvars.ContextVar[str] = contextvars.ContextVar(
    "sandbox_account", default=DEFAULT_ACCOUNT)
"""The merchant account the request being served is addressed to (set by the server)."""

ACCOUNT_PATH = "/accounts/{account}"
"""The path prefix of a named account's copy of every dialect's routes."""


def current() -> str:
    """The account of the request being served (``default`` outside one)."""
    return ACCOUNT.get()


def prefix(account: str) -> str:
    """The path prefix of ``account``'s routes ('' for ``default``)."""
    return "" if account == DEFAULT_ACCOUNT else f"/accounts/{account}"


def for_account(value: str, account: str | None = None) -> str:
    """The sandbox's test credential ``value`` as ``account`` (the current request's) has it:
    the value itself for ``default``; a numeric id gets four digits of the account's name
    appended, anything else ``-<account>``."""
    account = current() if account is None else account
    if account == DEFAULT_ACCOUNT:
        return value
    if value.isdigit():
        return f"{value}{zlib.crc32(account.encode()) % 9000 + 1000}"
    return f"{value}-{account}"


def account_env(provider: str, account: str) -> dict[str, str]:
    """``account``'s sandbox credentials, by the variable the watchdog reads them from."""
    from watchdog.sandbox.dialect import dialect

    return {secret_variable(variable, provider, account): for_account(value, account)
            for variable, value in dialect(provider).credentials.items()}


def scoped(scope: str) -> str:
    """An idempotency or in-flight scope of the current account (``scope`` for default)."""
    account = current()
    return scope if account == DEFAULT_ACCOUNT else f"{scope}@{account}"
