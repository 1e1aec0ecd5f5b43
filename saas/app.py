"""The Litestar application factory. Importing it connects nowhere; startup does."""
from __future__ import annotations

import functools
import gc
import logging

from litestar import Litestar, Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from redis.asyncio import Redis

from saas.core.config import Settings, get_settings
from saas.core.db import Database
from saas.core.engine import engine_info
from saas.wiring import wire
from saas.admin import guard as admin_guard
from saas.admin.routes import admin_router
from saas.accounts.api import api_router
from saas.accounts import handlers as accounts
from saas.analytics import handlers as analytics
from saas.backup import handlers as backup
from saas.campaigns import handlers as campaigns
from saas.clients import handlers as clients
from saas.core.web import routes as web_routes
from saas.accounts.deps import close_abandoned_session, provide_db, provide_settings, provide_user, tenant_ctx
from saas.core.web.errors import EXCEPTION_HANDLERS, refuse_nul
from saas.core import i18n
from saas.core.i18n import best_locale, set_locale
from saas.core.web.openapi import StrictStructSchemaPlugin
from saas.core.web.render import ROOT, template_config
from saas.core.web.security import CSRF_EXCLUDE, OriginCheck, SecurityHeaders, SignedInFirst
from saas.core.web.sessions import SessionMiddleware

# Each domain lists its own handlers (`<domain>/handlers.py`: PAGES, WORKSPACE, API); the app only
# decides which router they go under.
DOMAINS = (accounts, clients, analytics, campaigns, backup)
MAX_BODY = 1024 * 1024  # JSON and forms: far above any real one, small enough to refuse unread
MAX_UPLOAD = 100 * 1024 * 1024  # multipart uploads (imports, restores): the import form says so


@functools.cache  # once per process (the tests build many apps in one)
def settle_process() -> None:
    """When the app first starts: read the translation catalogs (else the first request of each
    language reads them), then move everything made so far (modules, routes, compiled templates and
    statements) out of the collector's sight, and collect the young generation ten times less
    often. A request makes thousands of short-lived containers (ORM rows, template contexts), and
    the default threshold (700) ran a collection over every in-flight request's objects a few
    times per request."""
    for locale in i18n.LOCALES:
        i18n.translations(locale)
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 20, 20)


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=3, socket_connect_timeout=2, health_check_interval=15)


async def _before_request(request: Request) -> Response | None:
    """The one app-wide before_request (a router's own would replace it, not add to it)."""
    session = request.scope.get("session") or {}
    set_locale(session.get("locale") or best_locale(request.headers.get("accept-language")))
    return await refuse_nul(request) if request.url.path.startswith("/api/") else None


def _upload_limits(handlers: list) -> list:
    """Handlers that take a multipart body (uploads) may receive MAX_UPLOAD; every other body is held
    to MAX_BODY. Litestar refuses a larger Content-Length with 413 before reading a byte."""
    for handler in handlers:
        hint = getattr(handler.fn, "__annotations__", {}).get("data")
        if "MULTI_PART" in str(hint):  # the annotation's text (modules use postponed annotations)
            handler.request_max_body_size = MAX_UPLOAD
    return handlers


def workspace_router() -> Router:
    """Every page inside a company's workspace: one router, one choke point (`tenant_ctx`)."""
    return Router(
        path="/t/{slug:str}",
        route_handlers=_upload_limits([h for domain in DOMAINS for h in domain.WORKSPACE]),
        dependencies={"ctx": Provide(tenant_ctx)},
        include_in_schema=False,
    )


def pages_router() -> Router:
    """The public and account pages: HTML for people, so they stay out of the API's document."""
    return Router(path="/", route_handlers=[*web_routes.HANDLERS, *(h for d in DOMAINS for h in d.PAGES),
                                            *admin_guard.HANDLERS], include_in_schema=False)


def build_app(settings: Settings) -> Litestar:
    wire()  # hooks and subscribers the higher packages give the lower ones
    if not settings.database_url or not settings.redis_url:
        raise SystemExit("configuration error: DATABASE_URL and REDIS_URL must be set for the web process "
                         "(`saas run` sets them for the embedded servers)")

    async def startup(app: Litestar) -> None:
        settle_process()
        # No ping before each checkout: it is a round trip on every request, and a connection the
        # server dropped fails its request with a 503 and invalidates the pool (test_faults.py).
        # 20 kept connections: with 10, sixteen requests at once opened and closed overflow
        # connections all the time, each paying a connect and asyncpg's type introspection.
        app.state.db = Database(settings.database_url, pool_size=20, pool_pre_ping=False)
        app.state.redis = redis_client(settings.redis_url)
        try:  # plain PostgreSQL or Citus: logged once, shown on /healthz; a database still away is no reason to stop
            logging.getLogger("saas").info("database engine: %s", (await engine_info(app.state.db.engine)).describe())
        except Exception as exc:  # noqa: BLE001 - detected again by the first /healthz
            logging.getLogger("saas").warning("database engine not detected at start: %s", type(exc).__name__)

    async def shutdown(app: Litestar) -> None:
        await app.state.db.dispose()
        await app.state.redis.aclose()

    secure = settings.secure_cookies
    return Litestar(
        route_handlers=[
            pages_router(),
            workspace_router(),
            admin_router(),
            api_router(_upload_limits([h for domain in DOMAINS for h in domain.API])),
            create_static_files_router(path="/static", directories=[ROOT / "static"], include_in_schema=False),
        ],
        dependencies={
            "db": Provide(provide_db),
            "user": Provide(provide_user),
            "settings": Provide(provide_settings),
        },
        template_config=template_config(),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="__Host-csrftoken" if secure else "csrftoken",
            cookie_secure=secure,
            exclude=CSRF_EXCLUDE,
        ),
        middleware=[SessionMiddleware, admin_guard.ConsoleGate, OriginCheck, SignedInFirst],
        before_request=_before_request,
        after_exception=[close_abandoned_session],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Kartoteka API", version="1.0.0", path="/api", render_plugins=[JsonRenderPlugin()],
            components=Components(security_schemes={"bearer": SecurityScheme(
                type="http", scheme="bearer", description="A company's API token (`saas tokens create`)")}),
        ),
        plugins=[StrictStructSchemaPlugin()],
        on_startup=[startup],
        on_shutdown=[shutdown],
        state=State({"settings": settings}),
        request_max_body_size=MAX_BODY,
    )


def create_app(settings: Settings | None = None) -> SecurityHeaders:
    settings = settings or get_settings()
    return SecurityHeaders(build_app(settings), hsts=settings.secure_cookies)
