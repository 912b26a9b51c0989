"""What of a provider's answer the audit keeps: what an auditor needs, no personal data.

The audit table is append-only, so it cannot honour an erasure request: nothing personal
may go in. Per provider, an allow-list names the fields kept from an answer — state,
amounts, currency, expiry, the provider's ids and codes — at any depth; everything else
(the consumer's name, e-mail, phone, address, card fragments, free text) is dropped. A
SHA-256 digest and the size of the whole answer stay, so the kept view can be matched
against the provider's own records without storing them. The kept view is capped in
size (strings, lists, total).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from watchdog.providers import registry

# Keys kept from every provider's answers: the error bodies and transport notes every
# adapter records, plus each provider's own ``SPEC.evidence_keys``. A key listed here is
# kept wherever it appears; its value is kept if it is a number, a boolean, a short
# string, or a dict/list filtered the same way.
COMMON = frozenset({"exception", "error_code", "errorCode", "errorId", "code", "status",
                    "httpStatusCode", "currency", "amount"})
MAX_STRING = 128
MAX_ITEMS = 20
MAX_BYTES = 2048


def _keep(value: Any, allowed: frozenset[str]) -> Any:
    """``value`` with every key not in ``allowed`` dropped, strings and lists capped."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…"
    if isinstance(value, dict):
        return {k: _keep(v, allowed) for k, v in value.items()
                if isinstance(k, str) and k in allowed}
    if isinstance(value, list):
        return [_keep(v, allowed) for v in value[:MAX_ITEMS]]
    return None  # anything else is not evidence


def digest(raw: Any) -> str:
    """SHA-256 of the answer as kept by the adapter (canonical JSON, or its text)."""
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True,
                                                        separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def evidence(provider: str, raw: Any) -> dict[str, Any]:
    """The audit's view of one provider answer: ``answer`` (the allow-listed fields),
    ``answer_sha256`` and ``answer_bytes`` of the whole answer."""
    if raw is None:
        return {"answer": None}
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True,
                                                        separators=(",", ":"), default=str)
    try:
        allowed = COMMON | registry.spec(provider).evidence_keys
    except ValueError:
        allowed = COMMON
    kept = None if isinstance(raw, str) else _keep(raw, allowed)  # free text: digest only
    if kept is not None and len(json.dumps(kept, default=str)) > MAX_BYTES:
        kept = {"truncated": True}
    return {"answer": kept, "answer_sha256": digest(raw), "answer_bytes": len(text.encode())}


def capped_message(message: str, limit: int = 300) -> str:
    """A provider-derived message, capped."""
    return message if len(message) <= limit else message[:limit] + "…"
