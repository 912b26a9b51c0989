"""One merchant account's secrets never reach another account, nor anything the watchdog
says (issue 19).

Every provider has two accounts, ``leak-alpha`` and ``leak-bravo``, each with the sandbox's
own credentials for it (``watchdog.sandbox.accounts.account_env``: the sandbox accepts
nothing else, and they differ per account by construction, which the test checks first).
The watchdog runs as real processes (``db upgrade``, ``import``, ``scan``) against the
sandbox over loopback HTTP through a recording proxy that keeps every request verbatim:
method, path and query, every header, the body. The sandbox's own request log says which
account each request reached; the proxy saw exactly those requests. No request to one
account carries any secret of the other, in any spelling (raw, URL-encoded, inside
``Basic`` base64); each account's requests do carry its own credentials, so the search is
looking at the right bytes.

Then ``config show``, ``config check``, ``providers check``, ``plan``, ``show``, ``check``
and ``audit`` run, and everything every command printed (stdout, and stderr with the JSON
logs; one ``scan`` with ``--verbose`` for the debug logs) is searched for every secret of
both accounts. The runner is ``Run`` of tests/e2e/test_no_secret_output.py.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.test_no_secret_output import Run
from watchdog.sandbox.accounts import account_env, prefix
from watchdog.sandbox.dialect import dialects
from watchdog.sandbox.server import MOUNTS, SandboxServer

pytestmark = pytest.mark.slow  # runs the CLI as a process

ACCOUNTS = ("leak-alpha", "leak-bravo")
OTHER = {"leak-alpha": "leak-bravo", "leak-bravo": "leak-alpha"}
#: Hop-by-hop and framing headers the proxy does not copy (aiohttp sets its own).
NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding", "connection",
                           "content-encoding", "keep-alive"})


def secrets_of(account: str) -> dict[str, str]:
    """Every secret ``account`` has, at every provider, by its variable."""
    found: dict[str, str] = {}
    for d in dialects():
        found.update(account_env(d.name, account))
    return found


def spellings(secret: str) -> set[str]:
    """The forms a secret could travel or print in."""
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
            json.dumps(secret)[1:-1]}


@dataclass(frozen=True)
class Seen:
    """One request exactly as it reached the proxy."""

    method: str
    path_qs: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def account(self) -> str:
        """The account the path addresses (``/accounts/<account>/...``)."""
        parts = self.path_qs.split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "accounts" else "default"

    def text(self) -> str:
        """Everything the request carried, raw and decoded (URL encoding, Basic base64)."""
        body = self.body.decode("utf-8", "replace")
        pieces = [self.method, self.path_qs, urllib.parse.unquote(self.path_qs), body,
                  urllib.parse.unquote_plus(body)]
        for name, value in self.headers:
            pieces += [f"{name}: {value}", urllib.parse.unquote(value)]
            scheme, _, credential = value.partition(" ")
            if name.lower() == "authorization" and scheme.lower() == "basic":
                # Smartpay sends its raw key after "Basic": that is in the header already.
                with contextlib.suppress(binascii.Error, ValueError):
                    pieces.append(base64.b64decode(credential, validate=True)
                                  .decode("utf-8", "replace"))
        return "\n".join(pieces)


class RecordingProxy:
    """A loopback HTTP server that keeps every request and forwards it to ``upstream``
    unchanged (the answer comes back unchanged too), on its own loop in a thread."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="recording-proxy")
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path_qs,
                              tuple(request.headers.items()), body))
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         headers=headers, data=body,
                                         allow_redirects=False) as answer:
            payload = await answer.read()
            back = {k: v for k, v in answer.headers.items() if k.lower() not in NOT_FORWARDED}
            return web.Response(status=answer.status, body=payload, headers=back)

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def proxy(sandbox: SandboxServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(sandbox.url) as recording:
        yield recording


def _config(tmp_path: Path, proxy: RecordingProxy) -> Path:
    """Two accounts of every provider, each at its own sandbox URL through the proxy."""
    sections = "".join(
        f"[providers.{name}.accounts.{account}]\n"
        f'base_url = "{proxy.url}{prefix(account)}{mount}"\n'
        for name, mount in MOUNTS.items() for account in ACCOUNTS)
    path = tmp_path / "watchdog.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "watchdog.db"}"\n'
        '[policy]\nalert_lead = "48h"\ncapture_lead = "24h"\ncritical_lead = "6h"\n'
        'on_deadline = "capture"\n[api]\nenabled = false\n' + sections, encoding="utf-8")
    return path


