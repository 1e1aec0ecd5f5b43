"""The handlers accounts adds to the app's routers (collected by saas/app.py)."""
from __future__ import annotations

from saas.accounts import company_routes, routes

PAGES = [*routes.account_handlers]
WORKSPACE = [*routes.WORKSPACE_HANDLERS, *company_routes.HANDLERS]
API: list = []  # the API skeleton itself (token, /me, /tokens) is accounts.api.api_router
