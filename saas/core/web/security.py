"""Security headers, the Origin check, password hashing and login throttling."""
from __future__ import annotations

import asyncio
import functools
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send

from saas.core.errors import LoginRequired

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Paths without the CSRF token check, anchored at the start: unanchored, `/api/` also matched
# /t/api/... and switched the check off for a whole company's workspace.
CSRF_EXCLUDE = [r"^/api/", r"^/healthz$", r"^/static/"]
# Company addresses (derived from the name) that are words of our own routes: refused at creation,
# so no workspace path can ever look like /api/, /static/, /admin ... to a pattern or a person.
RESERVED_SLUGS = frozenset({
    "admin", "api", "static", "healthz", "dev", "demo", "login", "logout", "signup", "forgot", "reset",
    "invite", "lang", "companies", "account", "confirm", "t", "docs", "openapi", "www", "mail", "support",
})
NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Outermost ASGI wrapper: 404/405 responses bypass Litestar's middleware, so headers go here."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = HEADERS + ([(b"strict-transport-security", b"max-age=31536000")] if hsts else [])

    def __getattr__(self, name: str) -> Any:  # the Litestar app stays reachable (tests, CLI)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        api = scope["path"].startswith("/api/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if api:  # API answers carry personal data: no cache keeps them, whatever the handler said
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"] + [NO_STORE]
                present = {k.lower() for k, _ in headers}
                message["headers"] = [*headers, *((k, v) for k, v in self.headers if k not in present)]
            await send(message)

        await self.app(scope, receive, send_wrapper)


class OriginCheck:
    """Refuse cross-site unsafe requests (Litestar's CSRF token is not bound to the session)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] in UNSAFE and not scope["path"].startswith("/api/"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if not _same_origin(headers, scope["app"].state.settings.base_url):
                await _forbidden(send)
                return
        await self.app(scope, receive, send)


class SignedInFirst:
    """A workspace form (an upload: up to 100 MB) from someone not signed in is sent to the login page
    before its body is read: the CSRF check that comes next reads the whole form to find the token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session")
        if (scope["type"] == ScopeType.HTTP and scope["method"] in UNSAFE and scope["path"].startswith("/t/")
                and not (isinstance(session, dict) and session.get("user_id"))):
            raise LoginRequired()
        await self.app(scope, receive, send)


def _same_origin(headers: dict[str, str], base_url: str) -> bool:
    site = headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True  # not sent by every client; the CSRF token is still required
    if origin == "null":
        return False
    host = headers.get("host", "")
    allowed = {urlsplit(base_url).netloc, host}
    return urlsplit(origin).netloc in allowed


async def _forbidden(send: Send) -> None:
    body = b"Cross-site request refused."
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 403, "headers": headers}
    content: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(content)


# ---- passwords -----------------------------------------------------------------------------


# argon2id at one of OWASP's equivalent minimums (7 MiB, 5 passes, 1 lane), not argon2-cffi's default
# (RFC 9106's 64 MiB, 3 passes, 4 lanes): sign-ins were ~40% of all the web's CPU under `make load`'s
# mix (3 logins in 95 requests) with the default. Of OWASP's equivalent settings (46 MiB/1 pass,
# 19/2, 12/3, 9/4, 7/5) this one costs the server least here: 16 ms a check against 20 for 19 MiB/2
# passes (the least memory to stream through the cache). Hashes made with other parameters are
# rehashed at the next sign-in (verify_password).
ARGON2: dict[str, int] = {"time_cost": 5, "memory_cost": 7 * 1024, "parallelism": 1}


@functools.cache
def hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=ARGON2["time_cost"], memory_cost=ARGON2["memory_cost"],
                          parallelism=ARGON2["parallelism"])


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher().hash, password)


async def verify_password(stored: str, password: str) -> tuple[bool, str | None]:
    """Check a password off the event loop. Returns (ok, new hash if the parameters changed)."""

    def check() -> tuple[bool, str | None]:
        try:
            hasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False, None
        return True, hasher().hash(password) if hasher().check_needs_rehash(stored) else None

    return await asyncio.to_thread(check)


# A constant hash to verify against when the account does not exist, so timing does not tell.
_DUMMY: list[str] = []


async def dummy_verify(password: str) -> None:
    if not _DUMMY:
        _DUMMY.append(await hash_password("not-a-real-password"))
    await verify_password(_DUMMY[0], password)


# ---- login throttling ----------------------------------------------------------------------
# One throttle for the login and every costly form: saas/core/throttle.py (kept importable here).
from saas.core.throttle import Throttle  # noqa: E402,F401