def _orders(sandbox: SandboxServer, tmp_path: Path) -> tuple[Path, int]:
    """The demo's orders of every provider, the same ids in both accounts, at the sandbox
    and as a JSON Lines file to import; and how many there are."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    lines = []
    for account in ACCOUNTS:
        for d in dialects():
            for order_id, amount, currency, age, extra in d.demo_orders:
                authorized_at = now - age
                sandbox.create_order(d.name, order_id, amount, currency, account=account,
                                     authorized_at=authorized_at)
                lines.append(json.dumps({
                    "provider": d.name, "account": account, "order_id": order_id,
                    "amount": amount, "currency": currency,
                    "authorized_at": authorized_at.isoformat(), **extra}))
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, len(lines)


def _env() -> dict[str, str]:
    """This process's environment without any WATCHDOG_* variable, plus the audit key and
    both accounts' secrets (the daemon reads each account's from its own variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    env["WATCHDOG_AUDIT_KEY"] = os.environ["WATCHDOG_AUDIT_KEY"]
    for account in ACCOUNTS:
        env.update(secrets_of(account))
    return env


def test_the_accounts_secrets_are_distinct() -> None:
    alpha, bravo = (set(secrets_of(a).values()) for a in ACCOUNTS)
    assert len(alpha) == len(secrets_of("leak-alpha")) and alpha.isdisjoint(bravo)
    for mine in alpha:
        for theirs in bravo:
            assert mine not in theirs and theirs not in mine, (mine, theirs)


def test_no_request_to_one_account_carries_the_other_accounts_secrets(
    tmp_path: Path, sandbox: SandboxServer, proxy: RecordingProxy,
) -> None:
    run = Run(_config(tmp_path, proxy), _env())
    orders, count = _orders(sandbox, tmp_path)
    assert run("db", "upgrade").returncode == 0, run.outputs[-1]
    imported = run("import", str(orders))
    assert imported.returncode == 0 and f"imported {count} new" in imported.stdout, \
        run.outputs[-1]
    for args in (("scan",), ("scan",), ("--verbose", "scan")):
        assert run(*args).returncode == 0, run.outputs[-1]

    # the scans acted at both accounts of every provider, with accepted credentials
    received = sandbox.requests()
    assert received and all(r["status"] != 401 for r in received), received
    acted = {(e["provider"], e["account"]) for e in sandbox.ledger()}
    assert acted == {(d.name, a) for d in dialects() for a in ACCOUNTS}, acted
    # the proxy saw exactly the requests the sandbox received
    assert len(proxy.seen) == len(received)
    assert sorted((s.account, s.method) for s in proxy.seen) == sorted(
        (r["account"], r["method"]) for r in received)

    leaks = []
    for seen in proxy.seen:
        assert seen.account in ACCOUNTS, seen.path_qs
        text = seen.text()
        leaks += [(seen.account, seen.method, seen.path_qs, variable)
                  for variable, secret in secrets_of(OTHER[seen.account]).items()
                  if any(s in text for s in spellings(secret))]
    assert not leaks, leaks
    # each account's requests carry its own credentials: the search sees the right bytes
    for d in dialects():
        for account in ACCOUNTS:
            own = [s.text() for s in proxy.seen
                   if s.account == account and f"/{account}{MOUNTS[d.name]}/" in s.path_qs]
            assert own, (d.name, account)
            assert all(any(secret in text for secret in account_env(d.name, account).values())
                       for text in own), (d.name, account)

    # and nothing the commands said names any secret of either account
    run("config", "show")
    assert run("config", "check").returncode == 0, run.outputs[-1]
    checked = run("providers", "check")
    assert checked.returncode == 0, run.outputs[-1]
    assert sorted(line.split()[0] for line in checked.stdout.splitlines()) == sorted(
        f"{d.name}/{a}" for d in dialects() for a in ACCOUNTS), checked.stdout
    run("plan")
    run("show", "1")
    run("show", str(count))
    run("--verbose", "show", str(count))
    run("check")
    run("audit", "--format", "json")
    said = [cmd for cmd, text in run.outputs if text.strip()]
    assert {"config show", "providers check", "plan", "show 1"} <= set(said), run.outputs
    assert any("leak-bravo" in text for cmd, text in run.outputs if cmd == f"show {count}")
    every = {variable: secret for account in ACCOUNTS
             for variable, secret in secrets_of(account).items()}
    printed = [(cmd, variable) for cmd, text in run.outputs
               for variable, secret in every.items()
               if any(s in text for s in spellings(secret))]
    assert not printed, printed
