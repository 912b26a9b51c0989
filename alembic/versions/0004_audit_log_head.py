"""audit_log_head(): take the chain's lock and read its head in one round trip

Every audit append on PostgreSQL took the advisory lock and then read the last hash:
two round trips, both while other writers queue on the lock. The function does both
in one call. It is VOLATILE, so its SELECT takes a snapshot after the lock is granted
and sees a row committed by the writer it waited for.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 07:25:00
"""
from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite's write lock already serialises appends; nothing to do
    op.execute(
        """
        CREATE FUNCTION audit_log_head(lock_key bigint) RETURNS text
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            RETURN (SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1);
        END $$;
        """
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_head(bigint)")
