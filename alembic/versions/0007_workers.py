"""workers: one row per live scanning process with its heartbeat

A row leased to a worker was held for the whole ``scheduler.lease`` (5 minutes), which
had to outlast the slowest provider call; a crash-looping daemon stranded every batch it
claimed for that long. Now each worker renews its heartbeat here (a thread, every third
of a lease) and a row leased to a worker whose heartbeat is older than one lease is free
to claim, so the lease can be short (15 s); a restarted daemon on the same machine (same
boot id and PID namespace, ``host_key``) whose previous incarnation's pid is gone takes
that incarnation's rows at once. The partial index on claimed_by finds the
rows each worker holds (for the next wake-up, ``metrics`` and ``check``) without reading
the table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchdog.models import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

CLAIMED = "claimed_by IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        'workers',
        sa.Column('id', sa.String(length=128), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('heartbeat_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('host_key', sa.String(length=120), nullable=True),
        sa.Column('pid', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_workers')),
    )
    op.create_index('ix_workers_heartbeat_at', 'workers', ['heartbeat_at'], unique=False)
    op.create_index('ix_authorizations_claimed_by', 'authorizations', ['claimed_by'],
                    unique=False, postgresql_where=sa.text(CLAIMED),
                    sqlite_where=sa.text(CLAIMED))


def downgrade() -> None:
    op.drop_index('ix_authorizations_claimed_by', table_name='authorizations',
                  postgresql_where=sa.text(CLAIMED), sqlite_where=sa.text(CLAIMED))
    op.drop_index('ix_workers_heartbeat_at', table_name='workers')
    op.drop_table('workers')
