"""Database failures as one sentence an operator can act on, with no secret in it.

SQLAlchemy's messages quote the statement and its parameters and end in a link; a
driver's message may quote the connection string. Everything that leaves the process
about a database failure (CLI errors, ``check``, ``/readyz``, logs) goes through
``describe``: it names the host and port (or the SQLite file), keeps the driver's first
line, and removes the password in every spelling it could appear in (raw, percent-escaped,
form-escaped).
"""

from __future__ import annotations

import urllib.parse

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

REDACTED = "***"
DEFAULT_PORTS = {"postgresql": 5432}


def parse(url: str | URL) -> URL | None:
    """``url`` as a SQLAlchemy URL, or None when it does not parse."""
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def safe_url(url: str | URL) -> str:
    """The URL with its password masked (``***``); ``<unparsable URL>`` when it is not one."""
    parsed = parse(url)
    return parsed.render_as_string(hide_password=True) if parsed else "<unparsable URL>"


def where(url: str | URL) -> str:
    """Where the database lives, for a sentence: ``host:port``, the socket, or the file."""
    parsed = parse(url)
    if parsed is None:
        return "the configured database"
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return f"the SQLite file {parsed.database or ':memory:'}"
    port = parsed.port or DEFAULT_PORTS.get(backend)
    if not parsed.host:
        return f"the local socket (port {port}) of {backend}" if port else "the local socket"
    return f"{parsed.host}:{port}" if port else parsed.host


def secrets_of(url: str | URL) -> list[str]:
    """Every spelling of the URL's password that could appear in a message."""
    parsed = parse(url)
    spellings: set[str] = set()
    if parsed is not None and parsed.password:
        password = str(parsed.password)
        spellings |= {password, urllib.parse.quote(password, safe=""),
                      urllib.parse.quote_plus(password), urllib.parse.quote(password)}
    elif parsed is None and isinstance(url, str) and "@" in url:
        # Unparsable but shaped like user:password@: hide what sits between ':' and '@'.
        userinfo = url.split("@", 1)[0].rsplit("/", 1)[-1]
        if ":" in userinfo:
            raw = userinfo.split(":", 1)[1]
            spellings |= {raw, urllib.parse.unquote(raw)}
    return sorted((s for s in spellings if s), key=len, reverse=True)


def redact(text: str, url: str | URL) -> str:
    """``text`` with every spelling of the URL's password replaced by ``***``."""
    for secret in secrets_of(url):
        text = text.replace(secret, REDACTED)
    return text


def _first_line(value: object) -> str:
    text = str(value).strip()
    line = text.splitlines()[0].strip() if text else ""
    return line or type(value).__name__


def reason(exc: BaseException) -> str:
    """The driver's own first line (without SQLAlchemy's statement, parameters and link)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return _first_line(exc.orig)
    text = _first_line(exc)
    return text.split(" (Background on this error at:")[0]


def describe(exc: BaseException, url: str | URL | None) -> str:
    """One sentence for a database failure, naming where and why, with no password in it.

    ``url`` is the configured one (None when unknown: the sentence then says so).
    """
    if url is None:
        return f"the configured database failed: {reason(exc)}"
    place = where(url)
    if isinstance(exc, (ArgumentError, NoSuchModuleError)) or parse(url) is None:
        sentence = f"the database URL {safe_url(url)} is not usable: {reason(exc)}"
    elif isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or type(exc).__name__ in ("OperationalError", "InterfaceError")
    ):
        sentence = f"cannot use the database at {place}: {reason(exc)}"
    elif isinstance(exc, SQLAlchemyError):
        sentence = f"the database at {place} failed: {reason(exc)}"
    else:
        sentence = f"cannot use the database at {place}: {type(exc).__name__}: {reason(exc)}"
    return redact(sentence, url)
