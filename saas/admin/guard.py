"""The console's own login guard.

Everything under /admin is 404 unless the logged-in user is a platform admin, so the console
cannot be found by anyone else (anonymous visitors included). A platform admin additionally
confirms the password at /admin/login, which opens a console session (`admin_user_id` in the
session, beside the ordinary login) with a short idle timeout; it is re-asked after 30 idle minutes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from saas.admin.service import audit
from saas.core import clock
from saas.accounts import service
from saas.accounts.models import User
from saas.core.web import sessions
from saas.core.errors import LoginRequired
from saas.core.i18n import _
from saas.core.web.render import redirect, render
from saas.core.web.security import Throttle

ADMIN_IDLE_SECONDS = 30 * 60
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


class AdminLoginRequired(LoginRequired):
    login_path = "/admin/login"


@dataclass
class AdminCtx:
    db: AsyncSession
    user: User

    @property
    def actor(self) -> str:
        return f"admin:{self.user.id}"


def _platform_admin(user: User | None) -> User:
    if user is None or not user.is_platform_admin:
        raise NotFoundException()
    return user


def is_console_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


class ConsoleGate:
    """App middleware, after the session and before the Origin and CSRF checks: under /admin, anyone
    but a platform admin gets the ordinary 404 whatever the method, token or Origin, so a 403 from a
    check that ran first cannot tell that the console exists. (A 405 for a wrong method bypasses the
    middleware; the error handler turns it into 404 under /admin.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_console_path(scope["path"]) and not await _is_platform_admin(scope):
            # The page any unknown address gets (those never see the session: no name, no flash). The
            # error is answered past the session middleware, so the emptied session is not saved.
            scope["session"] = {}
            raise NotFoundException()
        await self.app(scope, receive, send)


async def _is_platform_admin(scope: Scope) -> bool:
    user_id = (scope.get("session") or {}).get("user_id")
    if not user_id:
        return False
    async with scope["app"].state.db.session() as db:
        user = await service.get_user(db, int(user_id))
    return user is not None and user.is_platform_admin


async def admin_ctx(request: Request, db: AsyncSession, user: User | None) -> AdminCtx:
    user = _platform_admin(user)
    session = request.scope.setdefault("session", {})
    fresh = clock.timestamp() - float(session.get("admin_seen") or 0) <= ADMIN_IDLE_SECONDS
    if session.get("admin_user_id") != user.id or not fresh:
        session.pop("admin_user_id", None)
        session.pop("admin_seen", None)
        raise AdminLoginRequired()
    session["admin_seen"] = int(clock.timestamp())
    return AdminCtx(db=db, user=user)


def _next(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith("/admin") and "//" not in value else "/admin/tenants"


@get("/admin/login", include_in_schema=False)
async def admin_login_page(request: Request, user: User | None, next: str | None = None) -> Any:
    user = _platform_admin(user)
    return render(request, "admin/login.html", user=user, form={"next": _next(next)})


@post("/admin/login", include_in_schema=False)
async def admin_login(request: Request, db: AsyncSession, user: User | None, data: Form) -> Any:
    user = _platform_admin(user)
    form = {"next": _next(data.get("next"))}
    ip = request.client.host if request.client else "unknown"
    throttle = Throttle(request.app.state.redis, request.app.state.settings.redis_prefix)
    key = f"admin:{user.email}"
    try:
        if await throttle.blocked(key, ip):
            return render(request, "admin/login.html", status_code=429, user=user, form=form,
                          errors={"form": _("Too many failed attempts. Wait 15 minutes.")})
        if await service.authenticate(db, user.email, str(data.get("password") or "")) is None:
            await throttle.failed(key, ip)
            audit(db, f"admin:{user.id}", "admin.login_failed", ip=ip)
            return render(request, "admin/login.html", status_code=401, user=user, form=form,
                          errors={"form": _("Wrong password.")})
        await throttle.succeeded(key, ip)
    except RedisError:
        return render(request, "admin/login.html", status_code=503, user=user, form=form,
                      errors={"form": _("Login is temporarily unavailable. Try again in a minute.")})
    session = request.scope.setdefault("session", {})
    session.update(admin_user_id=user.id, admin_seen=int(clock.timestamp()))
    sessions.rotate(request)
    audit(db, f"admin:{user.id}", "admin.login", ip=ip)
    return redirect(request, form["next"])


@post("/admin/logout", include_in_schema=False)
async def admin_logout(request: Request, user: User | None) -> Any:
    _platform_admin(user)
    session = request.scope.setdefault("session", {})
    session.pop("admin_user_id", None)
    session.pop("admin_seen", None)
    return redirect(request, "/")


HANDLERS = [admin_login_page, admin_login, admin_logout]
