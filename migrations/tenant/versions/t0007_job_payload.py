"""job payload: a company export's ZIP (and an uploaded restore file) kept with its job row

Revision ID: t0007
Revises: t0006
"""
from alembic import op
import sqlalchemy as sa

revision = 't0007'
down_revision = 't0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('payload', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'payload')
