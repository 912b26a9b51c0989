"""One view across accounts (issue 19): every reader of authorizations names the merchant
account, and money at risk is per provider, account and currency; on SQLite and PostgreSQL.

Flitt has two accounts with different worlds: ``ge-shop`` (window 4d, its own policy:
alert_lead 72h, critical_lead 12h, alert-only at the deadline) and ``am-shop`` (window 7d,
the provider's policy: 48h / 6h, capture). The same order id lives in both. ``plan``,
``show`` and ``check`` run in-process (click's runner, a context carrying the test's
FrozenClock), the API on a loopback port, /metrics through its ASGI app; every instant is
built from the clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from watchdog import service, tokens
from watchdog.api import create_app
from watchdog.api.server import ThreadedServer
from watchdog.cli.app import plan_cmd, show
from watchdog.cli.common import Ctx
from watchdog.cli.oncall import check
from watchdog.clock import FrozenClock
from watchdog.config import Config, load_config, parse_config
from watchdog.db import transaction
from watchdog.domain import ProviderName
from watchdog.health import make_metrics_app
from watchdog.metrics import Metrics
from watchdog.models import Authorization, Pass
from watchdog.risk import account_overrides, clauses

FLITT = ProviderName("flitt")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

ACCOUNTS_TOML = """
[providers.flitt]
window = "7d"
[providers.flitt.accounts.ge-shop]
window = "4d"
alert_lead = "72h"
critical_lead = "12h"
on_deadline = "alert"
[providers.flitt.accounts.am-shop]
"""


class ClockedCtx(Ctx):
    """The CLI context with the test's frozen time (``plan`` and ``check`` read it)."""

    def __init__(self, config_path: str, clock: FrozenClock) -> None:
        super().__init__(config_path, False)
        self.clock = clock


@dataclass
class Shops:
    """The two-account world: its configuration (as a file too), engine and clock."""

    engine: Engine
    config: Config
    config_file: Path
    clock: FrozenClock

    def register(self, account: str, order_id: str, deadline_in: dt.timedelta,
                 amount: int = 5000, currency: str = "GEL") -> int:
        """An authorization of ``account`` whose window ends ``deadline_in`` from now."""
        window = 4 * DAY if account == "ge-shop" else 7 * DAY
        authorized_at = self.clock.now() + deadline_in - window
        return service.register(self.engine, self.config, {
            "provider": "flitt", "account": account, "order_id": order_id, "amount": amount,
            "currency": currency, "authorized_at": authorized_at.isoformat()},
            actor="test", clock=self.clock).authorization.id

    def run(self, command: object, *args: str) -> Result:
        """A CLI command in-process on this world's configuration file and clock."""
        return CliRunner().invoke(command,  # type: ignore[arg-type]
                                  list(args), obj=ClockedCtx(str(self.config_file), self.clock))

    def passed(self) -> None:
        """A successful scan pass a minute ago, so ``check`` judges only the data."""
        finished = self.clock.now() - dt.timedelta(minutes=1)
        with transaction(self.engine) as session:
            session.add(Pass(worker="w1", started_at=finished - dt.timedelta(seconds=2),
                             finished_at=finished, processed=0, failed=0, ok=True,
                             dry_run=False))


def _write(path: Path, db_url: str, body: str) -> Path:
    path.write_text(f'[database]\nurl = "{db_url}"\n{body}', encoding="utf-8")
    return path


@pytest.fixture
def shops(engine: Engine, db_url: str, clock: FrozenClock, tmp_path: Path) -> Shops:
    config_file = _write(tmp_path / "shops.toml", db_url, ACCOUNTS_TOML)
    return Shops(engine, load_config(str(config_file), environ={}), config_file, clock)


@pytest.fixture
def registered(shops: Shops) -> dict[str, int]:
    """o-1 in both accounts (deadline in 2d / 5d), and a USD one in am-shop."""
    return {
        "ge": shops.register("ge-shop", "o-1", 2 * DAY),
        "am": shops.register("am-shop", "o-1", 5 * DAY, amount=7000),
        "am-usd": shops.register("am-shop", "o-2", 5 * DAY, amount=2500, currency="USD"),
    }


