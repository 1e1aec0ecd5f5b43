"""Alembic environment for the tenant schema, used by the alembic CLI to author revisions.

`saas migrate` does not run this file: it drives the same scripts from saas/migrate.py.
Author a revision with: alembic -c migrations/alembic.ini -n tenant revision --autogenerate -m "..."
"""
from saas.admin.migrate import run_alembic_cli

run_alembic_cli("tenant")
