"""check's (state, deadline) index; the keyed audit chain and its re-key row

1. ``check`` judges open authorizations by their deadline (``watchdog.risk``): a range on
   (state, deadline) reads only the rows near their deadline. It replaces the index on
   state alone, which it serves as well (state is its first column).
2. The audit chain becomes keyed (HMAC-SHA256 over id, previous MAC and row, with a key
   kept outside the database, ``watchdog.anchor``). The existing chain is verified as the
   plain SHA-256 chain it is, then one ``audit:chain:rekey`` row is appended that names the
   legacy row count and head; it and every row after it are keyed, with dense ids. A
   legacy chain that does not verify stops the migration: re-keying would bless it.
   For a SQLite database the key file is created beside it (mode 0600) when no key is
   configured; a PostgreSQL database needs ``$WATCHDOG_AUDIT_KEY`` (or the credential).
3. PostgreSQL: ``audit_log_tail(lock)`` takes the chain's lock and returns "id MAC" of the
   head in one round trip (appends assign ids: the MAC covers them).

Downgrade drops the index and the function; the keyed rows stay (the table is
append-only), and 0004's code cannot verify past the re-key row.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03 16:50:00
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from alembic import op
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_index('ix_authorizations_state')
        batch_op.create_index('ix_authorizations_state_deadline', ['state', 'deadline'],
                              unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_log_tail(lock_key bigint) RETURNS text
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock(lock_key);
                RETURN (SELECT id::text || ' ' || hash FROM audit_log ORDER BY id DESC LIMIT 1);
            END $$;
            """
        )
    _rekey(bind)


def _rekey(bind: Connection) -> None:
    from watchdog import anchor, audit
    from watchdog.errors import AuditIntegrityError
    from watchdog.models import AuditRow

    url = bind.engine.url
    anchor.create_key_file(url)
    key = anchor.load_key(url)  # fail here, with the reason, rather than at the first append
    with Session(bind=bind) as session:
        count = session.scalar(select(func.count()).select_from(AuditRow)) or 0

        def legacy_rows() -> Iterator[audit.ChainRow]:
            last = 0
            while True:
                chunk = list(session.scalars(select(AuditRow).where(AuditRow.id > last)
                                             .order_by(AuditRow.id).limit(5000)))
                if not chunk:
                    return
                yield from (audit.chain_row(r) for r in chunk)
                last = chunk[-1].id

        try:
            report = audit.verify_rows(legacy_rows(), key, require_keyed=False)
        except AuditIntegrityError as exc:
            raise AuditIntegrityError(
                f"the existing audit chain does not verify ({exc}); not re-keying it. "
                "Investigate (docs/runbook.md, 'Verifying the audit chain') before upgrading"
            ) from None
        if report.keyed_from is not None:
            return  # already keyed (upgrade run again after a downgrade)
        assert report.rows == count
        audit.append(session, [audit.rekey_event(
            report.rows, report.last_hash,
            "migration 0006: the chain is keyed from this row on; rows before it are the "
            "legacy plain SHA-256 chain",
        )], dt.datetime.now(dt.UTC))
        session.flush()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_tail(bigint)")
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_index('ix_authorizations_state_deadline')
        batch_op.create_index('ix_authorizations_state', ['state'], unique=False)
