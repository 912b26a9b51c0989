"""accounts: authorizations belong to a merchant account at their provider (issue 19)

A team holds several merchant accounts at one provider (two JPMMPS merchant keys, a Flitt
``merchant_id`` per shop); each account chooses its own order ids, so the same order id
in two accounts is two authorizations. ``account`` (default ``default``: every existing
row belongs to the one account a configuration without ``accounts`` has) joins the
uniqueness: (provider, account, order_id). A downgrade refuses to run while two rows
would collide under the old (provider, order_id) constraint.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 13:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('authorizations') as batch_op:
        batch_op.add_column(sa.Column('account', sa.String(length=32), nullable=False,
                                      server_default='default'))
        batch_op.drop_constraint(op.f('uq_authorizations_provider_order_id'), type_='unique')
        batch_op.create_unique_constraint(
            op.f('uq_authorizations_provider_account_order_id'),
            ['provider', 'account', 'order_id'])


def downgrade() -> None:
    clash = op.get_bind().execute(sa.text(
        "SELECT provider, order_id FROM authorizations GROUP BY provider, order_id "
        "HAVING COUNT(*) > 1")).first()
    if clash is not None:
        raise RuntimeError(
            f"cannot downgrade below 0008: {clash[0]} order {clash[1]} is registered in "
            "more than one account")
    with op.batch_alter_table('authorizations') as batch_op:
        batch_op.drop_constraint(op.f('uq_authorizations_provider_account_order_id'),
                                 type_='unique')
        batch_op.create_unique_constraint(op.f('uq_authorizations_provider_order_id'),
                                          ['provider', 'order_id'])
        batch_op.drop_column('account')
