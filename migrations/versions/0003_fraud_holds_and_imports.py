"""fraud holds and imports

Fraud and quality rules (core.fraud): the program's rule settings, and on each conversion its
review state, the reasons a rule gave, who decided and when, and the payment fingerprint the
self-referral rule compares.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401

import core.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('program') as batch:
        # Existing programs get {}: every rule on with its default threshold.
        batch.add_column(sa.Column('fraud_rules', sa.JSON(), nullable=False,
                                   server_default=sa.text("'{}'")))
    with op.batch_alter_table('conversion') as batch:
        batch.add_column(sa.Column('review', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column('review_reasons', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('reviewed_at', core.models.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column('payment_fingerprint', sqlmodel.sql.sqltypes.AutoString(),
                                   nullable=True))
    op.create_index('ix_conversion_review', 'conversion', ['program_id', 'review'], unique=False)
    op.create_index('ix_conversion_payment', 'conversion', ['program_id', 'payment_fingerprint'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_conversion_payment', table_name='conversion')
    op.drop_index('ix_conversion_review', table_name='conversion')
    with op.batch_alter_table('conversion') as batch:
        batch.drop_column('payment_fingerprint')
        batch.drop_column('reviewed_by')
        batch.drop_column('reviewed_at')
        batch.drop_column('review_reasons')
        batch.drop_column('review')
    with op.batch_alter_table('program') as batch:
        batch.drop_column('fraud_rules')
