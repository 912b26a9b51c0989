"""due index in the claim's order: (next_action_at, id)

The claim reads due rows ORDER BY next_action_at, id LIMIT n. With the index on
next_action_at alone, PostgreSQL sorted every due row (or an incremental sort over
them) before the limit; with id in the index it reads n index entries and stops.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

WHERE = "next_action_at IS NOT NULL"


def upgrade() -> None:
    op.drop_index('ix_authorizations_due', table_name='authorizations',
                  postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))
    op.create_index('ix_authorizations_due', 'authorizations', ['next_action_at', 'id'],
                    unique=False, postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index('ix_authorizations_due', table_name='authorizations',
                  postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))
    op.create_index('ix_authorizations_due', 'authorizations', ['next_action_at'],
                    unique=False, postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))
