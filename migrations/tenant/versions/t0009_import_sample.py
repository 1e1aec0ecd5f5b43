"""import sample: the first rows' cells, read by the worker, for the dry run of the mapping screen

Revision ID: t0009
Revises: t0008
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 't0009'
down_revision = 't0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('imports', sa.Column('sample', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('imports', 'sample')
