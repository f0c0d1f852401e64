"""performance: index only the webhook deliveries waiting to be applied (core/inbox.py)

The drainer asks for a source's next waiting deliveries before every batch; without this index
the database read every delivery the source ever had to find them.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

WAITING = sa.text("status = 'received'")


def upgrade() -> None:
    with op.batch_alter_table('webhookdelivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhookdelivery_waiting', ['source_id', 'id'], unique=False,
                              sqlite_where=WAITING, postgresql_where=WAITING)


def downgrade() -> None:
    with op.batch_alter_table('webhookdelivery', schema=None) as batch_op:
        batch_op.drop_index('ix_webhookdelivery_waiting')
