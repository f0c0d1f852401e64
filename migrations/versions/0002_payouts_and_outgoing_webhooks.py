"""payouts and outgoing webhooks

Payouts (and their items and scheduled runs), the program's payout settings, the ledger's link
from a paid movement to its payout; webhook endpoints and the transactional outbox (events,
deliveries, attempts). Existing programs get `payout_minimum` 0 and `payout_schedule` manual.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel

import core.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outgoingevent',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('program_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outgoingevent', schema=None) as batch_op:
        batch_op.create_index('ix_outgoingevent_program_created', ['program_id', 'created_at'], unique=False)

    op.create_table('payoutrun',
    sa.Column('program_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payouts', sa.Integer(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('program_id', 'period')
    )
    op.create_table('webhookendpoint',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('program_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('secret_encrypted', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhookendpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhookendpoint_program_id'), ['program_id'], unique=False)

    op.create_table('outgoingdelivery',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('program_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('endpoint_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', core.models.UTCDateTime(), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('delivered_at', core.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhookendpoint.id'], ),
    sa.ForeignKeyConstraint(['event_id'], ['outgoingevent.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_id', 'event_id')
    )
    with op.batch_alter_table('outgoingdelivery', schema=None) as batch_op:
        batch_op.create_index('ix_outgoingdelivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_outgoingdelivery_program_created', ['program_id', 'created_at'], unique=False)

    op.create_table('payout',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('program_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('partner_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('paid_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.Column('paid_at', core.models.UTCDateTime(), nullable=True),
    sa.Column('canceled_at', core.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payout', schema=None) as batch_op:
        batch_op.create_index('ix_payout_partner', ['partner_id', 'status', 'currency'], unique=False)
        batch_op.create_index('ix_payout_program_created', ['program_id', 'created_at'], unique=False)

    op.create_table('outgoingattempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('delivery_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', core.models.UTCDateTime(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['outgoingdelivery.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outgoingattempt', schema=None) as batch_op:
        batch_op.create_index('ix_outgoingattempt_delivery', ['delivery_id', 'at'], unique=False)

    op.create_table('payoutitem',
    sa.Column('payout_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('conversion_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('program_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['conversion_id'], ['conversion.id'], ),
    sa.ForeignKeyConstraint(['payout_id'], ['payout.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('payout_id', 'conversion_id')
    )
    with op.batch_alter_table('payoutitem', schema=None) as batch_op:
        batch_op.create_index('ix_payoutitem_conversion', ['conversion_id'], unique=False)

    with op.batch_alter_table('ledgerentry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payout_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))

    with op.batch_alter_table('program', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payout_minimum', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('payout_schedule', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default='manual'))


def downgrade() -> None:
    with op.batch_alter_table('program', schema=None) as batch_op:
        batch_op.drop_column('payout_schedule')
        batch_op.drop_column('payout_minimum')

    with op.batch_alter_table('ledgerentry', schema=None) as batch_op:
        batch_op.drop_column('payout_id')

    with op.batch_alter_table('payoutitem', schema=None) as batch_op:
        batch_op.drop_index('ix_payoutitem_conversion')

    op.drop_table('payoutitem')
    with op.batch_alter_table('outgoingattempt', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoingattempt_delivery')

    op.drop_table('outgoingattempt')
    with op.batch_alter_table('payout', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_program_created')
        batch_op.drop_index('ix_payout_partner')

    op.drop_table('payout')
    with op.batch_alter_table('outgoingdelivery', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoingdelivery_program_created')
        batch_op.drop_index('ix_outgoingdelivery_due')

    op.drop_table('outgoingdelivery')
    with op.batch_alter_table('webhookendpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhookendpoint_program_id'))

    op.drop_table('webhookendpoint')
    op.drop_table('payoutrun')
    with op.batch_alter_table('outgoingevent', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoingevent_program_created')

    op.drop_table('outgoingevent')
