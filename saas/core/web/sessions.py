"""Server-side sessions in Redis.

Written here rather than taken from Litestar because its backend keeps whatever session id the
browser sends (session fixation). We issue a fresh id at login (`rotate`), slide an idle timeout
on every request and enforce an absolute one from the creation time.

Each signed-in user also has an index of their sessions (`…:usess:{user_id}`, session id ->
created time and a browser summary; never the IP), so the account page can list them and a
password change or reset can end every other one at once. The index is pruned as it is read.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any, cast

from litestar.datastructures import Cookie
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from saas.core.config import Settings
from saas.core import clock

CREATED = "_created"
SEEN = "_seen"
SEEN_EVERY = 60  # seconds: "last seen" is written at most once a minute, not on every request


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
        if data.get("user_id") and clock.timestamp() - float(data.get(SEEN, 0)) > SEEN_EVERY:
            data[SEEN] = int(clock.timestamp())  # a change, so it is stored with the session
            cast(dict, scope)["_session_seen"] = True
        scope["session"] = data
        cast(dict, scope)["_session_id"] = sid  # this request's id, for "this browser" on the account page

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
            fresh = bool(rotate_now or not sid)
            if rotate_now or not sid:
                if sid:
                    await redis.delete(key + sid)
                sid = secrets.token_urlsafe(32)
                data.setdefault(CREATED, clock.timestamp())
                if rotate_now:
                    data[CREATED] = clock.timestamp()
                changed = True
                _set_cookie(message, name, sid, settings)
                if data.get("user_id"):
                    await _index(redis, settings, int(data["user_id"]), sid, data, scope)
            elif data.get("user_id") and scope.get("_session_seen"):
                # Once a minute: keeps the index whole (sessions made before it existed join it too).
                await _index(redis, settings, int(data["user_id"]), sid, data, scope)
            ttl = settings.session_idle_seconds
            if changed:
                # xx: a session ended (password reset, "sign out") while this request ran stays ended.
                await redis.set(key + sid, json.dumps(data, default=str), ex=ttl, xx=not fresh)
            # unchanged: the load's GETEX extended it already
        except RedisError:
            # Without Redis there is no session; the page itself still renders.
            return


async def _load(redis: Redis, settings: Settings, sid: str) -> dict[str, Any]:
    try:
        # GETEX: read and extend the idle expiry in one round trip (an unchanged session then
        # needs no second command when the response goes out)
        raw = await redis.getex(f"{settings.redis_prefix}:sess:{sid}", ex=settings.session_idle_seconds)
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


# ---- the user's sessions ---------------------------------------------------------------------


def _user_key(settings: Settings, user_id: int) -> str:
    return f"{settings.redis_prefix}:usess:{user_id}"


def public_id(sid: str) -> str:
    """What the account page shows and posts back: never the session id itself."""
    return hashlib.sha256(sid.encode()).hexdigest()[:16]


def current_id(request: Any) -> str | None:
    sid = request.scope.get("_session_id")
    return public_id(sid) if sid else None


def browser_summary(user_agent: str) -> str:
    """"Firefox / Windows" from a User-Agent header: enough to recognise a device, no more."""
    ua = user_agent or ""
    browser = next((n for pat, n in (("Edg/", "Edge"), ("OPR/", "Opera"), ("YaBrowser", "Yandex Browser"),
                                     ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium", "Chromium"),
                                     ("Safari/", "Safari"), ("curl/", "curl"), ("python-httpx", "httpx"))
                    if pat in ua), "")
    system = next((n for pat, n in (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"),
                                    ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Linux", "Linux"))
                   if pat in ua), "")
    if browser and system:
        return f"{browser} / {system}"
    return browser or system or re.sub(r"[^\w ./-]", "", ua)[:40]


async def _index(redis: Redis, settings: Settings, user_id: int, sid: str, data: dict[str, Any], scope: Scope) -> None:
    ua = ""
    for key, value in scope.get("headers", []):
        if key == b"user-agent":
            ua = value.decode("latin-1")
    entry = {"created": data.get(CREATED), "browser": browser_summary(ua)}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(_user_key(settings, user_id), sid, json.dumps(entry))
        pipe.expire(_user_key(settings, user_id), settings.session_absolute_seconds)
        await pipe.execute()


async def list_sessions(redis: Redis, settings: Settings, user_id: int) -> list[dict[str, Any]]:
    """The user's live sessions, newest first: id (public), created, last seen, browser."""
    index = await redis.hgetall(_user_key(settings, user_id))
    if not index:
        return []
    sids = [k.decode() if isinstance(k, bytes) else k for k in index]
    raws = await redis.mget([f"{settings.redis_prefix}:sess:{sid}" for sid in sids])
    alive, dead = [], []
    for sid, raw in zip(sids, raws, strict=True):
        data = json.loads(raw) if raw else {}
        expired = clock.timestamp() - float(data.get(CREATED, 0)) > settings.session_absolute_seconds
        if not data or data.get("user_id") != user_id or expired:
            dead.append(sid)
            continue
        entry = json.loads(index[sid.encode()] if sid.encode() in index else index[sid])
        created, seen = float(data.get(CREATED, 0)), float(data.get(SEEN) or data.get(CREATED, 0))
        alive.append({"id": public_id(sid), "created": datetime.fromtimestamp(created, UTC),
                      "seen": datetime.fromtimestamp(seen, UTC), "browser": entry.get("browser", "")})
    if dead:
        await redis.hdel(_user_key(settings, user_id), *dead)
    return sorted(alive, key=lambda s: s["seen"], reverse=True)


async def end_sessions(redis: Redis, settings: Settings, user_id: int, *, only: str | None = None,
                       keep: str | None = None) -> int:
    """End the user's sessions: all of them, all but `keep`, or `only` one (public ids)."""
    index = await redis.hgetall(_user_key(settings, user_id))
    sids = [k.decode() if isinstance(k, bytes) else k for k in index]
    chosen = [sid for sid in sids if (only is None or public_id(sid) == only) and public_id(sid) != keep]
    if not chosen:
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(*[f"{settings.redis_prefix}:sess:{sid}" for sid in chosen])
        pipe.hdel(_user_key(settings, user_id), *chosen)
        await pipe.execute()
    return len(chosen)
