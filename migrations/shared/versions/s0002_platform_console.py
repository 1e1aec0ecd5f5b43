"""platform console: suspension, deletion grace period, plan limits, cached usage, list indexes

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-02 10:00:00

Additive only: nullable columns or columns with defaults, and new indexes.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 's0002'
down_revision = 's0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in (
        sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('suspend_reason', sa.Text(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('purge_after', sa.DateTime(timezone=True), nullable=True),
        sa.Column('limits', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
        sa.Column('stats', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
        sa.Column('stats_at', sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column('tenants', column, schema='shared')
    # The console's sort orders, each with the id as a tie-breaker for keyset pagination.
    op.create_index('ix_tenants_created_at_id', 'tenants', ['created_at', 'id'], schema='shared')
    op.create_index('ix_tenants_activity_id', 'tenants',
                    [sa.text("coalesce(last_activity_at, '-infinity'::timestamptz)"), 'id'], schema='shared')
    op.create_index('ix_tenants_name_id', 'tenants', [sa.text('lower(name)'), 'id'], schema='shared')
    op.create_index('ix_tenants_purge_after', 'tenants', ['purge_after'], schema='shared',
                    postgresql_where=sa.text("status = 'deleted'"))
    op.create_index('ix_platform_audit_target', 'platform_audit', ['target'], schema='shared')


def downgrade() -> None:
    op.drop_index('ix_platform_audit_target', table_name='platform_audit', schema='shared')
    for name in ('ix_tenants_purge_after', 'ix_tenants_name_id', 'ix_tenants_activity_id', 'ix_tenants_created_at_id'):
        op.drop_index(name, table_name='tenants', schema='shared')
    for name in ('stats_at', 'stats', 'limits', 'purge_after', 'deleted_at', 'suspend_reason', 'suspended_at'):
        op.drop_column('tenants', name, schema='shared')
