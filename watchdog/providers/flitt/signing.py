"""Flitt's request/response signature (providers.md §3).

``sha1(secret | values ordered by parameter name)``, lower-case hex. Absent and empty
values are skipped entirely (no ``||``); 0 is a value; ``signature`` and
``response_signature_string`` never take part. SHA-1 is Flitt's wire format, not
our choice.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from watchdog.secrets import Secret

EXCLUDED = frozenset({"signature", "response_signature_string"})


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flitt_signature_string(params: Mapping[str, Any], secret: Secret | str) -> str:
    """The string that is hashed (contains the secret: never log it)."""
    key = secret.reveal() if isinstance(secret, Secret) else secret
    values = [
        _text(params[name]) for name in sorted(params)
        if name not in EXCLUDED and params[name] is not None and _text(params[name]) != ""
    ]
    return "|".join([key, *values])


def flitt_signature(params: Mapping[str, Any], secret: Secret | str) -> str:
    """Lower-case SHA-1 hex of ``secret|sorted values``."""
    text = flitt_signature_string(params, secret)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 (Flitt's wire format)


def verify_flitt_signature(params: Mapping[str, Any], secret: Secret | str) -> bool:
    """True when ``params['signature']`` matches the other parameters (constant-time compare)."""
    given = params.get("signature")
    if not isinstance(given, str) or not given:
        return False
    expected = flitt_signature(params, secret)
    return hmac.compare_digest(given.lower(), expected)
