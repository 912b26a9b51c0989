"""``SandboxDialect``: everything the sandbox knows about one provider, declared by its module.

Each ``watchdog/sandbox/<name>.py`` ends with ``DIALECT = SandboxDialect(...)``; ``dialects()``
finds them by walking the package (as ``watchdog.providers.registry`` finds the providers),
and the server's routing, the control API, the state's defaults, the sandbox credentials
and the demo read them. A provider the sandbox does not speak is an error, never another
provider's dialect.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchdog.sandbox.state import Order, SandboxState
    from watchdog.sandbox.wire import Route

#: One order the demo creates: (order id, amount, currency, age, extra registration fields).
DemoOrder = tuple[str, int, str, dt.timedelta, dict[str, object]]


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A second merchant account the demo gives a provider (issue 19): its name, its own
    window (None: the provider's) and its orders, which may reuse the default account's
    order ids (each account chooses its own)."""

    name: str
    window: dt.timedelta | None
    orders: tuple[DemoOrder, ...]


def any_order_id(order_id: str) -> str | None:
    """The default order-id check: any id the control API's shape allows."""
    return None


@dataclass(frozen=True, slots=True)
class SandboxDialect:
    """How the sandbox speaks one provider."""

    name: str
    #: Where the listing puts it (the order of ``base_urls()``); the provider's ``SPEC.rank``.
    rank: int
    #: The path prefix its API is served under (``base_urls()`` adds it to the sandbox URL).
    mount: str
    routes: list[tuple[str, str, Route]]
    #: The status name its own API shows for an order (the control API's ``provider_status``).
    provider_status: Callable[[SandboxState, Order], str]
    #: Authorization window of an order created without ``expires_at``.
    default_window: dt.timedelta
    #: Currency of an auto-created order when the request names none.
    default_currency: str
    #: The well-known test credentials it accepts, by the watchdog's variable name.
    credentials: Mapping[str, str]
    #: Why the control API refuses an order id for it (None: it does not).
    order_id_problem: Callable[[str], str | None] = any_order_id
    #: The orders ``expiry-watchdog demo`` registers at it.
    demo_orders: tuple[DemoOrder, ...] = field(default=())
    #: A second merchant account the demo configures for it, with its own orders.
    demo_account: DemoAccount | None = None
    #: Its name in prose (``python -m watchdog.sandbox --help``); the name itself if empty.
    title_text: str = ""
    #: When set, its captures can stay pending: the sandbox takes
    #: ``<name>_capture_settle_seconds`` (``--<name>-capture-settle-seconds``), this help.
    settle_help: str | None = None
    #: The word its truth table (``SPEC.states``) is keyed by for an order, when that is not
    #: ``provider_status`` alone (Flitt reads ``order_status`` with ``capture_status``).
    truth_word_of: Callable[[SandboxState, Order], str] | None = None

    @property
    def title(self) -> str:
        """Its name in prose."""
        return self.title_text or self.name

    def truth_word(self, state: SandboxState, order: Order) -> str:
        """The word of the provider's truth table this order is shown as."""
        word = self.truth_word_of or self.provider_status
        return word(state, order)


_DIALECTS: dict[str, SandboxDialect] = {}
_state = {"loaded": False, "loading": False}


def _load() -> None:
    if _state["loaded"] or _state["loading"]:
        return
    _state["loading"] = True
    try:
        import watchdog.sandbox as package

        found = []
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue  # __main__ runs the server
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            dialect = getattr(module, "DIALECT", None)
            if isinstance(dialect, SandboxDialect):
                found.append(dialect)
        for dialect in sorted(found, key=lambda d: (d.rank, d.name)):
            _DIALECTS[dialect.name] = dialect
        _state["loaded"] = True
    finally:
        _state["loading"] = False


def dialects() -> tuple[SandboxDialect, ...]:
    """Every provider the sandbox speaks, in listing order."""
    _load()
    return tuple(_DIALECTS.values())


def names() -> tuple[str, ...]:
    """The names of the providers the sandbox speaks."""
    return tuple(d.name for d in dialects())


def dialect(name: str) -> SandboxDialect:
    """The dialect of ``name``; KeyError naming the known ones when the sandbox has none."""
    _load()
    found = _DIALECTS.get(name)
    if found is None:
        raise KeyError(f"the sandbox does not speak {name!r} (it speaks "
                       f"{', '.join(_DIALECTS)})")
    return found


@contextmanager
def registered(extra: SandboxDialect) -> Iterator[SandboxDialect]:
    """Speak ``extra`` too for the duration of a ``with`` block (a dialect defined by a test)."""
    _load()
    if extra.name in _DIALECTS:
        raise ValueError(f"the sandbox already speaks {extra.name}")
    _DIALECTS[extra.name] = extra
    try:
        yield extra
    finally:
        _DIALECTS.pop(extra.name, None)


def settle_option_names() -> dict[str, str]:
    """``{"<name>_capture_settle_seconds": name}`` for every dialect whose captures can settle."""
    return {f"{d.name}_capture_settle_seconds": d.name for d in dialects() if d.settle_help}


class DialectView(Mapping[str, Any]):
    """A read-only ``{name: fact}`` mapping computed from the dialects on every access."""

    def __init__(self, fact: Callable[[SandboxDialect], Any]) -> None:
        self._fact = fact

    def __getitem__(self, name: str) -> Any:
        return self._fact(dialect(name))

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(dialects())
