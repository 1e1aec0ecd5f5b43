"""campaigns

Revision ID: t0005
Revises: t0004
Create Date: 2026-11-28 08:35:21.276668
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 't0005'
down_revision = 't0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('goal', sa.Text(), nullable=True),
    sa.Column('channel', sa.Text(), server_default='none', nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('criteria', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('ranking', postgresql.JSONB(astext_type=sa.Text()), server_default='{"by": "clv"}', nullable=False),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('control_share', sa.Float(), server_default='0.1', nullable=False),
    sa.Column('suppression', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('status', sa.Text(), server_default='draft', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('built_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('members_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('control_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('excluded', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_days', sa.Integer(), server_default='30', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("channel IN ('email', 'sms', 'calls', 'post', 'none')", name=op.f('ck_campaigns_channel')),
    sa.CheckConstraint("status IN ('draft', 'building', 'ready', 'failed')", name=op.f('ck_campaigns_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_table('saved_segments',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('criteria', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_segments'))
    )
    op.create_table('campaign_members',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.BigInteger(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('control', sa.Boolean(), server_default='false', nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_members_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'rank', name=op.f('pk_campaign_members'))
    )
    op.create_index('ix_campaign_members_client', 'campaign_members', ['client_id'], unique=False)
    


def downgrade() -> None:
    
    op.drop_index('ix_campaign_members_client', table_name='campaign_members')
    op.drop_table('campaign_members')
    op.drop_table('saved_segments')
    op.drop_table('campaigns')
    
