"""The API against hostile input and hostile clients (issue 17): strict JSON types, every
bad field at once, and idle or trickling connections that cannot starve real requests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import httpx
from sqlalchemy import func, select

from tests.support.api import Api, record
from watchdog.api import create_app
from watchdog.api.bounds import ClientLimits
from watchdog.api.server import ThreadedServer
from watchdog.db import transaction
from watchdog.models import Authorization


def _errors(response: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in response.json()["errors"]}


def _stored(api: Api) -> int:
    with transaction(api.engine) as session:
        return session.scalar(select(func.count()).select_from(Authorization)) or 0


def test_a_string_amount_is_refused_not_coerced(api: Api) -> None:
    answer = api.post("/v1/authorizations", record(amount="5000"))
    assert answer.status_code == 422, answer.text
    assert list(_errors(answer)) == ["amount"]
    assert _stored(api) == 0


def test_every_bad_field_of_a_body_is_listed_at_once(api: Api) -> None:
    answer = api.post("/v1/authorizations",
                      record(amount="5000", capture_amount="100", reference=7, colour="red"))
    assert answer.status_code == 422, answer.text
    assert set(_errors(answer)) == {"amount", "capture_amount", "reference", "colour"}
    assert _stored(api) == 0


def test_instruction_types_are_strict(api: Api) -> None:
    auth_id = api.post("/v1/authorizations", record()).json()["authorization"]["id"]
    path = f"/v1/authorizations/{auth_id}/capture-instruction"
    answer = api.post(path, {"when": "now", "amount": "100", "final": "true"})
    assert answer.status_code == 422, answer.text
    assert set(_errors(answer)) == {"amount", "final"}
    assert api.post(path, {"when": "now", "amount": 100, "final": False}).status_code == 202


# ---------------------------------------------------------------- slow and idle clients


def _bounded_api(api: Api, limits: ClientLimits) -> ThreadedServer:
    app = create_app(api.engine, api.config, api.clock, body_timeout=1.0)
    return ThreadedServer(app, limits=limits)


def _open(port: int, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first:
        sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(3)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_idle_and_trickling_clients_beyond_the_limit_do_not_starve_real_requests(
    api: Api,
) -> None:
    limits = ClientLimits(header_timeout=1.5, keep_alive=1, max_connections=16)
    with _bounded_api(api, limits) as server:
        port = server.port
        idle = [_open(port) for _ in range(40)]
        heads = [_open(port, b"GET /v1/plan HTTP/1.1\r\nHost: x\r\n") for _ in range(10)]
        bodies = [_open(port, b"POST /v1/authorizations HTTP/1.1\r\nHost: x\r\n"
                              b"Authorization: Bearer " + api.write_token.encode() +
                              b"\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 500\r\n\r\n{") for _ in range(5)]
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.2):
                for sock in heads + bodies:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X" if sock in heads else b" ")

        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        try:
            for _ in range(5):
                started = time.monotonic()
                with httpx.Client(base_url=server.url, timeout=5) as client:
                    answer = client.get("/v1/plan", headers=api.headers(api.read_token))
                assert answer.status_code == 200, answer.text
                assert time.monotonic() - started < 2.0
            # The trickled bodies hit their deadline (408) or were evicted; the heads and the
            # idle connections were closed by the server, never left holding a descriptor.
            time.sleep(2.0)
            assert all(_closed_by_server(s) for s in idle + heads)
            for sock in bodies:
                sock.settimeout(3)
                with contextlib.suppress(OSError):
                    reply = sock.recv(4096)
                    assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:80]
        finally:
            stop.set()
            feeder.join()
            for sock in idle + heads + bodies:
                sock.close()


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (head and body may arrive apart)."""
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_an_unauthenticated_body_is_answered_401_without_waiting_for_it(api: Api) -> None:
    with _bounded_api(api, ClientLimits(header_timeout=5)) as server:
        sock = _open(server.port, b"POST /v1/authorizations HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Type: application/json\r\nContent-Length: 60000\r\n"
                                  b"\r\n{")
        sock.settimeout(3)
        started = time.monotonic()
        reply = sock.recv(4096)
        sock.close()
    assert reply.startswith(b"HTTP/1.1 401"), reply[:80]
    assert time.monotonic() - started < 1.0


def test_a_body_slower_than_its_deadline_is_408(api: Api) -> None:
    with _bounded_api(api, ClientLimits(header_timeout=5)) as server:
        sock = _open(server.port, b"POST /v1/authorizations HTTP/1.1\r\nHost: x\r\n"
                                  b"Authorization: Bearer " + api.write_token.encode() +
                                  b"\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 100\r\n\r\n{")
        sock.settimeout(5)
        reply = _read_until_closed(sock)
        sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:120]
    assert b'"field":"body"' in reply


def test_the_unit_gives_the_daemon_a_descriptor_budget_above_its_clients() -> None:
    from pathlib import Path

    from watchdog.api.bounds import DEFAULT_LIMITS

    unit = Path(__file__).parents[2] / "deploy" / "systemd" / "expiry-watchdog.service"
    values = dict(line.split("=", 1) for line in unit.read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    provider_connections, database_pool = 256, 30  # make_http_client, make_engine
    needed = DEFAULT_LIMITS.max_connections + provider_connections + database_pool + 64
    assert int(values["LimitNOFILE"]) >= needed


# ---------------------------------------------------------------- /metrics token, docs page


def test_metrics_can_require_a_read_token(api: Api) -> None:
    from dataclasses import replace

    from watchdog.api.server import health_routers
    from watchdog.config import MetricsSettings, parse_config

    config = parse_config({"database": {"url": str(api.engine.url)},
                           "metrics": {"require_token": True}}, environ={})
    assert config.metrics == replace(MetricsSettings(), require_token=True)
    app = create_app(api.engine, config, api.clock,
                     extra_routers=health_routers(api.engine, config, api.clock))
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        anonymous = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer ew_" + "x" * 43})
        reader = client.get("/metrics", headers=api.headers(api.read_token))
        probes = client.get("/healthz"), client.get("/readyz")
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert reader.status_code == 200 and "expiry_watchdog_" in reader.text
    assert probes[0].status_code == 200 and probes[1].status_code in (200, 503)


def test_metrics_stay_open_by_default_and_docs_are_off(api: Api) -> None:
    from watchdog.api.server import health_routers

    app = create_app(api.engine, api.config, api.clock,
                     extra_routers=health_routers(api.engine, api.config, api.clock))
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/docs").status_code == 404
        assert client.get("/v1/openapi.json").status_code == 200
