"""The keyed audit chain against an insider who can write the database, on both databases:
delete the newest rows, truncate, rewrite with and without the key, reorder, re-use ids.
Each is detected and named, by the chain itself or against the checkpoint kept outside
the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update

from tests.support.audit_key import TEST_AUDIT_KEY
from watchdog import anchor, audit
from watchdog.audit import AuditEvent, AuditTamperError, TamperKind
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.models import AuditRow
from watchdog.scan import Scanner

KEY = TEST_AUDIT_KEY.encode()


@pytest.fixture(autouse=True)
def checkpoint_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Checkpoints in the test's directory on both databases."""
    path = tmp_path / "state" / "audit-checkpoint.json"
    path.parent.mkdir()
    monkeypatch.setenv(anchor.CHECKPOINT_VARIABLE, str(path))
    return path


def _append(engine: Engine, n: int, now: dt.datetime, start: int = 0) -> None:
    with transaction(engine) as session:
        audit.append(session, [
            AuditEvent(event="test:row:write", actor="test", authorization_id=start + i,
                       amount=100 + i, currency="EUR", detail={"i": start + i})
            for i in range(n)
        ], now)


def _unprotect(engine: Engine) -> None:
    """What an insider with DDL rights does first."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def _remac(engine: Engine, key: bytes, from_id: int) -> None:
    """Recompute the links from ``from_id`` on, as someone holding ``key`` would."""
    with transaction(engine) as session:
        rows = list(session.scalars(select(AuditRow).order_by(AuditRow.id)))
        prev = audit.GENESIS
        for row in rows:
            if row.id >= from_id:
                mac = audit.row_mac(key, row.id, prev, audit.chain_row(row).payload)
                session.execute(update(AuditRow).where(AuditRow.id == row.id)
                                .values(prev_hash=prev, hash=mac))
                prev = mac
            else:
                prev = row.hash


@pytest.fixture
def chain(engine: Engine, clock: FrozenClock) -> anchor.Checkpoint:
    """The re-key row plus 10 rows, checkpointed."""
    _append(engine, 10, clock.now())
    checkpoint = audit.write_checkpoint(engine, clock.now())
    assert checkpoint is not None and (checkpoint.rows, checkpoint.last_id) == (11, 11)
    return checkpoint


def _tamper(engine: Engine, checkpoint: anchor.Checkpoint) -> TamperKind:
    with pytest.raises(AuditTamperError) as caught:
        audit.verify(engine, checkpoint)
    return caught.value.kind


def test_intact_chain_verifies_against_its_checkpoint(
    engine: Engine, chain: anchor.Checkpoint, checkpoint_file: Path,
) -> None:
    assert anchor.read_checkpoint(checkpoint_file) == chain
    report = audit.verify(engine, chain)
    assert (report.rows, report.last_id, report.keyed_from, report.legacy_rows) == (11, 11, 1, 0)
    assert chain.head in report.describe() and len(chain.head) == 64
    assert "matches the checkpoint" in report.describe()


def test_deleting_the_newest_rows_is_detected_against_the_checkpoint(
    engine: Engine, chain: anchor.Checkpoint, clock: FrozenClock, checkpoint_file: Path,
) -> None:
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 8"))
    audit.verify(engine)  # what the table alone shows: a shorter chain that fits
    assert _tamper(engine, chain) is TamperKind.TRUNCATED
    with pytest.raises(audit.CheckpointMismatch, match="deleted or truncated"):
        audit.write_checkpoint(engine, clock.now())
    assert anchor.read_checkpoint(checkpoint_file) == chain, "the evidence is kept"


def test_truncating_the_table_is_detected(engine: Engine, chain: anchor.Checkpoint) -> None:
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log" if engine.dialect.name == "postgresql"
                          else "DELETE FROM audit_log"))
    assert _tamper(engine, chain) is TamperKind.TRUNCATED
    with pytest.raises(AuditTamperError, match="no re-key row") as caught:
        audit.verify(engine)  # even without the checkpoint: a keyed chain never is empty
    assert caught.value.kind is TamperKind.TRUNCATED


@pytest.mark.parametrize("how", ["edit", "legacy hashes", "wrong key"])
def test_rewriting_without_the_key_is_detected(
    engine: Engine, chain: anchor.Checkpoint, how: str,
) -> None:
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET amount = 1 WHERE id = 5"))
    if how == "legacy hashes":  # re-hash every row the way the old, unkeyed chain did
        with transaction(engine) as session:
            prev = audit.GENESIS
            for row in session.scalars(select(AuditRow).order_by(AuditRow.id)):
                digest = audit.chain_hash(prev, audit.chain_row(row).payload)
                session.execute(update(AuditRow).where(AuditRow.id == row.id)
                                .values(prev_hash=prev, hash=digest))
                prev = digest
    elif how == "wrong key":
        _remac(engine, b"a guessed key, not the real one", 5)
    with pytest.raises(AuditTamperError, match=r"audit row (1|5)\b") as caught:
        audit.verify(engine)
    assert caught.value.kind is TamperKind.EDITED
    assert _tamper(engine, chain) is TamperKind.EDITED


def test_rewriting_with_the_key_is_detected_against_the_checkpoint(
    engine: Engine, chain: anchor.Checkpoint,
) -> None:
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET amount = 1 WHERE id = 5"))
    _remac(engine, KEY, 5)
    audit.verify(engine)  # a key holder can make the table consistent again...
    with pytest.raises(AuditTamperError, match="rewritten") as caught:
        audit.verify(engine, chain)  # ...but not match what was anchored outside it
    assert caught.value.kind is TamperKind.REWRITTEN


def test_reordering_rows_is_detected(engine: Engine, chain: anchor.Checkpoint) -> None:
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET id = -4 WHERE id = 4"))
        conn.execute(text("UPDATE audit_log SET id = 4 WHERE id = 5"))
        conn.execute(text("UPDATE audit_log SET id = 5 WHERE id = -4"))
    with pytest.raises(AuditTamperError, match="audit row 4 does not follow") as caught:
        audit.verify(engine)
    assert caught.value.kind is TamperKind.LINK


def test_deleting_a_row_in_the_middle_is_detected_even_when_relinked_with_the_key(
    engine: Engine, chain: anchor.Checkpoint,
) -> None:
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 6"))
    with pytest.raises(AuditTamperError) as caught:
        audit.verify(engine)
    assert caught.value.kind is TamperKind.LINK
    _remac(engine, KEY, 7)  # relinked: every MAC fits, but the ids jump
    with pytest.raises(AuditTamperError, match="jump from 5 to 7") as caught:
        audit.verify(engine)
    assert caught.value.kind is TamperKind.GAP


def test_reusing_ids_after_deleting_the_tail_is_detected(
    engine: Engine, chain: anchor.Checkpoint, clock: FrozenClock,
) -> None:
    """SQLite re-uses deleted ids; so do our appends (head + 1): the chain fits again,
    the checkpoint does not."""
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 8"))
    _append(engine, 3, clock.now(), start=100)  # the service keeps running: ids 9..11 again
    audit.verify(engine)
    with pytest.raises(AuditTamperError, match="id re-used") as caught:
        audit.verify(engine, chain)
    assert caught.value.kind is TamperKind.REWRITTEN


def test_auditor_anchor_given_by_hand(engine: Engine, chain: anchor.Checkpoint) -> None:
    audit.verify(engine, expect_head=chain.head, expect_rows=chain.rows)
    with pytest.raises(AuditTamperError) as caught:
        audit.verify(engine, expect_head="0" * 64, expect_rows=chain.rows)
    assert caught.value.kind is TamperKind.REWRITTEN
    with pytest.raises(AuditTamperError) as caught:
        audit.verify(engine, expect_head=chain.head, expect_rows=chain.rows + 5)
    assert caught.value.kind is TamperKind.TRUNCATED


def test_every_pass_writes_a_checkpoint_and_refuses_one_over_a_shrunk_table(
    engine: Engine, config: Config, clock: FrozenClock, checkpoint_file: Path,
) -> None:
    _append(engine, 4, clock.now())

    async def no_sleep(_: float) -> None:
        return None

    scanner = Scanner(engine, config, {}, clock, "w1", sleep=no_sleep)
    report = asyncio.run(scanner.run_pass())
    assert report.checkpoint is not None and report.audit_problem is None
    assert anchor.read_checkpoint(checkpoint_file) == report.checkpoint
    assert f"head={report.checkpoint.head}" in report.summary()
    assert report.log_fields()["audit_head"] == report.checkpoint.head
    first = report.checkpoint

    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 3"))
    clock.advance(dt.timedelta(minutes=1))
    report = asyncio.run(scanner.run_pass())
    assert report.checkpoint is None
    assert report.audit_problem is not None and "deleted or truncated" in report.audit_problem
    assert "AUDIT CHECKPOINT REFUSED" in report.summary()
    assert anchor.read_checkpoint(checkpoint_file) == first
    with pytest.raises(AuditTamperError) as caught:
        audit.verify(engine, anchor.read_checkpoint(checkpoint_file))
    assert caught.value.kind is TamperKind.TRUNCATED


def test_an_exported_copy_verifies_and_its_tampering_is_detected(
    engine: Engine, chain: anchor.Checkpoint, tmp_path: Path,
) -> None:
    exported = [json.dumps(audit.row_as_dict(r), default=str) for r in audit.query(engine)]
    rows = [audit.exported_row(json.loads(line)) for line in exported]
    report = audit.verify_rows(rows, KEY, expect_head=chain.head, expect_rows=chain.rows)
    assert report.last_hash == chain.head
    edited = json.loads(exported[4])
    edited["amount"] = 1
    rows[4] = audit.exported_row(edited)
    with pytest.raises(AuditTamperError) as caught:
        audit.verify_rows(rows, KEY, expect_head=chain.head, expect_rows=chain.rows)
    assert caught.value.kind is TamperKind.EDITED
