"""The handlers analytics adds to the app's routers (collected by saas/app.py)."""
from __future__ import annotations

from saas.analytics import api, routes

PAGES: list = []
WORKSPACE = [*routes.HANDLERS]
API = [*api.HANDLERS]
