"""The throwaway-server helpers themselves work (real processes, no mocks).

Missing system binaries make these tests FAIL (never skip): run
scripts/ci-setup.sh to install them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from .alertmanager import AlertmanagerServer
from .postgres import PostgresServer

pytestmark = pytest.mark.slow


def _wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def alertmanager() -> Iterator[AlertmanagerServer]:
    with AlertmanagerServer() as server:
        yield server


@pytest.mark.postgres
def test_postgres_create_connect_restart(pg: PostgresServer) -> None:
    pg.create_database("support_check")
    engine = sa.create_engine(pg.url("support_check"))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            assert conn.execute(sa.text("select current_user")).scalar_one() == "watchdog"
            assert conn.execute(sa.text("show max_connections")).scalar_one() == "200"
            assert conn.execute(sa.text("show fsync")).scalar_one() == "off"
            conn.execute(sa.text("create table t (x int)"))
            conn.execute(sa.text("insert into t values (42)"))
            conn.commit()

        port = pg.port
        pg.restart()
        assert pg.port == port
        assert pg.running

        # Pooled connections died with the server; drop them, then reconnect.
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            assert conn.execute(sa.text("select x from t")).scalar_one() == 42
    finally:
        engine.dispose()
        pg.drop_database("support_check")


@pytest.mark.postgres
def test_postgres_stop_and_start_server(pg: PostgresServer) -> None:
    pg.stop_server()
    assert not pg.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn(), connect_timeout=2).close()
    pg.start_server()
    with psycopg.connect(pg.dsn()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


@pytest.mark.postgres
def test_postgres_listens_on_loopback_only(pg: PostgresServer) -> None:
    with psycopg.connect(pg.dsn()) as conn:
        row = conn.execute("show listen_addresses").fetchone()
    assert row == ("127.0.0.1",)


def test_postgres_stop_removes_everything() -> None:
    server = PostgresServer().start()
    base = server.base_dir
    assert base is not None
    assert base.exists()
    server.stop()
    server.stop()  # idempotent
    assert not base.exists()
    assert not server.running


def _alert(name: str, ends_at: datetime | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "service": "expiry-watchdog", "severity": "page"},
        "annotations": {"summary": "support helper self-test"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def _named(am: AlertmanagerServer, name: str) -> list[dict[str, Any]]:
    return [a for a in am.alerts() if a["labels"].get("alertname") == name]


def test_alertmanager_receives_and_resolves_alert(alertmanager: AlertmanagerServer) -> None:
    with httpx.Client(base_url=alertmanager.url, timeout=10.0) as client:
        assert client.get("/-/ready").status_code == 200
        assert alertmanager.alerts() == []

        resp = client.post("/api/v2/alerts", json=[_alert("SupportSelfTest")])
        assert resp.status_code == 200, resp.text

        seen = _wait_for(lambda: _named(alertmanager, "SupportSelfTest"))
        assert len(seen) == 1
        assert seen[0]["labels"]["severity"] == "page"
        assert seen[0]["status"]["state"] in ("active", "unprocessed")

        past = datetime.now(UTC) - timedelta(seconds=5)
        resp = client.post("/api/v2/alerts", json=[_alert("SupportSelfTest", ends_at=past)])
        assert resp.status_code == 200, resp.text

        # Resolved alerts are not listed by GET /api/v2/alerts.
        assert _wait_for(lambda: not _named(alertmanager, "SupportSelfTest"))
        assert alertmanager.alerts() == []


def test_alertmanager_filters(alertmanager: AlertmanagerServer) -> None:
    alertmanager.post_alerts([_alert("A"), _alert("B")])
    assert _wait_for(lambda: len(alertmanager.alerts()) == 2)
    only_b = alertmanager.alerts(filters=['alertname="B"'])
    assert [a["labels"]["alertname"] for a in only_b] == ["B"]
    assert alertmanager.alerts(active=False, unprocessed=False) == []


def test_alertmanager_stop_is_clean() -> None:
    server = AlertmanagerServer().start()
    base = server.base_dir
    url = server.url
    assert base is not None
    server.stop()
    server.stop()  # idempotent
    assert not base.exists()
    with pytest.raises(httpx.TransportError), httpx.Client(timeout=2.0) as client:
        client.get(f"{url}/-/ready")


def test_missing_binaries_fail_with_setup_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from . import alertmanager as am_mod
    from . import postgres as pg_mod
    from .postgres import MissingBinaryError

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg_mod.glob, "glob", lambda _pattern: [])
    monkeypatch.setattr(am_mod, "FALLBACK_PATHS", ())
    with pytest.raises(MissingBinaryError, match=r"scripts/ci-setup\.sh"):
        PostgresServer()
    with pytest.raises(MissingBinaryError, match=r"scripts/ci-setup\.sh"):
        AlertmanagerServer()
