"""confirming states; the early read's index; the installation id in idempotency keys

A capture answered JPMMPS ``CAPTURE_PENDING`` or Flitt ``hold`` (a reversal answered
``processing``) is not final: the row waits in ``confirming_capture`` /
``confirming_cancel`` while its status is polled. The state CHECK constraint widens to
admit both; a downgrade puts such rows back in flight (``capturing`` / ``canceling``),
where recovery reads the provider's status, before narrowing it again.

The early read (``watchdog.scan.early``) takes rows whose status was never read,
earliest deadline first: ``ix_authorizations_unsynced`` on (deadline, id), partial on
``last_synced_at IS NULL``, so it reads a batch, not the table.

Idempotency keys were unique only inside one database (``ew-<row id>-…``): a database
created anew, restored elsewhere or shared provider test accounts made the provider
replay the stored answer of another authorization. The one-row ``installation`` table
holds a random id made with the schema; keys carry it. A restore keeps it (it is data),
a new database gets a new one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:00:00
"""
from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import op

import watchdog.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OLD_STATES = ('authorized', 'capturing', 'partially_captured', 'captured', 'canceling',
              'canceled', 'expired', 'needs_attention')
NEW_STATES = (*OLD_STATES, 'confirming_capture', 'confirming_cancel')


def _check(states: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{s}'" for s in states) + ")"


def _replace_check(states: tuple[str, ...]) -> None:
    with op.batch_alter_table('authorizations') as batch_op:
        batch_op.drop_constraint(op.f('ck_authorizations_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_authorizations_state'), _check(states))


UNSYNCED = "last_synced_at IS NULL"


def upgrade() -> None:
    _replace_check(NEW_STATES)
    installation = op.create_table(
        'installation',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_installation')),
    )
    op.bulk_insert(installation, [{'id': secrets.token_hex(6),
                                   'created_at': dt.datetime.now(dt.UTC)}])
    op.create_index('ix_authorizations_unsynced', 'authorizations', ['deadline', 'id'],
                    unique=False, postgresql_where=sa.text(UNSYNCED),
                    sqlite_where=sa.text(UNSYNCED))


def downgrade() -> None:
    op.drop_table('installation')
    op.drop_index('ix_authorizations_unsynced', table_name='authorizations',
                  postgresql_where=sa.text(UNSYNCED), sqlite_where=sa.text(UNSYNCED))
    op.execute("UPDATE authorizations SET state = 'capturing' "
               "WHERE state = 'confirming_capture'")
    op.execute("UPDATE authorizations SET state = 'canceling' "
               "WHERE state = 'confirming_cancel'")
    op.execute("UPDATE actions SET status = 'unknown' WHERE status = 'confirming'")
    _replace_check(OLD_STATES)
