"""Errors as pages for people and JSON for the API: clear words, never a stack trace."""
from __future__ import annotations

import contextlib
import logging
import traceback

from asyncpg.exceptions import (
    AdminShutdownError,
    CannotConnectNowError,
    CrashShutdownError,
    PostgresConnectionError,
)
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from saas.core.errors import FormError
from saas.core.errors import LoginRequired, TenantSuspended
from saas.core.i18n import _, best_locale, set_locale
from saas.core.web.render import is_htmx, redirect, render

log = logging.getLogger("saas.errors")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def _titles() -> dict[int, str]:
    return {
        400: _("The request could not be understood."),
        401: _("Please log in."),
        403: _("You do not have access to this."),
        404: _("Page not found."),
        405: _("This action is not allowed here."),
        413: _("The file is too large."),
        429: _("Too many attempts. Wait a few minutes and try again."),
        500: _("Something went wrong on our side. We have been notified."),
        503: _("The service is temporarily unavailable. Try again in a few seconds."),
    }


def error_response(request: Request, status: int, detail: str | None = None, extra: dict | None = None) -> Response:
    # An error raised before the app's before_request (an unknown path, a middleware's refusal) would
    # otherwise speak the server's default language: every error page chooses it the same way.
    session = request.scope.get("session")
    chosen = session.get("locale") if isinstance(session, dict) else None
    set_locale(chosen or best_locale(request.headers.get("accept-language")))
    message = detail or _titles().get(status, _("Error"))
    if wants_json(request):
        return Response({"error": message, "status": status, **(extra or {})}, status_code=status,
                        media_type=MediaType.JSON)
    if is_htmx(request):
        return render(request, "_flash_error.html", status_code=status, message=message)
    return render(request, "error.html", status_code=status, status=status, message=message)


def http_exception(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, LoginRequired):
        return redirect(request, f"{getattr(exc, 'login_path', '/login')}?next={request.url.path}")
    if isinstance(exc, TenantSuspended) and not wants_json(request):
        return render(request, "accounts/suspended.html", status_code=403, message=exc.detail,
                      company=(exc.extra or {}).get("company", "") if isinstance(exc.extra, dict) else "")
    if isinstance(exc, ValidationException) and wants_json(request):
        return Response({"error": _("Invalid request."), "status": 400, "fields": _field_errors(exc)},
                        status_code=400, media_type=MediaType.JSON)
    status = exc.status_code
    if status == 405 and (request.url.path == "/admin" or request.url.path.startswith("/admin/")):
        return error_response(request, 404)  # the console's methods are nobody's business (see ConsoleGate)
    detail = exc.detail if exc.detail and exc.detail != _std_detail(status) else None
    if status == 413:
        detail = _too_large(request) or detail
    headers = exc.headers or {}
    response = error_response(request, status, detail)
    if isinstance(exc, NotAuthorizedException) and wants_json(request):
        headers = {**headers, "WWW-Authenticate": "Bearer"}
    response.headers.update(headers)
    return response


def _too_large(request: Request) -> str | None:
    """413 with the route's own limit: 1 MB for JSON and forms, more for uploads (see app.py)."""
    try:
        limit = request.route_handler.resolve_request_max_body_size()
    except Exception:  # noqa: BLE001 - no route (or no limit): the plain title says enough
        return None
    if not limit:
        return None
    return _("The request is too large: at most %(size)s MB.", size=f"{limit / 1024 / 1024:g}")


