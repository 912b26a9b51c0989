"""Secrets from the environment or systemd credentials, never from files we print or the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

MASK = "********"


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call only at the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """Look ``name`` up in the environment, then in ``$CREDENTIALS_DIRECTORY/name`` (systemd)."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value:
        return Secret(value.strip())
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = Path(cred_dir) / name
        if path.is_file():
            value = path.read_text(encoding="utf-8").strip()
            return Secret(value) if value else None
    return None


def redact(text: str, secrets: Iterable[Secret | str | None]) -> str:
    """Replace every occurrence of every known secret in ``text`` with a mask."""
    for secret in secrets:
        if secret is None:
            continue
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and len(value) >= 3:
            text = text.replace(value, MASK)
    return text
