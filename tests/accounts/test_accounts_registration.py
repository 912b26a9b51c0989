"""Registering into an account (issue 19): every path takes ``account`` (default
``default``) validated against the configuration; the same order id in two accounts is two
authorizations, re-registering in one account is idempotent; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sqlalchemy import Engine

from watchdog import service, tokens
from watchdog.api import create_app
from watchdog.api.server import ThreadedServer
from watchdog.clock import FrozenClock
from watchdog.config import Config, parse_config
from watchdog.errors import ConflictError, ValidationError

AUTHORIZED = "2026-11-20T09:00:00+00:00"


@pytest.fixture
def two_shops(db_url: str) -> Config:
    return parse_config({"database": {"url": db_url}, "providers": {"flitt": {
        "window": "7d", "accounts": {"ge-shop": {"window": "4d"}, "am-shop": {}}}}}, {})


def rec(order_id: str = "o-1", account: str | None = None, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"provider": "flitt", "order_id": order_id, "amount": 5000,
                               "currency": "GEL", "authorized_at": AUTHORIZED, **extra}
    if account is not None:
        body["account"] = account
    return body


def test_same_order_id_in_two_accounts_is_two_authorizations(
    engine: Engine, two_shops: Config, clock: FrozenClock,
) -> None:
    ge = service.register(engine, two_shops, rec(account="ge-shop"), "test", clock)
    am = service.register(engine, two_shops, rec(account="am-shop"), "test", clock)
    assert ge.created and am.created and ge.authorization.id != am.authorization.id
    assert (ge.authorization.account, am.authorization.account) == ("ge-shop", "am-shop")
    again = service.register(engine, two_shops, rec(account="ge-shop"), "test", clock)
    assert not again.created and again.authorization.id == ge.authorization.id
    with pytest.raises(ConflictError):
        service.register(engine, two_shops, rec(account="ge-shop", amount=6000), "test", clock)


def test_deadlines_follow_each_accounts_window(
    engine: Engine, two_shops: Config, clock: FrozenClock,
) -> None:
    from watchdog import store
    from watchdog.db import transaction

    ids = {a: service.register(engine, two_shops, rec(account=a), "t", clock).authorization.id
           for a in ("ge-shop", "am-shop")}
    with transaction(engine) as session:
        deadlines = {a: store.get(session, i).deadline for a, i in ids.items()}
    start = dt.datetime.fromisoformat(AUTHORIZED)
    assert deadlines == {"ge-shop": start + dt.timedelta(days=4),
                         "am-shop": start + dt.timedelta(days=7)}


def test_an_account_not_configured_is_refused_naming_the_field(
    engine: Engine, two_shops: Config, config: Config, clock: FrozenClock,
) -> None:
    with pytest.raises(ValidationError) as raised:
        service.register(engine, two_shops, rec(account="de-shop"), "t", clock)
    assert raised.value.field == "account" and "ge-shop" in raised.value.reason
    with pytest.raises(ValidationError) as raised:  # a provider with accounts has no default
        service.register(engine, two_shops, rec(), "t", clock)
    assert raised.value.field == "account"
    with pytest.raises(ValidationError) as raised:
        service.register(engine, config, rec(account="Bad Name"), "t", clock)
    assert raised.value.field == "account"
    # one account per provider: no account is the default one, as before
    result = service.register(engine, config, rec(), "t", clock)
    assert result.created and result.authorization.account == "default"


def test_api_takes_and_filters_by_account(
    engine: Engine, two_shops: Config, clock: FrozenClock,
) -> None:
    token = tokens.create(engine, "merchant", tokens.Scope.WRITE, "test", clock.now())
    auth = {"Authorization": f"Bearer {token}"}
    with ThreadedServer(create_app(engine, two_shops, clock)) as server, \
            httpx.Client(base_url=server.url, timeout=10, headers=auth) as client:
        first = client.post("/v1/authorizations", json=rec(account="ge-shop"))
        assert first.status_code == 201, first.text
        assert first.json()["authorization"]["account"] == "ge-shop"
        assert client.post("/v1/authorizations", json=rec(account="am-shop")).status_code == 201
        assert client.post("/v1/authorizations", json=rec(account="ge-shop")).status_code == 200
        bad = client.post("/v1/authorizations", json=rec(account="de-shop"))
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["account"]
        page = client.get("/v1/authorizations", params={"account": "am-shop"}).json()
        assert [i["account"] for i in page["items"]] == ["am-shop"]
        assert len(client.get("/v1/authorizations").json()["items"]) == 2


def test_the_audit_names_the_account_of_each_authorization(
    engine: Engine, two_shops: Config, config: Config, clock: FrozenClock,
) -> None:
    from sqlalchemy import select

    from watchdog import audit
    from watchdog.db import transaction
    from watchdog.models import AuditRow

    ids = {a: service.register(engine, two_shops, rec(account=a), "t", clock).authorization.id
           for a in ("ge-shop", "am-shop")}
    default_id = service.register(engine, config, rec("o-2"), "t", clock).authorization.id
    with transaction(engine) as session:
        rows = session.execute(select(AuditRow.authorization_id, AuditRow.detail).where(
            AuditRow.event == "register:authorization:create")).all()
    detail = {i: json.loads(d) for i, d in rows}
    assert detail[ids["ge-shop"]]["account"] == "ge-shop"
    assert detail[ids["am-shop"]]["account"] == "am-shop"
    assert "account" not in detail[default_id]  # one account per provider: rows as before
    assert audit.verify(engine).rows > len(detail)  # the chain verifies (its first row too)