def test_plan_view_names_the_account_and_plans_each_with_its_own_policy(
    shops: Shops, registered: dict[str, int],
) -> None:
    entries, at_risk = service.plan_view(shops.engine, shops.config, 7 * DAY, shops.clock)
    by_id: dict[int, list[service.PlanEntry]] = {}
    for e in entries:
        by_id.setdefault(e.authorization_id, []).append(e)
    assert {i: {e.account for e in es} for i, es in by_id.items()} == {
        registered["ge"]: {"ge-shop"}, registered["am"]: {"am-shop"},
        registered["am-usd"]: {"am-shop"}}
    now = shops.clock.now()
    ge = {e.what: e.at for e in by_id[registered["ge"]]}
    # ge-shop's own policy: alert-only at the deadline, critical 12h before it; its alert
    # instant (72h before) is already past, so it is not in the plan.
    assert ge == {"alert": now + 2 * DAY - 24 * HOUR, "critical": now + 2 * DAY - 12 * HOUR,
                  "deadline": now + 2 * DAY}
    am = {e.what: e.at for e in by_id[registered["am"]]}
    assert am == {"alert": now + 5 * DAY - 48 * HOUR, "capture": now + 5 * DAY - 24 * HOUR,
                  "critical": now + 5 * DAY - 6 * HOUR, "deadline": now + 5 * DAY}
    assert at_risk == {("flitt", "am-shop", "GEL"): 7000, ("flitt", "am-shop", "USD"): 2500,
                       ("flitt", "ge-shop", "GEL"): 5000}


def test_cli_plan_names_the_account_and_splits_money_at_risk(
    shops: Shops, registered: dict[str, int],
) -> None:
    table = shops.run(plan_cmd, "--horizon", "7d")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    for account, key in (("ge-shop", "ge"), ("am-shop", "am")):
        rows = [line for line in lines if f" {registered[key]} flitt/{account} " in
                " ".join(line.split())]
        assert rows, (account, table.output)
    money = lines[lines.index("money at risk (open, not captured):") + 1:]
    assert [" ".join(line.split()) for line in money] == [
        "flitt/am-shop 70.00 GEL", "flitt/am-shop 25.00 USD", "flitt/ge-shop 50.00 GEL"]

    raw = shops.run(plan_cmd, "--horizon", "7d", "--format", "json")
    assert raw.exit_code == 0, raw.output
    body = json.loads(raw.output)
    assert {(e["authorization_id"], e["account"]) for e in body["entries"]} == {
        (registered["ge"], "ge-shop"), (registered["am"], "am-shop"),
        (registered["am-usd"], "am-shop")}
    assert all(e["provider"] == "flitt" for e in body["entries"])
    assert body["at_risk"] == [
        {"provider": "flitt", "account": "am-shop", "currency": "GEL", "amount": 7000},
        {"provider": "flitt", "account": "am-shop", "currency": "USD", "amount": 2500},
        {"provider": "flitt", "account": "ge-shop", "currency": "GEL", "amount": 5000}]


def test_cli_plan_of_a_one_account_config_reads_as_before(
    engine: Engine, db_url: str, clock: FrozenClock, tmp_path: Path,
) -> None:
    config_file = _write(tmp_path / "one.toml", db_url, "")
    one = Shops(engine, load_config(str(config_file), environ={}), config_file, clock)
    auth_id = service.register(engine, one.config, {
        "provider": "clearpay", "order_id": "c-1", "amount": 10_000, "currency": "AUD",
        "authorized_at": (clock.now() - 12 * DAY).isoformat()}, "test", clock).authorization.id
    table = one.run(plan_cmd, "--horizon", "7d")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["when", "(UTC)", "what", "id", "provider", "order",
                                "open", "amount", "state"]
    # the 9-wide provider column and money line of before accounts, no account shown
    assert any(f"{auth_id:>6} clearpay  c-1 " in line for line in lines), table.output
    assert lines[-1] == "  clearpay  100.00 AUD"
    body = json.loads(one.run(plan_cmd, "--horizon", "7d", "--format", "json").output)
    assert {e["account"] for e in body["entries"]} == {"default"}
    assert body["at_risk"] == [{"provider": "clearpay", "account": "default",
                                "currency": "AUD", "amount": 10_000}]


