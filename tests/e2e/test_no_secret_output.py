"""No secret appears in anything the watchdog says (issue 17, item 10).

Every CLI command and every API endpoint runs as a real process with distinctive secrets
set: a database password that needs URL escaping, provider keys, API tokens, the alert
sinks' keys (Slack webhook URL, PagerDuty routing key, webhook signing secret) and the
audit key. It runs
against a reachable PostgreSQL database and against an unreachable one, and everything
that came out (stdout, stderr with the JSON logs, API answers) is searched for every
spelling of every secret. The one sanctioned exception: ``tokens create`` prints the
token it created, once, on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresServer, free_port
from watchdog.providers import registry
from watchdog.sandbox.server import SandboxServer

DB_PASSWORD = "Db@Pw/Zq7%xK"  # '@', '/' and '%' must be escaped in a URL
PROVIDER_KEYS = {
    variable: f"PROVKEY-{variable.rsplit('_', 2)[-2]}-{i}q83jdZ"
    for i, variable in enumerate(v for s in registry.specs() for v in s.secret_variables)
}
DEAD = f"http://127.0.0.1:{free_port()}"
SINK_SECRETS = {
    "WATCHDOG_SLACK_WEBHOOK_URL": f"{DEAD}/services/SLACKHOOK-T0k3nXyZ",
    "WATCHDOG_PAGERDUTY_ROUTING_KEY": "PDROUTING-R0ut1ngKey77",
    "WATCHDOG_WEBHOOK_SECRET": "WHSIGNING-S1gn1ngK3y88",
    # The audit chain's key (issue 16); set here so the search covers it wherever it is read.
    "WATCHDOG_AUDIT_KEY": "AUDITKEY-" + "a7Fq" * 10,
}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
pytestmark = pytest.mark.slow


def spellings() -> list[str]:
    """Every form a secret could leak in."""
    found = {DB_PASSWORD, urllib.parse.quote(DB_PASSWORD, safe=""),
             urllib.parse.quote_plus(DB_PASSWORD), json.dumps(DB_PASSWORD)[1:-1]}
    for secret in [*PROVIDER_KEYS.values(), *SINK_SECRETS.values()]:
        found |= {secret, urllib.parse.quote(secret, safe="")}
    found.add("SLACKHOOK-T0k3nXyZ")
    return sorted(found)


class Run:
    """Runs commands and keeps everything they printed."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.env = env
        self.outputs: list[tuple[str, str]] = []
        self.tokens: list[str] = []

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "watchdog", "--config", str(self.config), *args],
            capture_output=True, text=True, timeout=timeout, env=self.env, check=False)
        stdout = result.stdout
        if args[:2] == ("tokens", "create") and result.returncode == 0:
            token = stdout.strip().splitlines()[0]
            self.tokens.append(token)
            stdout = stdout.replace(token, "<the token, printed once>")
        self.outputs.append((" ".join(args), stdout + result.stderr))
        return result

    def assert_clean(self) -> None:
        secrets = spellings() + self.tokens
        leaks = [(cmd, s) for cmd, text in self.outputs for s in secrets if s in text]
        assert not leaks, leaks


def _setup(tmp_path: Path, db_url: str, sandbox_urls: dict[str, str]) -> Run:
    providers = "".join(f'[providers.{name}]\nbase_url = "{url}"\n'
                        for name, url in sandbox_urls.items())
    config = tmp_path / "watchdog.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[scheduler]\nscan_interval = "1s"\n'
        '[api]\nport = 0\n'
        '[alerts]\nsinks = [\n'
        '  { type = "slack", min_severity = "warning" },\n'
        f'  {{ type = "pagerduty", url = "{DEAD}/v2/enqueue" }},\n'
        f'  {{ type = "webhook", url = "{DEAD}/hook" }},\n]\n'
        f'{providers}', encoding="utf-8")
    env = {**os.environ, **PROVIDER_KEYS, **SINK_SECRETS, "WATCHDOG_VERBOSE": ""}
    env.pop("WATCHDOG_CONFIG", None)
    env.pop("WATCHDOG_DATABASE_URL", None)
    return Run(config, env)


