"""A database password never reaches output, and a database that cannot be used is one
sentence naming where it is, with an exit code (issue 17, items 1 and 2).

The PostgreSQL test cluster trusts loopback, so any password connects: the password here
only has to survive every path unprinted. ``S3cr%40t%2Fpw`` is the percent-escaped form
that alembic's ConfigParser used to choke on and quote whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from tests.support.postgres import PostgresServer, free_port
from watchdog import schema
from watchdog.api.server import ThreadedServer
from watchdog.cli import main
from watchdog.db import make_engine
from watchdog.health import make_metrics_app

pytestmark = pytest.mark.wallclock

PASSWORD = "S3cr@t/pw"
ESCAPED = "S3cr%40t%2Fpw"
SPELLINGS = (PASSWORD, ESCAPED, "S3cr%2540t", "S3cr")


def _no_password(text: str) -> None:
    for spelling in SPELLINGS:
        assert spelling not in text, f"{spelling!r} leaked:\n{text}"


def _cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"WATCHDOG_DATABASE_URL": url,
                                                     "WATCHDOG_CONFIG": ""})


@pytest.fixture
def escaped_url(postgres: PostgresServer) -> Iterator[str]:
    """A reachable database whose URL carries a percent-escaped password."""
    postgres.create_database("pct")
    plain = postgres.url("pct")
    scheme, rest = plain.split("://", 1)
    user_host = rest.split("@", 1)
    user = user_host[0].split(":", 1)[0] if len(user_host) == 2 else "watchdog"
    host = user_host[-1]
    yield f"{scheme}://{user}:{ESCAPED}@{host}"
    postgres.drop_database("pct")


@pytest.fixture
def unreachable_url() -> str:
    """A PostgreSQL URL on a loopback port nobody listens on, percent-escaped password."""
    return f"postgresql+psycopg://svc:{ESCAPED}@127.0.0.1:{free_port()}/wdb"


def test_percent_escaped_password_migrates_and_is_never_printed(escaped_url: str) -> None:
    upgraded = _cli(escaped_url, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "database at" in upgraded.output
    current = _cli(escaped_url, "db", "current")
    assert current.exit_code == 0, current.output
    assert current.output.startswith("current ")
    checked = _cli(escaped_url, "check")
    assert checked.exit_code == 2, checked.output  # no pass yet: CRITICAL, not a crash
    assert checked.output.startswith("WATCHDOG CRITICAL")
    for result in (upgraded, current, checked):
        _no_password(result.output)
        assert "Traceback" not in result.output


def test_readyz_answers_503_with_a_reason_on_a_percent_escaped_url(
    escaped_url: str, unreachable_url: str
) -> None:
    for url in (escaped_url, unreachable_url):
        engine = make_engine(url)
        try:
            with ThreadedServer(make_metrics_app(engine, None)) as server:
                answer = httpx.get(f"{server.url}/readyz")
        finally:
            engine.dispose()
        assert answer.status_code == 503, answer.text
        _no_password(answer.text)
        checks = answer.json()["checks"]
        assert checks.get("schema", checks.get("database", "")) != "ok"


def test_readyz_names_host_and_port_of_an_unreachable_database(unreachable_url: str) -> None:
    engine = make_engine(unreachable_url)
    try:
        with ThreadedServer(make_metrics_app(engine, None)) as server:
            answer = httpx.get(f"{server.url}/readyz")
    finally:
        engine.dispose()
    assert answer.status_code == 503
    port = unreachable_url.rsplit(":", 1)[1].split("/")[0]
    assert answer.json()["checks"]["database"].startswith(
        f"unreachable: cannot use the database at 127.0.0.1:{port}: ")
    _no_password(answer.text)


# Every command that opens the database, with arguments that get it that far.
DATABASE_COMMANDS = [
    ("db", "upgrade"), ("db", "downgrade", "base"), ("db", "current"),
    ("add", "--provider", "smartpay", "--order-id", "o-1", "--amount", "5000",
     "--currency", "JPY", "--authorized-at", "2026-01-01T00:00:00+00:00"),
    ("import", "__FILE__"), ("instruct", "1", "cancel-now"), ("plan",), ("show", "1"),
    ("audit",), ("audit", "verify"), ("scan",), ("run", "--max-passes", "1"),
    ("pause", "--reason", "test"), ("resume",), ("approve", "1"), ("explain", "1"),
    ("resolve", "1", "--state", "captured", "--note", "checked"),
    ("ack", "1", "--note", "seen"), ("notify",), ("alerts",),
    ("tokens", "create", "--name", "ci", "--scope", "read"), ("tokens", "revoke", "ci"),
    ("tokens", "list",), ("serve", "--port", "0"),
]


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_command_answers_an_unreachable_database_in_one_sentence(
    args: tuple[str, ...], unreachable_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"provider": "smartpay", "order_id": "o-2", "amount": 5000, '
                    '"currency": "JPY", "authorized_at": "2026-01-01T00:00:00+00:00"}\n')
    argv = [str(data) if a == "__FILE__" else a for a in args]
    result = _cli(unreachable_url, *argv)
    port = unreachable_url.rsplit(":", 1)[1].split("/")[0]
    assert result.exit_code == 4, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: cannot use the database at 127.0.0.1:{port}: ")
    _no_password(result.output)


def test_check_answers_unknown_on_an_unreachable_database(unreachable_url: str) -> None:
    result = _cli(unreachable_url, "check")
    assert result.exit_code == 3, result.output
    port = unreachable_url.rsplit(":", 1)[1].split("/")[0]
    assert result.output.startswith(
        f"WATCHDOG UNKNOWN - database unreachable: cannot use the database at 127.0.0.1:{port}")
    _no_password(result.output)


def test_a_statement_that_fails_names_no_statement_and_no_parameters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    schema.upgrade(engine, "0001")  # tables of later revisions are missing
    engine.dispose()
    result = _cli(url, "tokens", "list")
    assert result.exit_code == 4, result.output
    assert result.output.startswith(f"error: cannot use the database at the SQLite file {tmp_path}")
    assert "SELECT" not in result.output and "[SQL:" not in result.output


@pytest.mark.parametrize("url", [f"postgresql+psycopg://svc:{ESCAPED}@127.0.0.1:notaport/wdb",
                                 f"nosuchdb://svc:{ESCAPED}@h/x"])
def test_a_database_url_that_does_not_parse_names_the_key(url: str) -> None:
    result = _cli(url, "db", "current")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: database.url: ")
    assert len(result.output.strip().splitlines()) == 1, result.output
    _no_password(result.output)
    checked = _cli(url, "check")
    assert checked.exit_code == 3 and checked.output.startswith("WATCHDOG UNKNOWN - ")
    _no_password(checked.output)