def test_cli_show_names_the_account(shops: Shops, registered: dict[str, int]) -> None:
    table = shops.run(show, str(registered["ge"]))
    assert table.exit_code == 0, table.output
    first, *rest = table.output.splitlines()
    assert first.startswith(f"#{registered['ge']} flitt/ge-shop o-1 50.00 GEL state=authorized")
    assert "  account            ge-shop" in rest
    raw = shops.run(show, str(registered["am"]), "--format", "json")
    assert raw.exit_code == 0, raw.output
    assert json.loads(raw.output)["authorization"]["account"] == "am-shop"


@pytest.fixture
def client(shops: Shops) -> Iterator[httpx.Client]:
    """The API on a loopback port with a read token."""
    token = tokens.create(shops.engine, "dashboard", tokens.Scope.READ, "test", shops.clock.now())
    with ThreadedServer(create_app(shops.engine, shops.config, shops.clock)) as server, \
            httpx.Client(base_url=server.url, timeout=10,
                         headers={"Authorization": f"Bearer {token}"}) as http:
        yield http


def test_api_plan_and_show_name_the_account(
    shops: Shops, registered: dict[str, int], client: httpx.Client,
) -> None:
    plan = client.get("/v1/plan", params={"horizon": "7d"})
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert {(e["authorization_id"], e["account"]) for e in body["entries"]} == {
        (registered["ge"], "ge-shop"), (registered["am"], "am-shop"),
        (registered["am-usd"], "am-shop")}
    assert body["at_risk"] == [
        {"provider": "flitt", "account": "am-shop", "currency": "GEL", "amount": 7000},
        {"provider": "flitt", "account": "am-shop", "currency": "USD", "amount": 2500},
        {"provider": "flitt", "account": "ge-shop", "currency": "GEL", "amount": 5000}]
    one = client.get(f"/v1/authorizations/{registered['ge']}")
    assert one.status_code == 200, one.text
    assert one.json()["authorization"]["account"] == "ge-shop"
    schema = client.get("/v1/openapi.json")  # the plan's wire shapes document the account
    assert schema.status_code == 200
    components = schema.json()["components"]["schemas"]
    assert "account" in components["PlanEntryOut"]["properties"]
    assert "account" in components["AtRisk"]["properties"]


def test_check_judges_each_account_with_its_own_leads_and_names_it(
    shops: Shops,
) -> None:
    shops.passed()
    # 10h before the deadline: inside ge-shop's critical_lead (12h), not am-shop's (6h)
    ge_critical = shops.register("ge-shop", "c-1", 10 * HOUR)
    am_calm = shops.register("am-shop", "c-1", 10 * HOUR)
    # 60h before: inside ge-shop's alert_lead (72h), and ge-shop is alert-only
    ge_alert = shops.register("ge-shop", "a-1", 60 * HOUR)
    am_far = shops.register("am-shop", "a-1", 60 * HOUR)
    result = shops.run(check)
    assert result.exit_code == 2, result.output
    assert f"1 (#{ge_critical} flitt/ge-shop) inside critical_lead" in result.output
    assert f"1 (#{ge_alert} flitt/ge-shop) alert-only inside alert_lead" in result.output
    assert "critical_window=1" in result.output and "alert_window=1" in result.output
    for quiet in (am_calm, am_far):
        assert f"#{quiet} " not in result.output and f"#{quiet})" not in result.output
    # the same rows as the clauses select, one query each
    with transaction(shops.engine) as session:
        matched = {name: set(session.scalars(select(Authorization.id).where(where)))
                   for name, where in clauses(shops.clock.now(), shops.config).items()}
    assert matched["critical_window"] == {ge_critical}
    assert matched["alert_window"] == {ge_alert}
    # past both deadlines, still open: each example named with its own account
    shops.clock.advance(11 * HOUR)
    late = shops.run(check)
    assert (f"2 (#{ge_critical} flitt/ge-shop, #{am_calm} flitt/am-shop) open past the "
            "deadline") in late.output, late.output


