"""The handlers clients adds to the app's routers (collected by saas/app.py)."""
from __future__ import annotations

from saas.clients import admin_routes, api, custom_routes, duplicates, privacy_routes, routes
from saas.clients.imports import routes as import_routes

PAGES: list = []
WORKSPACE = [*routes.HANDLERS, *import_routes.HANDLERS, *admin_routes.HANDLERS, *duplicates.HANDLERS,
             *custom_routes.HANDLERS, *privacy_routes.HANDLERS]
API = [*api.HANDLERS]
