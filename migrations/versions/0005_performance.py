"""performance

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_clickdaily_day", "clickdaily",
                    ["program_id", "day", "partner_id", "campaign", "clicks", "unique_clicks"])


def downgrade() -> None:
    op.drop_index("ix_clickdaily_day", table_name="clickdaily")
