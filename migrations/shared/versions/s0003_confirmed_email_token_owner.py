"""confirmed e-mail addresses; API tokens belong to the member who created them

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-04 17:00:00

Additive only. Existing users stay unconfirmed (they confirm before a second company); existing
tokens keep created_by NULL, like tokens issued by the platform operator.
"""
from alembic import op
import sqlalchemy as sa

revision = 's0003'
down_revision = 's0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('email_confirmed_at', sa.DateTime(timezone=True), nullable=True), schema='shared')
    op.add_column('api_tokens', sa.Column('created_by', sa.BigInteger(), nullable=True), schema='shared')
    op.create_foreign_key(op.f('fk_api_tokens_created_by_users'), 'api_tokens', 'users', ['created_by'], ['id'],
                          source_schema='shared', referent_schema='shared', ondelete='CASCADE')
    op.create_index(op.f('ix_api_tokens_created_by'), 'api_tokens', ['created_by'], schema='shared')


def downgrade() -> None:
    op.drop_index(op.f('ix_api_tokens_created_by'), table_name='api_tokens', schema='shared')
    op.drop_constraint(op.f('fk_api_tokens_created_by_users'), 'api_tokens', schema='shared', type_='foreignkey')
    op.drop_column('api_tokens', 'created_by', schema='shared')
    op.drop_column('users', 'email_confirmed_at', schema='shared')
