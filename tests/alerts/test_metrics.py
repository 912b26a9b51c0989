"""/metrics, /healthz and /readyz through the router (httpx ASGI transport)."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from tests.support.alerts import Deadline
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.domain import ProviderName
from watchdog.health import make_metrics_app
from watchdog.metrics import MeteredAdapter, Metrics
from watchdog.providers.base import Outcome
from watchdog.providers.fake import FakeProvider

from .test_check import _pass, _register


def _get(app: object, path: str) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://watchdog") as client:
            return await client.get(path)

    return asyncio.run(run())


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body) for s in family.samples
    }


def test_metrics_show_open_money_by_bucket_state_and_heartbeat(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    _register(engine, config, clock, "A1", dt.timedelta(hours=3))
    _register(engine, config, clock, "A2", dt.timedelta(hours=5))
    _register(engine, config, clock, "A3", dt.timedelta(hours=30))
    _register(engine, config, clock, "A4", dt.timedelta(days=20))
    with engine.begin() as connection:
        connection.execute(text("UPDATE authorizations SET captured_amount = 1000 "
                                "WHERE order_id = 'A2'"))
    _pass(engine, clock.now() - dt.timedelta(seconds=30))
    metrics = Metrics()
    metrics.alert_delivery("pagerduty", "sent")
    app = make_metrics_app(engine, config, clock, metrics)

    response = _get(app, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    s = _samples(response.text)
    key = (("bucket", "lt_6h"), ("currency", "GBP"), ("provider", "clearpay"))
    assert s[("expiry_watchdog_open_authorizations", key)] == 2
    money = (("account", "default"), *key)  # money at risk carries the account label
    assert s[("expiry_watchdog_money_at_risk_minor_units", money)] == 5000 + 4000
    later = (("bucket", "lt_48h"), ("currency", "GBP"), ("provider", "clearpay"))
    assert s[("expiry_watchdog_open_authorizations", later)] == 1
    beyond = (("account", "default"), ("bucket", "later"), ("currency", "GBP"),
              ("provider", "clearpay"))
    assert s[("expiry_watchdog_money_at_risk_minor_units", beyond)] == 5000
    assert s[("expiry_watchdog_authorizations", (("state", "authorized"),))] == 4
    assert s[("expiry_watchdog_authorizations", (("state", "captured"),))] == 0
    assert s[("expiry_watchdog_last_successful_pass_timestamp_seconds", ())] == (
        clock.now() - dt.timedelta(seconds=30)).timestamp()
    assert s[("expiry_watchdog_database_up", ())] == 1
    assert s[("expiry_watchdog_alerts_sent_total", (("outcome", "sent"), ("sink", "pagerduty")))] \
        == 1


def test_metered_adapter_counts_calls_and_actions(engine: Engine, config: Config,
                                                  clock: FrozenClock) -> None:
    deadline = Deadline(engine, config, clock)
    metrics = Metrics()
    fake = deadline.fake
    fake.faults.append(Outcome.RETRYABLE)
    deadline.scanner.adapters = {ProviderName.CLEARPAY: MeteredAdapter(fake, metrics)}
    report = deadline.capture()
    metrics.observe_pass(report)
    body = _get(make_metrics_app(engine, config, clock, metrics), "/metrics").text
    s = _samples(body)
    status = (("operation", "status"), ("outcome", "retryable"), ("provider", "clearpay"))
    assert s[("expiry_watchdog_provider_requests_total", status)] == 1
    capture = (("kind", "capture"), ("outcome", "succeeded"), ("provider", "clearpay"))
    assert s[("expiry_watchdog_actions_total", capture)] == 1
    assert s[("expiry_watchdog_provider_request_duration_seconds_count",
              (("operation", "capture"), ("provider", "clearpay")))] == 1
    assert s[("expiry_watchdog_pass_duration_seconds_count", ())] == 1
    assert s[("expiry_watchdog_pass_steps_total", (("step", "capture"),))] == 1
    assert s[("expiry_watchdog_authorizations", (("state", "captured"),))] == 1
    assert isinstance(fake, FakeProvider)


def test_healthz_and_readyz(engine: Engine, config: Config, clock: FrozenClock) -> None:
    app = make_metrics_app(engine, config, clock, Metrics())
    assert _get(app, "/healthz").json() == {"status": "alive"}
    not_yet = _get(app, "/readyz")
    assert not_yet.status_code == 503
    assert not_yet.json()["checks"]["heartbeat"] == "no successful pass yet"
    _pass(engine, clock.now() - dt.timedelta(minutes=5))
    ready = _get(app, "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "schema": "ok", "heartbeat": "ok",
                                      "heartbeat_age_seconds": 300}
    clock.advance(dt.timedelta(hours=1))
    stale = _get(app, "/readyz")
    assert stale.status_code == 503
    assert stale.json()["checks"]["heartbeat"].startswith("stale")


def test_database_down_scrapes_database_up_zero(tmp_path: object, clock: FrozenClock) -> None:
    from watchdog.config import parse_config
    from watchdog.db import make_engine

    url = f"sqlite:///{tmp_path}/nowhere/x.db"
    engine = make_engine(url)
    app = make_metrics_app(engine, parse_config({"database": {"url": url}}, environ={}), clock,
                           Metrics())
    s = _samples(_get(app, "/metrics").text)
    assert s[("expiry_watchdog_database_up", ())] == 0
    assert _get(app, "/readyz").status_code == 503
    assert _get(app, "/healthz").status_code == 200
    engine.dispose()


def test_real_uvicorn_on_loopback(engine: Engine, config: Config, clock: FrozenClock) -> None:
    from watchdog.metrics import MetricsServer

    _pass(engine, clock.now())

    async def run() -> tuple[int, str]:
        server = MetricsServer(make_metrics_app(engine, config, clock, Metrics()), "127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient() as client:
                ready = await client.get(f"http://127.0.0.1:{server.port}/readyz")
                scraped = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        finally:
            await server.stop()
        return ready.status_code, scraped.text

    status, body = asyncio.run(run())
    assert status == 200
    assert "expiry_watchdog_last_successful_pass_timestamp_seconds" in body


def test_busy_port_is_an_oserror_not_an_exit(engine: Engine, config: Config,
                                             clock: FrozenClock) -> None:
    import socket

    import pytest

    from watchdog.metrics import MetricsServer

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        server = MetricsServer(make_metrics_app(engine, config, clock, Metrics()), "127.0.0.1",
                               busy.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            asyncio.run(server.start())
    finally:
        busy.close()
