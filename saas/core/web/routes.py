"""Cross-cutting pages: health, the language switch and the development outbox."""
from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from litestar import MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.config import Settings
from saas.core.engine import engine_info
from saas.core.models import OutboxMail
from saas.core.web.render import render


@get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> Response:
    state = request.app.state

    async def check_db() -> str:
        async with state.db.autocommit.connect() as conn:  # one round trip: no BEGIN, no ROLLBACK
            await conn.execute(text("SELECT 1"))
        return "ok"

    async def check_redis() -> str:
        await state.redis.ping()
        return "ok"

    results = {}
    for name, check in (("database", check_db), ("redis", check_redis)):
        try:
            results[name] = await asyncio.wait_for(check(), timeout=3)
        except Exception as exc:  # noqa: BLE001 - any failure means "down", named by its type
            results[name] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in results.values())
    if results["database"] == "ok":  # plain PostgreSQL, or Citus with N workers (detected once)
        results["engine"] = (await engine_info(state.db.engine)).as_dict()  # type: ignore[assignment]
    return Response({"status": "ok" if ok else "unavailable", **results}, status_code=200 if ok else 503,
                    media_type=MediaType.JSON, headers={"Cache-Control": "no-store"})


LOOPBACK = {"127.0.0.1", "::1", "localhost"}
FORWARDED = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


def from_this_machine(request: Request) -> bool:
    """A request made on this machine, straight to the server: loopback peer, loopback Host (a DNS
    rebinding page sends its own name), and no proxy's forwarding header (a proxy on the same machine
    would make every visitor look local)."""
    peer = request.client.host if request.client else ""
    host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    forwarded = any(k.lower() in FORWARDED for k, _ in request.scope["headers"])
    return peer in LOOPBACK and host in LOOPBACK and not forwarded


@get("/dev/outbox", include_in_schema=False)
async def outbox(request: Request, db: AsyncSession, settings: Settings) -> Any:
    # Reset and invitation links are keys to accounts: outside production they are still shown only
    # to someone on the server's own machine (the developer), never over the network.
    if settings.production or not from_this_machine(request):
        raise NotFoundException()
    mails = list(await db.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(50)))
    return render(request, "dev/outbox.html", mails=mails)


HANDLERS = [healthz, outbox]


@get("/dev/error", include_in_schema=False)
async def dev_error(settings: Settings) -> None:
    """Development only: shows what a server error looks like (and that it carries our headers)."""
    if settings.production:
        raise NotFoundException()
    raise RuntimeError("deliberate error for /dev/error")


HANDLERS.append(dev_error)