def test_only_accounts_that_override_the_policy_get_clauses_of_their_own(
    shops: Shops, db_url: str, clock: FrozenClock,
) -> None:
    assert set(account_overrides(shops.config)) == {(FLITT, "ge-shop")}
    same = parse_config({"database": {"url": db_url}, "providers": {"flitt": {
        "critical_lead": "8h", "accounts": {"a": {"window": "4d"}, "b": {"dry_run": True}}}}},
        environ={})
    plain = parse_config({"database": {"url": db_url}, "providers": {"flitt": {
        "critical_lead": "8h"}}}, environ={})
    assert account_overrides(same) == {}
    explicit = parse_config({"database": {"url": db_url}, "providers": {"flitt": {
        "accounts": {"default": {"critical_lead": "12h"}, "b": {}}}}}, environ={})
    assert set(account_overrides(explicit)) == {(FLITT, "default")}

    def sql(config: Config) -> dict[str, tuple[str, dict[str, object]]]:
        compiled = {name: where.compile() for name, where in clauses(clock.now(), config).items()}
        return {name: (str(c), c.params) for name, c in compiled.items()}

    # accounts that judge like their provider cost check nothing: the very same query
    assert sql(same) == sql(plain)
    assert "account" not in " ".join(text for text, _ in sql(plain).values())
    assert "authorizations.account" in sql(shops.config)["critical_window"][0]


def test_a_row_of_an_account_no_longer_configured_is_judged_with_the_providers_leads(
    shops: Shops, db_url: str,
) -> None:
    ge = shops.register("ge-shop", "r-1", 10 * HOUR)  # critical for ge-shop's 12h only
    without = parse_config({"database": {"url": db_url}, "providers": {"flitt": {
        "window": "7d", "accounts": {"am-shop": {}}}}}, environ={})
    now = shops.clock.now()
    with transaction(shops.engine) as session:
        def critical(config: Config) -> set[int]:
            return set(session.scalars(select(Authorization.id)
                                       .where(clauses(now, config)["critical_window"])))

        assert critical(shops.config) == {ge}
        assert critical(without) == set()  # the provider's 6h, as the Planner plans it
    shops.clock.advance(5 * HOUR)
    with transaction(shops.engine) as session:
        assert set(session.scalars(select(Authorization.id).where(
            clauses(shops.clock.now(), without)["critical_window"]))) == {ge}


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_metrics_money_at_risk_per_account(shops: Shops, registered: dict[str, int]) -> None:
    shops.register("am-shop", "o-3", 2 * DAY, amount=3000)  # beside ge-shop's o-1 (lt_48h)
    app = make_metrics_app(shops.engine, shops.config, shops.clock, Metrics())

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://watchdog") as http:
            return await http.get("/metrics")

    response = asyncio.run(scrape())
    assert response.status_code == 200
    s = _samples(response.text)
    money = "expiry_watchdog_money_at_risk_minor_units"
    money_rows = {labels: value for (name, labels), value in s.items() if name == money}
    assert money_rows == {
        (("account", "ge-shop"), ("bucket", "lt_48h"), ("currency", "GEL"),
         ("provider", "flitt")): 5000,
        (("account", "am-shop"), ("bucket", "lt_48h"), ("currency", "GEL"),
         ("provider", "flitt")): 3000,
        (("account", "am-shop"), ("bucket", "lt_7d"), ("currency", "GEL"),
         ("provider", "flitt")): 7000,
        (("account", "am-shop"), ("bucket", "lt_7d"), ("currency", "USD"),
         ("provider", "flitt")): 2500,
    }
    # open_authorizations keeps its labels: both accounts' GEL rows add up per bucket
    opened = {labels: value for (name, labels), value in s.items()
              if name == "expiry_watchdog_open_authorizations"}
    assert opened == {
        (("bucket", "lt_48h"), ("currency", "GEL"), ("provider", "flitt")): 2,
        (("bucket", "lt_7d"), ("currency", "GEL"), ("provider", "flitt")): 1,
        (("bucket", "lt_7d"), ("currency", "USD"), ("provider", "flitt")): 1,
    }