def _every_command(run: Run, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({
        "provider": "clearpay", "order_id": "100200", "amount": 1250, "currency": "GBP",
        "authorized_at": (NOW - dt.timedelta(days=12, hours=4)).isoformat()}) + "\n")
    run("db", "upgrade")
    run("db", "current")
    run("config", "check")
    run("config", "show")
    run("add", "--provider", "smartpay", "--order-id", "o-1", "--amount", "5000",
        "--currency", "JPY", "--authorized-at", (NOW - dt.timedelta(days=6, hours=2)).isoformat())
    run("import", str(rows))
    run("plan")
    run("show", "1")
    run("instruct", "1", "capture-now")
    run("explain", "1")
    run("providers", "check")
    run("scan")
    run("notify")
    run("alerts", "--all")
    run("pause", "--reason", "maintenance")
    run("resume")
    run("approve", "1", "--note", "ok")
    run("ack", "1", "--note", "seen")
    run("resolve", "1", "--state", "captured", "--note", "checked")
    run("audit", "--format", "json")
    run("audit", "verify")
    run("check")
    run("tokens", "create", "--name", "ci-writer", "--scope", "write")
    run("tokens", "list")
    run("run", "--max-passes", "1", timeout=90)


def _every_endpoint(run: Run, token: str | None) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "watchdog", "--config", str(run.config), "serve", "--port",
         str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run.env)
    base = f"http://127.0.0.1:{port}"
    answers: list[str] = []
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(100):
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if server.poll() is not None:
                        break
                    time.sleep(0.1)
            if server.poll() is None:
                good = {"Authorization": f"Bearer {token}"} if token else {}
                bad = {"Authorization": "Bearer ew_" + "A" * 43}
                body = {"provider": "clearpay", "order_id": "100300", "amount": 1000,
                        "currency": "GBP", "authorized_at": NOW.isoformat()}
                calls = [
                    ("POST", "/v1/authorizations", body), ("POST", "/v1/authorizations",
                                                           {**body, "amount": "1"}),
                    ("GET", "/v1/authorizations", None), ("GET", "/v1/authorizations/1", None),
                    ("POST", "/v1/authorizations/2/capture-instruction", {"when": "now"}),
                    ("POST", "/v1/authorizations/2/cancel", None),
                    ("GET", "/v1/authorizations/1/audit", None), ("GET", "/v1/plan", None),
                    ("GET", "/metrics", None), ("GET", "/readyz", None),
                    ("GET", "/healthz", None), ("GET", "/v1/openapi.json", None),
                ]
                for method, path, payload in calls:
                    for headers in (good, bad, {}):
                        answer = client.request(method, path, json=payload, headers=headers)
                        answers.append(f"{method} {path} {answer.status_code} "
                                       f"{answer.headers} {answer.text}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            out, err = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
    run.outputs.append(("serve", out + err))
    run.outputs.append(("API answers", "\n".join(answers)))


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


def test_no_secret_in_any_output_with_a_reachable_database(
    postgres: PostgresServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    postgres.create_database("nosecret")
    try:
        plain = postgres.url("nosecret")  # postgresql+psycopg://watchdog@host:port/db
        scheme, rest = plain.split("://", 1)
        user, host = rest.split("@", 1)
        url = f"{scheme}://{user}:{urllib.parse.quote(DB_PASSWORD, safe='')}@{host}"
        run = _setup(tmp_path, url, sandbox.base_urls())
        _every_command(run, tmp_path)
        assert run("db", "current").returncode == 0, run.outputs[-1]  # it did connect
        _every_endpoint(run, run.tokens[0] if run.tokens else None)
        run("tokens", "revoke", "ci-writer")
        run("db", "downgrade", "base")
    finally:
        postgres.drop_database("nosecret")
    assert run.tokens, run.outputs
    run.assert_clean()


def test_no_secret_in_any_output_with_an_unreachable_database(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    url = (f"postgresql+psycopg://svc:{urllib.parse.quote(DB_PASSWORD, safe='')}"
           f"@127.0.0.1:{free_port()}/wdb")
    run = _setup(tmp_path, url, sandbox.base_urls())
    _every_command(run, tmp_path)
    _every_endpoint(run, None)
    run("tokens", "revoke", "ci-writer")
    run("db", "downgrade", "base")
    run.assert_clean()
    failures = [text for cmd, text in run.outputs if cmd.startswith(("db current", "plan"))]
    assert all("127.0.0.1:" in text and "Traceback" not in text for text in failures), failures
