"""What every command module shares: the context object (``Ctx``), who runs the command
(``operator``), and how a failure prints (``error_report``, ``fail``, ``friendly_errors``).

The command modules (``app``, ``api``, ``oncall``, ``control``) import this one and never
each other, so any of them can be loaded first.
"""

from __future__ import annotations

import os
import pwd
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, NoReturn, ParamSpec, TypeVar, cast

import click
from sqlalchemy.exc import SQLAlchemyError

from watchdog import service
from watchdog.config import Config, load_config
from watchdog.errors import WatchdogError

P = ParamSpec("P")
_ALWAYS_EXPECTED: tuple[type[Exception], ...] = (
    WatchdogError, SQLAlchemyError, FileNotFoundError, ValueError, OSError,
)


def expected_errors() -> tuple[type[Exception], ...]:
    """What a command reports as a sentence; anything else is a bug and shows its traceback.

    Alembic's ``CommandError`` is one only once alembic is loaded (by the ``db`` commands):
    nothing else can raise it, and a timer's ``scan`` should not pay for importing alembic.
    """
    util = sys.modules.get("alembic.util")
    if util is None:
        return _ALWAYS_EXPECTED
    return (*_ALWAYS_EXPECTED, cast(type[Exception], util.CommandError))
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_REJECTED = 3


class Ctx:
    """What every command gets: the config (loaded lazily) and verbosity."""

    def __init__(self, config_path: str | None, verbose: bool) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._config: Config | None = None
        self._engine: Any = None

    @property
    def config(self) -> Config:
        """The validated configuration (ConfigError on the first problem)."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def engine(self) -> Any:
        """The engine on the configured database, made on first use and disposed when the
        command ends (its connections closed, not left to the garbage collector)."""
        if self._engine is None:
            self._engine = service.open_engine(self.config)
            context = click.get_current_context(silent=True)
            if context is not None:
                context.find_root().call_on_close(self._engine.dispose)
        return self._engine


def operator(environ: Mapping[str, str] | None = None, uid: int | None = None) -> str:
    """Who runs this CLI command, for the audit trail: the account of the real uid (not
    ``$LOGNAME``/``$USER``, which anyone can set), plus the invoking account when sudo ran
    it (``cli:root@host(sudo:alice)``). The sudo part is a claim of the environment; the
    account before it is the kernel's."""
    env = os.environ if environ is None else environ
    real = os.getuid() if uid is None else uid
    actor = f"cli:{_account(real)}@{os.uname().nodename}"
    sudo_uid = env.get("SUDO_UID", "")
    if sudo_uid.isdigit() and int(sudo_uid) != real:
        actor += f"(sudo:{_account(int(sudo_uid))})"
    elif env.get("SUDO_USER") and not sudo_uid:
        name = env["SUDO_USER"]
        if re.fullmatch(r"[A-Za-z0-9._-]{1,32}", name) and name != _account(real):
            actor += f"(sudo:{name})"
    return actor


def _account(uid: int) -> str:
    """The login name of ``uid`` from the password database, else ``uid<N>``."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


EXIT_DATABASE = 4


def _configured_url() -> str | None:
    """The database URL of the running command, when known (to name it and redact it)."""
    context = click.get_current_context(silent=True)
    obj = context.find_root().obj if context is not None else None
    config = getattr(obj, "_config", None)
    if isinstance(config, Config):
        return config.database_url
    return os.environ.get("WATCHDOG_DATABASE_URL")


def error_report(exc: BaseException) -> tuple[str, int]:
    """What to print for ``exc`` and the exit code: a database failure is one sentence naming
    where the database is (exit 4), anything else the message and its cause chain (exit 1),
    a database cause by its driver's first line only. No password, key or token survives."""
    from sqlalchemy.exc import SQLAlchemyError

    from watchdog import dberrors
    from watchdog.logs import scrub

    url = _configured_url()
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        # ``raise ... from None`` means "this sentence says it all": no cause chain.
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
    if isinstance(exc, SQLAlchemyError):
        message, code = f"error: {dberrors.describe(exc, url)}", EXIT_DATABASE
    else:
        message, code = f"error: {exc}", 1
        for cause in chain[1:]:
            # A database error's own text quotes the statement and its parameters.
            text = dberrors.reason(cause) if isinstance(cause, SQLAlchemyError) else cause
            message += f"\n  caused by: {type(cause).__name__}: {text}"
    if url is not None:
        message = dberrors.redact(message, url)
    return scrub(message), code


def fail(exc: BaseException) -> NoReturn:
    """Print ``exc`` as ``error_report`` says (with the traceback under -v) and exit."""
    from watchdog import dberrors
    from watchdog.logs import scrub

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if getattr(obj, "verbose", False):
        url = _configured_url()
        text = scrub(traceback.format_exc())
        click.echo(dberrors.redact(text, url) if url else text, err=True)
    message, code = error_report(exc)
    click.echo(message, err=True)
    sys.exit(code)


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print watchdog errors as sentences with their cause chain; exit non-zero."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except expected_errors() as exc:
            fail(exc)

    return wrapper


pass_ctx = click.make_pass_decorator(Ctx)
