"""The HTTP boundary shared by every adapter: one client, one send, one failure taxonomy.

``transport`` sends and classifies (no answer, a non-2xx, an unreadable 2xx);
``adapter`` is the ``HttpAdapter`` pipeline the provider modules build on. Every
name is importable from here.
"""

from watchdog.providers.http.adapter import (
    CHECK_ORDER_ID,
    HttpAdapter,
    SnapshotVerdict,
    Verdict,
    basic_authorization,
    bounded_key,
    iso_to_utc,
    minor_units,
    ms_epoch_to_utc,
    seg,
)
from watchdog.providers.http.transport import (
    MONEY_OPERATIONS,
    RAW_TEXT_LIMIT,
    REQUEST_ID_HEADERS,
    Answer,
    CallContext,
    exchange,
    generic_http_failure,
    log,
    make_http_client,
    malformed,
    never_connected,
    parse_retry_after,
    redact_value,
    timeout_for,
    transport_failure,
)

__all__ = [
    "CHECK_ORDER_ID",
    "MONEY_OPERATIONS",
    "RAW_TEXT_LIMIT",
    "REQUEST_ID_HEADERS",
    "Answer",
    "CallContext",
    "HttpAdapter",
    "SnapshotVerdict",
    "Verdict",
    "basic_authorization",
    "bounded_key",
    "exchange",
    "generic_http_failure",
    "iso_to_utc",
    "log",
    "make_http_client",
    "malformed",
    "minor_units",
    "ms_epoch_to_utc",
    "never_connected",
    "parse_retry_after",
    "redact_value",
    "seg",
    "timeout_for",
    "transport_failure",
]
