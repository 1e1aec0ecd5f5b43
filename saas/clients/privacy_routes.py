"""The company's personal data settings: how long import files and undo data are kept."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from saas.accounts.deps import TenantCtx
from saas.clients.imports import retention
from saas.core.errors import FormError
from saas.core.i18n import _
from saas.core.web.render import flash, redirect, register_globals, render

ADMIN = {"role": "admin"}


@get("/settings/privacy", opt=ADMIN)
async def privacy_page(request: Request, ctx: TenantCtx) -> Any:
    return render(request, "clients/privacy.html", ctx=ctx, user=ctx.user, errors={},
                  days=await retention.retention_days(ctx.db), max_days=retention.MAX_DAYS)


@post("/settings/privacy", opt=ADMIN)
async def privacy_save(request: Request, ctx: TenantCtx,
                       data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Any:
    raw = data.get("import_retention_days", "")
    try:
        await retention.do_set_retention(ctx.db, raw, ctx.actor)
    except FormError as exc:
        return render(request, "clients/privacy.html", status_code=422, ctx=ctx, user=ctx.user, errors=exc.errors,
                      days=raw, max_days=retention.MAX_DAYS)
    flash(request, _("Personal data settings saved."))
    return redirect(request, f"{ctx.base}/settings/privacy")


HANDLERS = [privacy_page, privacy_save]

register_globals(undo_gone=retention.undo_gone_message)  # the import page says why undo is gone
