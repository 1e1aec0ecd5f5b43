"""The handlers backup adds to the app's routers (collected by saas/app.py)."""
from __future__ import annotations

from saas.backup import routes

PAGES: list = []
WORKSPACE = [*routes.HANDLERS]
API: list = []
