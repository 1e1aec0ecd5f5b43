"""wider client totals: a client's sums may exceed one operation's limit

Revision ID: t0004
Revises: t0003
"""
from alembic import op
import sqlalchemy as sa

revision = 't0004'
down_revision = 't0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("revenue_total", "unpaid_total"):
        op.alter_column("clients", column, type_=sa.Numeric(18, 2), existing_type=sa.Numeric(14, 2),
                        existing_nullable=False, existing_server_default="0")


def downgrade() -> None:
    for column in ("revenue_total", "unpaid_total"):
        op.alter_column("clients", column, type_=sa.Numeric(14, 2), existing_type=sa.Numeric(18, 2),
                        existing_nullable=False, existing_server_default="0")
