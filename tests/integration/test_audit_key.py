"""The audit key lives outside the database (a key file beside SQLite, created by ``db
upgrade``, mode 0600; or ``$WATCHDOG_AUDIT_KEY``), existing chains are re-keyed from a stated
row, and ``audit verify`` prints the full head and names what it compared with."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from watchdog import anchor, audit, schema
from watchdog.audit import AUDIT_LOG, AuditEvent, _canonical, _row_payload
from watchdog.cli import main
from watchdog.db import make_engine, transaction
from watchdog.errors import AuditIntegrityError

pytestmark = pytest.mark.wallclock


def _legacy_rows(engine: Engine, n: int, now: dt.datetime, *, break_at: int | None = None) -> str:
    """Rows as 0004 wrote them: a plain SHA-256 chain, ids from the database (with a gap, as
    a PostgreSQL sequence leaves after a rollback). Returns the head."""
    prev = audit.GENESIS
    rows = []
    for i in range(n):
        ev = AuditEvent(event="scan:capture:outcome", actor="worker@old:1", amount=i,
                        currency="JPY", detail={"i": i})
        payload = _row_payload(now, ev, _canonical(ev.detail))
        digest = audit.chain_hash(prev, payload)
        if break_at == i:
            digest = "f" * 64
        rows.append({**payload, "id": i + 1 + (i >= 2) * 5, "recorded_at": now,
                     "prev_hash": prev, "hash": digest})
        prev = digest
    with engine.begin() as conn:
        conn.execute(AUDIT_LOG.insert(), rows)
    return prev


def test_existing_chain_is_rekeyed_from_a_stated_row(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        schema.upgrade(engine, "0004")
        now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        legacy_head = _legacy_rows(engine, 5, now)
        schema.upgrade(engine)
        report = audit.verify(engine)
        assert (report.rows, report.legacy_rows, report.keyed_from) == (6, 5, 11)
        rekey = [r for r in audit.query(engine) if r.event == audit.REKEY_EVENT]
        assert [r.id for r in rekey] == [11]
        detail = json.loads(rekey[0].detail)
        assert detail["legacy_rows"] == 5 and detail["legacy_head"] == legacy_head
        assert detail["scheme"] == audit.MAC_SCHEME
        with transaction(engine) as session:  # appends go on keyed, with dense ids
            audit.append(session, [AuditEvent(event="test:row:write", actor="t")], now)
        assert audit.verify(engine).last_id == 12
        assert "5 legacy unkeyed rows before it" in audit.verify(engine).describe()
    finally:
        engine.dispose()


def test_a_broken_legacy_chain_is_not_rekeyed(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        schema.upgrade(engine, "0004")
        _legacy_rows(engine, 4, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), break_at=2)
        with pytest.raises(AuditIntegrityError, match="not re-keying"):
            schema.upgrade(engine)
        assert schema.current_revision(engine) == "0004"
    finally:
        engine.dispose()


def test_db_upgrade_creates_the_key_file_beside_sqlite_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(anchor.KEY_VARIABLE)
    db = tmp_path / "watchdog.db"
    config = tmp_path / "w.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "watchdog.db.audit-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) == 64
    assert key.encode() not in db.read_bytes(), "the key never sits in the database"
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert audit.verify(engine, key=key.encode()).keyed_from == 1
        with pytest.raises(AuditIntegrityError, match="MAC"):
            audit.verify(engine, key=b"x" * 64)  # another key cannot vouch for it
    finally:
        engine.dispose()

    key_file.chmod(0o640)
    anchor.forget_keys()
    with pytest.raises(anchor.AuditKeyError, match="readable by group or others"):
        anchor.load_key(f"sqlite:///{db}")
    key_file.unlink()
    with pytest.raises(anchor.AuditKeyError, match="missing"):
        anchor.load_key(f"sqlite:///{db}")


def test_postgresql_without_a_key_is_refused_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(anchor.KEY_VARIABLE)
    with pytest.raises(anchor.AuditKeyError, match="WATCHDOG_AUDIT_KEY"):
        anchor.load_key("postgresql+psycopg://watchdog@localhost/watchdog", environ={})
    with pytest.raises(anchor.AuditKeyError, match="shorter"):
        anchor.load_key("postgresql+psycopg://x@y/z", environ={anchor.KEY_VARIABLE: "short"})


def test_audit_verify_cli_prints_the_full_head_and_its_anchor(
    tmp_path: Path, engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoint_file = tmp_path / "cp.json"
    monkeypatch.setenv(anchor.CHECKPOINT_VARIABLE, str(checkpoint_file))
    config = tmp_path / "w.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    now = dt.datetime.now(dt.UTC)
    with transaction(engine) as session:
        audit.append(session, [AuditEvent(event="test:row:write", actor="t")] * 3, now)
    runner = CliRunner()

    def verify(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["--config", str(config), "audit", "verify", *args])
        return result.exit_code, result.output

    code, out = verify()
    assert code == 0 and "NOT compared with any checkpoint" in out
    checkpoint = audit.write_checkpoint(engine, now)
    assert checkpoint is not None
    code, out = verify()
    assert code == 0, out
    assert f"head {checkpoint.head}\n" in out and "matches the checkpoint" in out
    code, out = verify("--expect-head", checkpoint.head, "--expect-rows", "4")
    assert code == 0, out
    code, out = verify("--expect-head", "a" * 64, "--expect-rows", "4")
    assert code == 1 and "rewritten" in out
    code, out = verify("--expect-head", "a" * 64)
    assert code == 2 and "go together" in out

    exported = tmp_path / "export.jsonl"
    export = runner.invoke(main, ["--config", str(config), "audit", "--format", "json"])
    exported.write_text(export.output)
    code, out = verify("--from-file", str(exported), "--expect-head", checkpoint.head,
                       "--expect-rows", "4")
    assert code == 0, out
    with engine.begin() as conn:  # the database is gone; the copy is what the auditor has
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(text("DELETE FROM audit_log WHERE id > 2"))
    code, out = verify()
    assert code == 1 and "truncated" in out
