"""Server-side sessions in Redis.

Written here rather than taken from Litestar because its backend keeps whatever session id the
browser sends (session fixation). We issue a fresh id at login (`rotate`), slide an idle timeout
on every request and enforce an absolute one from the creation time.
"""
from __future__ import annotations

import json
import secrets
from typing import Any

from litestar.datastructures import Cookie
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from saas.core.config import Settings
from saas.core import clock

CREATED = "_created"


def cookie_name(settings: Settings) -> str:
    # __Host- cookies need Secure, so only behind https.
    return "__Host-kt_session" if settings.secure_cookies else "kt_session"


def rotate(scope_or_request: Any) -> None:
    """Ask for a new session id when the response is sent (call at login)."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    scope["_session_rotate"] = True


class SessionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        redis = state.redis
        name = cookie_name(settings)
        sid = _cookie(scope, name)
        data: dict[str, Any] = {}
        if sid:
            data = await _load(redis, settings, sid)
            if not data:
                sid = None
        before = json.dumps(data, sort_keys=True, default=str)
        scope["session"] = data

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._persist(scope, message, redis, settings, name, sid, before)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def _persist(self, scope: Scope, message: HTTPResponseStartEvent, redis: Redis, settings: Settings, name: str,
                       sid: str | None, before: str) -> None:
        data = scope.get("session") or {}
        if not isinstance(data, dict):
            data = {}
        rotate_now = scope.get("_session_rotate", False)
        changed = json.dumps(data, sort_keys=True, default=str) != before
        key = f"{settings.redis_prefix}:sess:"
        try:
            if not data:
                if sid:
                    await redis.delete(key + sid)
                    _set_cookie(message, name, "", settings, max_age=0)
                return
            if rotate_now or not sid:
                if sid:
                    await redis.delete(key + sid)
                sid = secrets.token_urlsafe(32)
                data.setdefault(CREATED, clock.timestamp())
                if rotate_now:
                    data[CREATED] = clock.timestamp()
                changed = True
                _set_cookie(message, name, sid, settings)
            ttl = settings.session_idle_seconds
            if changed:
                await redis.set(key + sid, json.dumps(data, default=str), ex=ttl)
            else:
                await redis.expire(key + sid, ttl)
        except RedisError:
            # Without Redis there is no session; the page itself still renders.
            return


async def _load(redis: Redis, settings: Settings, sid: str) -> dict[str, Any]:
    try:
        raw = await redis.get(f"{settings.redis_prefix}:sess:{sid}")
    except RedisError:
        return {}
    if not raw:
        return {}
    data = json.loads(raw)
    if clock.timestamp() - float(data.get(CREATED, 0)) > settings.session_absolute_seconds:
        return {}
    return data


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name and v:
                    return v
    return None


def _set_cookie(message: HTTPResponseStartEvent, name: str, value: str, settings: Settings,
                max_age: int | None = None) -> None:
    cookie = Cookie(
        key=name, value=value, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies,
        max_age=max_age,
    )
    header = cookie.to_header(header="").strip()
    message.setdefault("headers", [])
    message["headers"] = [*message["headers"], (b"set-cookie", header.encode("latin-1"))]
