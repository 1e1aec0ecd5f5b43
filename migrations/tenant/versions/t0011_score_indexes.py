"""client_scores: drop the indexes on status, segment and clv

No query used them (pg_stat_user_indexes after bench/pages.py at a million clients: 0 scans each:
filtered lists read clients in name order and join their scores; the dashboard reads its snapshot;
campaigns rank on an expression), and the refresh paid for them on every write of the scores.

Revision ID: t0011
Revises: t0010
"""
from alembic import op

revision = 't0011'
down_revision = 't0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name in ('ix_client_scores_status', 'ix_client_scores_segment', 'ix_client_scores_clv'):
        op.drop_index(name, table_name='client_scores', if_exists=True)


def downgrade() -> None:
    op.create_index('ix_client_scores_clv', 'client_scores', ['clv'], unique=False)
    op.create_index('ix_client_scores_segment', 'client_scores', ['segment'], unique=False)
    op.create_index('ix_client_scores_status', 'client_scores', ['status'], unique=False)
