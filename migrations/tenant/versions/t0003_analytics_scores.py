"""analytics scores

Revision ID: t0003
Revises: t0002
Create Date: 2026-11-28 08:22:10.360990
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 't0003'
down_revision = 't0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('client_scores',
    sa.Column('client_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('p_alive', sa.Float(), nullable=True),
    sa.Column('expected_purchases', sa.Float(), nullable=True),
    sa.Column('expected_spend', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('clv', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('r_score', sa.Integer(), nullable=False),
    sa.Column('f_score', sa.Integer(), nullable=False),
    sa.Column('m_score', sa.Integer(), nullable=False),
    sa.Column('segment', sa.Text(), nullable=False),
    sa.Column('risk_score', sa.Integer(), nullable=False),
    sa.Column('risk_group', sa.Text(), nullable=False),
    sa.Column('risk_factors', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('method', sa.Text(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("risk_group IN ('reliable', 'watch', 'risk')", name=op.f('ck_client_scores_risk_group')),
    sa.CheckConstraint("status IN ('new', 'active', 'at_risk', 'lost')", name=op.f('ck_client_scores_status')),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_client_scores'))
    )
    op.create_index('ix_client_scores_clv', 'client_scores', ['clv'], unique=False)
    op.create_index('ix_client_scores_segment', 'client_scores', ['segment'], unique=False)
    op.create_index('ix_client_scores_status', 'client_scores', ['status'], unique=False)
    op.create_table('model_fits',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('log_likelihood', sa.Float(), nullable=True),
    sa.Column('clients', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('converged', sa.Boolean(), nullable=False),
    sa.Column('quality', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_fits'))
    )
    op.create_table('settings',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )
    


def downgrade() -> None:
    
    op.drop_table('settings')
    op.drop_table('model_fits')
    op.drop_index('ix_client_scores_status', table_name='client_scores')
    op.drop_index('ix_client_scores_segment', table_name='client_scores')
    op.drop_index('ix_client_scores_clv', table_name='client_scores')
    op.drop_table('client_scores')
    
