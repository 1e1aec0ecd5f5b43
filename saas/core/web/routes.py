"""Cross-cutting pages: health, the language switch and the development outbox."""
from __future__ import annotations

import asyncio
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.config import Settings
from saas.core.models import OutboxMail
from saas.core.web.render import render


@get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> Response:
    state = request.app.state

    async def check_db() -> str:
        async with state.db.engine.connect() as conn:
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
    return Response({"status": "ok" if ok else "unavailable", **results}, status_code=200 if ok else 503,
                    media_type=MediaType.JSON, headers={"Cache-Control": "no-store"})


@get("/dev/outbox", include_in_schema=False)
async def outbox(request: Request, db: AsyncSession, settings: Settings) -> Any:
    if settings.production:
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
