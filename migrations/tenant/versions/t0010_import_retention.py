"""import retention: when the stored file, sample, rejected rows' cells and undo snapshots were removed

Revision ID: t0010
Revises: t0009
"""
from alembic import op
import sqlalchemy as sa

revision = 't0010'
down_revision = 't0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('imports', sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('imports', sa.Column('file_removed', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('imports', 'file_removed')
    op.drop_column('imports', 'expired_at')
