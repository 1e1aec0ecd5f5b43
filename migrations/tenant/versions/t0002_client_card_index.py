"""client card index

Revision ID: t0002
Revises: t0001
Create Date: 2026-11-28 08:02:58.829529
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 't0002'
down_revision = 't0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('clients',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('last_name', sa.Text(), server_default='', nullable=False),
    sa.Column('first_name', sa.Text(), server_default='', nullable=False),
    sa.Column('middle_name', sa.Text(), server_default='', nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('passport_enc', sa.LargeBinary(), nullable=True),
    sa.Column('passport_key_id', sa.Text(), nullable=True),
    sa.Column('passport_bidx', sa.Text(), nullable=True),
    sa.Column('passport_mask', sa.Text(), nullable=True),
    sa.Column('consent', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('product_group_ids', postgresql.ARRAY(sa.BigInteger()), server_default='{}', nullable=False),
    sa.Column('direction_ids', postgresql.ARRAY(sa.BigInteger()), server_default='{}', nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('custom', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', coalesce(last_name, '') || ' ' || coalesce(first_name, '') || ' ' || coalesce(middle_name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(ltrim(phone, '+'), ''))", persisted=True), nullable=True),
    sa.Column('import_id', sa.BigInteger(), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('first_operation_on', sa.Date(), nullable=True),
    sa.Column('last_operation_on', sa.Date(), nullable=True),
    sa.Column('operations_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('revenue_total', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('unpaid_total', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clients'))
    )
    op.create_index('ix_clients_email', 'clients', ['email'], unique=False, postgresql_ops={'email': 'text_pattern_ops'})
    op.create_index('ix_clients_import', 'clients', ['import_id'], unique=False)
    op.create_index('ix_clients_interests', 'clients', ['product_group_ids', 'direction_ids'], unique=False, postgresql_using='gin')
    op.create_index('ix_clients_last_op', 'clients', [sa.literal_column("coalesce(last_operation_on, '0001-01-01'::date)"), 'id'], unique=False)
    op.create_index('ix_clients_name', 'clients', [sa.literal_column('lower(last_name)'), sa.literal_column('lower(first_name)'), 'id'], unique=False)
    op.create_index('ix_clients_passport_bidx', 'clients', ['passport_bidx'], unique=False)
    op.create_index('ix_clients_phone', 'clients', ['phone'], unique=False, postgresql_ops={'phone': 'text_pattern_ops'})
    op.create_index('ix_clients_revenue', 'clients', ['revenue_total', 'id'], unique=False)
    op.create_index('ix_clients_search', 'clients', ['search'], unique=False, postgresql_using='gin')
    op.create_index('ix_clients_tags', 'clients', ['tags'], unique=False, postgresql_using='gin')
    op.create_table('directions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directions')),
    sa.UniqueConstraint('name', name=op.f('uq_directions_name'))
    )
    op.create_table('import_undo',
    sa.Column('import_id', sa.BigInteger(), nullable=False),
    sa.Column('client_id', sa.BigInteger(), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('import_id', 'client_id', name=op.f('pk_import_undo'))
    )
    op.create_table('imports',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='uploaded', nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=True),
    sa.Column('file_type', sa.Text(), nullable=True),
    sa.Column('encoding', sa.Text(), nullable=True),
    sa.Column('delimiter', sa.Text(), nullable=True),
    sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('mapping', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('total_rows', sa.Integer(), server_default='0', nullable=False),
    sa.Column('processed_rows', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('skipped_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rejected_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rejected', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('undone_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('clients', 'operations')", name=op.f('ck_imports_kind')),
    sa.CheckConstraint("status IN ('uploaded', 'queued', 'running', 'done', 'failed', 'undone')", name=op.f('ck_imports_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imports'))
    )
    op.create_table('product_groups',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_product_groups_name'))
    )
    op.create_table('operations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('client_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Text(), server_default='sale', nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('product_group_id', sa.BigInteger(), nullable=True),
    sa.Column('direction_id', sa.BigInteger(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('import_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('sale', 'service', 'return')", name=op.f('ck_operations_kind')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_operations_amount_positive')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_operations_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['direction_id'], ['directions.id'], name=op.f('fk_operations_direction_id_directions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['product_group_id'], ['product_groups.id'], name=op.f('fk_operations_product_group_id_product_groups'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operations'))
    )
    op.create_index('ix_operations_client', 'operations', ['client_id', 'occurred_on'], unique=False)
    op.create_index('ix_operations_import', 'operations', ['import_id'], unique=False)
    


def downgrade() -> None:
    
    op.drop_index('ix_operations_import', table_name='operations')
    op.drop_index('ix_operations_client', table_name='operations')
    op.drop_table('operations')
    op.drop_table('product_groups')
    op.drop_table('imports')
    op.drop_table('import_undo')
    op.drop_table('directions')
    op.drop_index('ix_clients_tags', table_name='clients', postgresql_using='gin')
    op.drop_index('ix_clients_search', table_name='clients', postgresql_using='gin')
    op.drop_index('ix_clients_revenue', table_name='clients')
    op.drop_index('ix_clients_phone', table_name='clients', postgresql_ops={'phone': 'text_pattern_ops'})
    op.drop_index('ix_clients_passport_bidx', table_name='clients')
    op.drop_index('ix_clients_name', table_name='clients')
    op.drop_index('ix_clients_last_op', table_name='clients')
    op.drop_index('ix_clients_interests', table_name='clients', postgresql_using='gin')
    op.drop_index('ix_clients_import', table_name='clients')
    op.drop_index('ix_clients_email', table_name='clients', postgresql_ops={'email': 'text_pattern_ops'})
    op.drop_table('clients')
    