def _std_detail(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _field_errors(exc: ValidationException) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in exc.extra or []:
        if isinstance(item, dict):
            out[str(item.get("key") or item.get("source") or "body")] = str(item.get("message"))
    return out


def form_error(request: Request, exc: FormError) -> Response:
    return Response({"error": _("Invalid input."), "status": 422, "fields": exc.errors}, status_code=422,
                    media_type=MediaType.JSON) if wants_json(request) else error_response(request, 422, str(exc))


def unavailable(request: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable: %s", type(exc).__name__)
    return error_response(request, 503)


def internal(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, describe(exc))
    return error_response(request, 500)


# Errors of our code whose text names code (an attribute, a template variable), not data: said in full.
CODE_ERRORS = frozenset({"AttributeError", "NameError", "TypeError", "UndefinedError", "TemplateSyntaxError",
                         "ImportError", "ModuleNotFoundError", "NotImplementedError", "RecursionError"})


def describe(exc: BaseException) -> str:
    """An error for the log without personal data: the classes of its chain, the SQL statement (its
    values are bound parameters, hidden too by the engine's hide_parameters) and where it happened;
    messages only of CODE_ERRORS, never of the others, which quote values (asyncpg: `invalid input
    for query argument $1: 'Ivanov'`; PostgreSQL: `Key (email)=(…) already exists`)."""
    chain, seen, cause = [], set(), exc  # type: list[str], set[int], BaseException | None
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        state = getattr(cause, "sqlstate", None)
        said = f": {str(cause)[:300]}" if type(cause).__name__ in CODE_ERRORS else ""
        chain.append(type(cause).__name__ + (f" (SQLSTATE {state})" if state else "") + said)
        cause = cause.__cause__ or cause.__context__
    statement = getattr(exc, "statement", None)
    sql = f"\n[SQL: {statement}]" if statement else ""
    return " <- ".join(chain) + sql + "\n" + "".join(traceback.format_tb(exc.__traceback__)).rstrip()


NUL_STATES = ("22021", "22P05")  # PostgreSQL text cannot hold U+0000 (in text, or as \u0000 in jsonb)


def _nul_message() -> str:
    return _("Text cannot contain the NUL character (\\0).")


# PostgreSQL going away or coming back: a restart, a failover. asyncpg raises these bare while the
# pool connects ("the database system is starting up"), wrapped by SQLAlchemy once connected.
DB_AWAY = (PostgresConnectionError, CannotConnectNowError, AdminShutdownError, CrashShutdownError, OSError)


def db_error(request: Request, exc: DBAPIError) -> Response:
    if exc.connection_invalidated or isinstance(exc.orig, DB_AWAY):
        return unavailable(request, exc)
    if getattr(exc.orig, "sqlstate", None) in NUL_STATES:  # a field the checks below did not see
        return error_response(request, 400, _nul_message())
    return internal(request, exc)


def _nul_fields(value: object, path: str = "") -> dict[str, str]:
    if isinstance(value, str):
        return {path or "body": _nul_message()} if "\x00" in value else {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    out: dict[str, str] = {}
    for key, item in items:
        name = f"{path}.{key}" if path else str(key)
        out.update({name.replace("\x00", "\\0"): _nul_message()} if "\x00" in str(key) else _nul_fields(item, name))
    return out


async def refuse_nul(request: Request) -> Response | None:
    """API requests with a NUL character anywhere in the query or the JSON body get a 422 that names
    the fields, before any handler would hand the text to PostgreSQL (which refuses it)."""
    fields = {k.replace("\x00", "\\0"): _nul_message() for k, v in request.query_params.multi_items()
              if "\x00" in k + v}
    if request.method in ("POST", "PATCH", "PUT") and request.content_type[0] == MediaType.JSON:
        with contextlib.suppress(Exception):  # unreadable JSON: the handler answers 400 for it
            fields.update(_nul_fields(await request.json()))
    if fields:
        return Response({"error": _("Invalid input."), "status": 422, "fields": fields}, status_code=422,
                        media_type=MediaType.JSON)
    return None


EXCEPTION_HANDLERS = {
    HTTPException: http_exception,
    FormError: form_error,
    OperationalError: unavailable,
    InterfaceError: unavailable,
    PoolTimeout: unavailable,
    DBAPIError: db_error,
    **dict.fromkeys(DB_AWAY[:-1], unavailable),
    ConnectionRefusedError: unavailable,
    OSError: unavailable,
    RedisConnectionError: unavailable,
    RedisTimeoutError: unavailable,
    Exception: internal,
}
