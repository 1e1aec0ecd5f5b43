"""spare schemas: a pool of company schemas created ahead of time (signup renames one)

Revision ID: s0004
Revises: s0003
Create Date: 2026-12-04 17:00:00

Additive only: a new table.
"""
from alembic import op
import sqlalchemy as sa

revision = 's0004'
down_revision = 's0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'spare_schemas',
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('version', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_spare_schemas')),
        schema='shared',
    )


def downgrade() -> None:
    op.drop_table('spare_schemas', schema='shared')
