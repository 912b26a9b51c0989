"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 02:41:32.396369
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import watchdog.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('authorization_id', sa.BigInteger(), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('notified_revision', sa.Integer(), nullable=False),
    sa.Column('created_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_alerts_dedup_key'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_status', ['status'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('recorded_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('authorization_id', sa.BigInteger(), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('state_from', sa.String(length=24), nullable=True),
    sa.Column('state_to', sa.String(length=24), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_authorization_id', ['authorization_id'], unique=False)

    op.create_table('authorizations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('authorized_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('on_deadline', sa.String(length=16), nullable=True),
    sa.Column('capture_amount', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('captured_amount', sa.BigInteger(), nullable=False),
    sa.Column('capture_count', sa.Integer(), nullable=False),
    sa.Column('deadline', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline_source', sa.String(length=24), nullable=False),
    sa.Column('next_action_at', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('not_before', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('alert_stage', sa.SmallInteger(), nullable=False),
    sa.Column('instruction', sa.String(length=24), nullable=True),
    sa.Column('instruction_amount', sa.BigInteger(), nullable=True),
    sa.Column('instruction_final', sa.Boolean(), nullable=False),
    sa.Column('provider_state', sa.String(length=40), nullable=True),
    sa.Column('provider_expires_at', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider_open_amount', sa.BigInteger(), nullable=True),
    sa.Column('last_synced_at', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_until', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('authorized', 'capturing', 'partially_captured', 'captured', 'canceling', 'canceled', 'expired', 'needs_attention')", name=op.f('ck_authorizations_state')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_authorizations_amount_positive')),
    sa.CheckConstraint('captured_amount >= 0 AND captured_amount <= amount', name=op.f('ck_authorizations_captured')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorizations')),
    sa.UniqueConstraint('provider', 'order_id', name=op.f('uq_authorizations_provider_order_id'))
    )
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.create_index('ix_authorizations_due', ['next_action_at'], unique=False, postgresql_where=sa.text('next_action_at IS NOT NULL'), sqlite_where=sa.text('next_action_at IS NOT NULL'))
        batch_op.create_index('ix_authorizations_state', ['state'], unique=False)

    op.create_table('passes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('started_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passes'))
    )
    op.create_table('actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('authorization_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('sends', sa.Integer(), nullable=False),
    sa.Column('recoveries', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('provider_code', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('created_at', watchdog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', watchdog.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_actions_authorization_id_authorizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_actions')),
    sa.UniqueConstraint('authorization_id', 'kind', 'seq', 'attempt', name=op.f('uq_actions_authorization_id_kind_seq_attempt')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_actions_idempotency_key'))
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index('ix_actions_open', ['status'], unique=False, postgresql_where=sa.text("status IN ('pending', 'unknown')"), sqlite_where=sa.text("status IN ('pending', 'unknown')"))

    _protect_audit_log()


def downgrade() -> None:
    _unprotect_audit_log()
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index('ix_actions_open', postgresql_where=sa.text("status IN ('pending', 'unknown')"), sqlite_where=sa.text("status IN ('pending', 'unknown')"))

    op.drop_table('actions')
    op.drop_table('passes')
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_index('ix_authorizations_state')
        batch_op.drop_index('ix_authorizations_due', postgresql_where=sa.text('next_action_at IS NOT NULL'), sqlite_where=sa.text('next_action_at IS NOT NULL'))

    op.drop_table('authorizations')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_authorization_id')

    op.drop_table('audit_log')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_status')

    op.drop_table('alerts')


def _protect_audit_log() -> None:
    """The audit table is append-only: the database itself refuses UPDATE and DELETE."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {verb} refused'); END"
            )


def _unprotect_audit_log() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
