"""``tokens create|revoke|list`` and ``serve`` as an operator runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from watchdog import audit, tokens
from watchdog.cli.api import tokens_group

pytestmark = pytest.mark.wallclock


def _config_file(tmp_path: Path, db_url: str, port: int = 8787) -> Path:
    path = tmp_path / "watchdog.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n\n[api]\nhost = "127.0.0.1"\nport = {port}\n')
    return path


def test_tokens_create_list_revoke(engine: Engine, db_url: str, tmp_path: Path) -> None:
    env = {"WATCHDOG_CONFIG": str(_config_file(tmp_path, db_url))}
    runner = CliRunner()

    created = runner.invoke(tokens_group, ["create", "--name", "shop-backend", "--scope", "write"],
                            env=env)
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    assert secret.startswith("ew_")
    assert len(secret) == 3 + 43  # 32 random bytes, URL-safe base64
    assert tokens.authenticate(engine, secret, tokens.list_tokens(engine)[0].created_at)

    again = runner.invoke(tokens_group, ["create", "--name", "shop-backend", "--scope", "read"],
                          env=env)
    assert again.exit_code == 1
    assert "already exists" in again.output
    bad = runner.invoke(tokens_group, ["create", "--name", "has space", "--scope", "read"], env=env)
    assert bad.exit_code == 1
    assert runner.invoke(tokens_group, ["create", "--name", "x", "--scope", "admin"],
                         env=env).exit_code == 2

    listed = runner.invoke(tokens_group, ["list"], env=env)
    assert listed.exit_code == 0
    assert "shop-backend" in listed.output
    assert "write" in listed.output
    assert secret not in listed.output

    revoked = runner.invoke(tokens_group, ["revoke", "shop-backend"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert runner.invoke(tokens_group, ["revoke", "shop-backend"], env=env).exit_code == 1
    assert tokens.authenticate(engine, secret, tokens.list_tokens(engine)[0].created_at) is None

    rows = [audit.row_as_dict(r) for r in audit.query(engine) if r.event != audit.REKEY_EVENT]
    assert [r["event"] for r in rows] == ["tokens:shop-backend:create", "tokens:shop-backend:revoke"]
    assert all(r["actor"].startswith("cli:") for r in rows)
    assert secret not in json.dumps(rows, default=str)
    assert tokens.hash_token(secret) not in json.dumps(rows, default=str)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_runs_a_separate_api_process(engine: Engine, db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    config = _config_file(tmp_path, db_url, port)
    secret = tokens.create(engine, "ops", tokens.Scope.READ, "test", dt.datetime.now(dt.UTC))
    script = ("from watchdog.logs import setup_logging; setup_logging(False, True); "
              "from watchdog.cli.api import serve; serve()")
    env = {**os.environ, "WATCHDOG_CONFIG": str(config)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # blocks until uvicorn reports it is listening
            seen.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError("serve exited early:\n" + "".join(seen))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/v1/openapi.json").status_code == 200
            plan = client.get("/v1/plan", headers={"Authorization": f"Bearer {secret}"})
            assert plan.status_code == 200
            assert plan.json()["entries"] == []
            assert client.get("/v1/plan").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
    assert proc.returncode in (0, -signal.SIGTERM), rest  # uvicorn re-raises SIGTERM
    assert secret not in "".join(seen) + rest
