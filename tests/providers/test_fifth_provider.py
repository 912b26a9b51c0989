"""The goal of "a provider is one spec": a fifth provider is one adapter module and one
sandbox module, and every other part handles it with no edit.

``acme`` below is what those two modules would hold (its ``SPEC`` and its ``DIALECT``);
registered for the test, it is configured, checked, registered, planned, explained and
captured through the CLI against the sandbox. A second test reads ``watchdog/`` and asserts
each real provider's name appears (in code, outside comments and docstrings) only in its
own two modules.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from watchdog.cli import main
from watchdog.config import parse_config
from watchdog.domain import ProviderName
from watchdog.errors import ConfigError
from watchdog.providers import registry
from watchdog.providers.base import (
    AuthRef,
    Outcome,
    ProviderResult,
    ProviderRules,
    ProviderSnapshot,
    ProviderState,
)
from watchdog.providers.http import Answer, CallContext, HttpAdapter, seg
from watchdog.providers.spec import ProviderSpec
from watchdog.sandbox import dialect as sandbox_dialects
from watchdog.sandbox.dialect import SandboxDialect
from watchdog.sandbox.server import SandboxServer
from watchdog.sandbox.state import Order, SandboxState
from watchdog.sandbox.wire import Reply, Route, json_reply, parse_json

# ------------------------------------------------------------- watchdog/providers/acme.py

NAME = ProviderName.declare("acme")
KEY_ENV = "WATCHDOG_ACME_API_KEY"
STATES = {"open": ProviderState.AUTHORIZED, "captured": ProviderState.CAPTURED,
          "voided": ProviderState.CANCELED}


class AcmeAdapter(HttpAdapter):
    """GET /orders/{id}; POST /orders/{id}/capture {amount, key}; POST /orders/{id}/void."""

    provider = NAME

    def _configure(self) -> None:
        self._key = self._settings.credential(KEY_ENV)
        self._secret_values = (self._key,)

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "Authorization": f"Bearer {self._key.reveal()}"}

    def _status_route(self, order_id: str) -> tuple[str, str, Any]:
        return "GET", f"/orders/{seg(order_id)}", None

    def _parse_snapshot(self, data: Any, currency: str) -> ProviderSnapshot | str:
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            return "the order has no status"
        raw = data["status"]
        return ProviderSnapshot(STATES.get(raw, ProviderState.UNRECOGNISED), raw,
                                captured_amount=data.get("captured"),
                                open_amount=data.get("open"), amount=data.get("amount"),
                                currency=data.get("currency"))

    def _error_fields(self, answer: Answer) -> tuple[str | None, str, str | None]:
        data = answer.data if isinstance(answer.data, dict) else {}
        return data.get("code"), str(data.get("message", "")), answer.request_id

    def _known_failure(self, ctx: CallContext, answer: Answer, code: str | None, text: str,
                       rid: str | None) -> ProviderResult | None:
        if ctx.operation == "check" and answer.status == 404:
            return ctx.answered(Outcome.SUCCEEDED, "credentials accepted", answer)
        return None

    async def _capture(self, ctx: CallContext, ref: AuthRef, amount: int, idempotency_key: str,
                       *, final: bool) -> ProviderResult:
        return await self._call(
            ctx, "POST", f"/orders/{seg(ref.order_id)}/capture",
            lambda answer, snap: ctx.answered(Outcome.SUCCEEDED, "captured", answer,
                                              snapshot=snap),
            currency=ref.currency, body={"amount": amount, "key": idempotency_key})

    async def _cancel(self, ctx: CallContext, ref: AuthRef, idempotency_key: str
                      ) -> ProviderResult:
        return await self._call(
            ctx, "POST", f"/orders/{seg(ref.order_id)}/void",
            lambda answer, snap: ctx.answered(Outcome.SUCCEEDED, "voided", answer, snapshot=snap),
            currency=ref.currency, body={"key": idempotency_key})


SPEC = ProviderSpec(
    name=NAME, rank=50,
    rules=ProviderRules(NAME, dt.timedelta(days=3), multiple_captures=False,
                        partial_releases_remainder=True, reports_expiry=False),
    default_base_url="https://api.acme.example", connect_timeout=4.0, read_timeout=12.0,
    secret_variables=(KEY_ENV,), explain="one capture only; 3-day window (acme rules)",
    states=STATES, evidence_keys=frozenset({"status", "captured", "open"}),
    not_found_codes=frozenset({"no_such_order"}), adapter=AcmeAdapter,
    order_id_problem=lambda order_id: None if order_id.startswith("A") else "starts with A",
)

# --------------------------------------------------------------- watchdog/sandbox/acme.py

SANDBOX_KEY = "acme-sandbox-key"


def _status(state: SandboxState, order: Order) -> str:
    if order.open_amount > 0:
        return "open"
    return "captured" if order.captured else "voided"


def _json(state: SandboxState, order: Order) -> dict[str, Any]:
    return {"id": order.order_id, "status": _status(state, order), "amount": order.amount,
            "captured": order.captured, "open": order.open_amount, "currency": order.currency}


def _find(state: SandboxState, request: Any) -> Order | Reply:
    if request.headers.get("Authorization") != f"Bearer {SANDBOX_KEY}":
        return json_reply(401, {"code": "unauthorized", "message": "bad key"})
    order = state.find("acme", request.match_info["order_id"])
    if order is None:
        return json_reply(404, {"code": "no_such_order", "message": "not found"})
    return order


def _get(state: SandboxState, request: Any, body: bytes) -> Reply:
    order = _find(state, request)
    return order if isinstance(order, Reply) else json_reply(200, _json(state, order))


def _capture(state: SandboxState, request: Any, body: bytes) -> Reply:
    order = _find(state, request)
    if isinstance(order, Reply):
        return order
    payload = parse_json(body)
    amount = payload.get("amount")
    if order.lapsed or not isinstance(amount, int) or not 0 < amount <= order.open_amount:
        return json_reply(409, {"code": "refused", "message": "cannot capture"})
    order.captured += amount
    order.capture_count += 1
    order.released += order.open_amount
    order.closed = True
    state.record_effect(order, "capture", amount, payload.get("key"))
    return json_reply(200, _json(state, order))


def _void(state: SandboxState, request: Any, body: bytes) -> Reply:
    order = _find(state, request)
    if isinstance(order, Reply):
        return order
    released = order.open_amount
    order.released += released
    order.closed = order.canceled = True
    state.record_effect(order, "cancel", released, parse_json(body).get("key"))
    return json_reply(200, _json(state, order))


DIALECT = SandboxDialect(
    name="acme", rank=50, mount="/acme",
    routes=[("GET", "/acme/orders/{order_id}", Route("acme", "status", _get)),
            ("POST", "/acme/orders/{order_id}/capture", Route("acme", "capture", _capture)),
            ("POST", "/acme/orders/{order_id}/void", Route("acme", "cancel", _void))],
    provider_status=_status, default_window=dt.timedelta(days=3), default_currency="EUR",
    credentials={KEY_ENV: SANDBOX_KEY},
)

# ------------------------------------------------------------------------------ the tests


@pytest.fixture
def acme() -> Iterator[None]:
    with registry.registered(SPEC), sandbox_dialects.registered(DIALECT):
        yield


def test_acme_is_a_provider_everywhere_without_edits(acme: None, tmp_path: Path) -> None:
    assert ProviderName("acme") is NAME and ProviderName.ACME is NAME and NAME in list(ProviderName)
    config = parse_config({}, environ={KEY_ENV: "k"})
    settings = config.provider(NAME)
    assert (settings.base_url, settings.connect_timeout, settings.read_timeout) == (
        "https://api.acme.example", 4.0, 12.0)
    assert settings.credential(KEY_ENV).reveal() == "k"
    assert settings.window == dt.timedelta(days=3)
    with pytest.raises(ConfigError, match="acme"):
        parse_config({"providers": {"nope": {}}})

    with SandboxServer() as sandbox:
        assert set(sandbox.base_urls()) == {p.value for p in ProviderName}
        urls = "\n".join(f'[providers.{name}]\nbase_url = "{url}"'
                         for name, url in sandbox.base_urls().items())
        path = tmp_path / "watchdog.toml"
        path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n{urls}\n')
        env = {"WATCHDOG_CONFIG": str(path), **dict(sandbox_env())}
        runner = CliRunner()

        def cli(*args: str) -> str:
            result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result.output

        cli("db", "upgrade")
        checked = cli("providers", "check")
        assert re.search(r"^acme\s+OK: ", checked, re.M), checked
        authorized = sandbox.now() - dt.timedelta(days=2, hours=12)
        sandbox.create_order(provider="acme", order_id="A-1", amount=5000, currency="EUR",
                             authorized_at=authorized)
        bad = runner.invoke(main, ["add", "--provider", "acme", "--order-id", "B-1",
                                   "--amount", "5000", "--currency", "EUR",
                                   "--authorized-at", authorized.isoformat()], env=env)
        assert bad.exit_code != 0 and "starts with A" in bad.output, bad.output
        cli("add", "--provider", "acme", "--order-id", "A-1", "--amount", "5000",
            "--currency", "EUR", "--authorized-at", authorized.isoformat())
        assert "acme" in cli("plan")
        assert "one capture only; 3-day window (acme rules)" in cli("explain", "1")
        cli("scan")
        assert [(e["provider"], e["operation"], e["amount"]) for e in sandbox.ledger()] == [
            ("acme", "capture", 5000)]
        assert "captured" in cli("show", "1")


def sandbox_env() -> dict[str, str]:
    from watchdog.sandbox.credentials import SANDBOX_ENV

    return dict(SANDBOX_ENV)


def test_the_sandbox_refuses_a_provider_it_does_not_speak() -> None:
    with SandboxServer() as sandbox, pytest.raises(Exception, match="provider"):
        sandbox.create_order(provider="acme", order_id="A-1", amount=1, currency="EUR")


ROOT = Path(__file__).resolve().parents[2] / "watchdog"


def _code_words(path: Path) -> Iterator[tuple[int, str]]:
    """Identifiers and string constants of a module, without its docstrings and comments."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docs:
                yield line, node.value
        elif isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute):
            yield line, node.attr
        elif isinstance(node, ast.alias):
            yield line, node.name
        elif isinstance(node, ast.arg | ast.FunctionDef | ast.ClassDef):
            yield line, node.arg if isinstance(node, ast.arg) else node.name
        elif isinstance(node, ast.keyword) and node.arg:
            yield line, node.arg


@pytest.mark.parametrize("name", [p.value for p in ProviderName])
def test_a_provider_is_named_only_in_its_own_modules(name: str) -> None:
    own = {f"providers/{name}.py", f"sandbox/{name}.py"}
    word = re.compile(rf"(?<![a-z]){name}(?![a-z])", re.IGNORECASE)
    found = [
        f"{rel}:{line}: {text[:60]!r}"
        for path in sorted(ROOT.rglob("*.py"))
        if (rel := path.relative_to(ROOT).as_posix()) not in own
        and not rel.startswith(f"providers/{name}/")
        for line, text in _code_words(path) if word.search(text)
    ]
    assert found == []
