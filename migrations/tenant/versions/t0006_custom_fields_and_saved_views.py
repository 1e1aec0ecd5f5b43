"""custom fields and saved views

Revision ID: t0006
Revises: t0005
Create Date: 2026-11-28 08:47:17.376496
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 't0006'
down_revision = 't0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('custom_fields',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('label_ru', sa.Text(), nullable=False),
    sa.Column('label_en', sa.Text(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('required', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('in_list', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("type IN ('text', 'number', 'money', 'date', 'bool', 'choice', 'multi')", name=op.f('ck_custom_fields_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_fields')),
    sa.UniqueConstraint('key', name=op.f('uq_custom_fields_key'))
    )
    op.create_table('saved_views',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('shared', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_views'))
    )
    op.create_index('ix_saved_views_user', 'saved_views', ['user_id'], unique=False)
    op.create_index('ix_clients_custom', 'clients', ['custom'], unique=False, postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    


def downgrade() -> None:
    
    op.drop_index('ix_clients_custom', table_name='clients', postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.drop_index('ix_saved_views_user', table_name='saved_views')
    op.drop_table('saved_views')
    op.drop_table('custom_fields')
    
