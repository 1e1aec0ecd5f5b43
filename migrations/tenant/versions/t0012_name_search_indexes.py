"""clients: the indexes of a one-word search by name (saas/clients/name_search.py)

ix_clients_name_listed: the name index over the clients a list shows (not erased, not archived),
so surnames starting with a word are counted and paged from the index alone (the raw names
included: PostgreSQL reads an expression from an index alone only when the index has its columns).
ix_clients_other_words: the search's words but the surname's first one, for the other matches.

Revision ID: t0012
Revises: t0011
"""
from alembic import op
import sqlalchemy as sa

revision = 't0012'
down_revision = 't0011'
branch_labels = None
depends_on = None

OTHER_WORDS = (
    "to_tsvector('simple'::regconfig, coalesce(first_name, '') || ' ' || coalesce(middle_name, '') || ' ' || "
    "coalesce(email, '') || ' ' || CASE WHEN last_name ~ '^[[:alpha:]]+([- ][[:alpha:]]+)*$' "
    "THEN regexp_replace(last_name, '^[[:alpha:]]+', '') ELSE coalesce(last_name, '') END)"
)


def upgrade() -> None:
    op.create_index('ix_clients_name_listed', 'clients',
                    [sa.text('lower(last_name)'), sa.text('lower(first_name)'), 'id'], unique=False,
                    postgresql_include=['last_name', 'first_name'],
                    postgresql_where=sa.text('erased_at IS NULL AND archived_at IS NULL'))
    op.create_index('ix_clients_other_words', 'clients', [sa.text(OTHER_WORDS)], unique=False,
                    postgresql_using='gin')


def downgrade() -> None:
    op.drop_index('ix_clients_other_words', table_name='clients')
    op.drop_index('ix_clients_name_listed', table_name='clients')
