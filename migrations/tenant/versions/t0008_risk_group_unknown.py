"""risk group 'unknown': a client with too few deferred payments has not enough history to judge

Revision ID: t0008
Revises: t0007
"""
from alembic import op

revision = 't0008'
down_revision = 't0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Widening a CHECK is additive: code on the old version never writes 'unknown'. NOT VALID then
    # VALIDATE keeps the long scan off the exclusive lock.
    op.execute("ALTER TABLE client_scores DROP CONSTRAINT ck_client_scores_risk_group")
    op.execute("ALTER TABLE client_scores ADD CONSTRAINT ck_client_scores_risk_group "
               "CHECK (risk_group IN ('reliable', 'watch', 'risk', 'unknown')) NOT VALID")
    op.execute("ALTER TABLE client_scores VALIDATE CONSTRAINT ck_client_scores_risk_group")


def downgrade() -> None:
    op.execute("UPDATE client_scores SET risk_group = 'watch' WHERE risk_group = 'unknown'")
    op.execute("ALTER TABLE client_scores DROP CONSTRAINT ck_client_scores_risk_group")
    op.execute("ALTER TABLE client_scores ADD CONSTRAINT ck_client_scores_risk_group "
               "CHECK (risk_group IN ('reliable', 'watch', 'risk'))")
