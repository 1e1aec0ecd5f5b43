"""The company's dictionaries (product groups, business directions) and its audit log."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from saas.clients import service
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _
from saas.core.web.render import flash, redirect, render

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
KINDS = ("product_groups", "directions")


async def _dictionaries_page(request: Request, ctx: TenantCtx, status: int = 200, **extra: Any) -> Any:
    lists = {k: await service.dictionary(ctx.db, k, include_archived=True) for k in KINDS}
    return render(request, "clients/dictionaries.html", status_code=status, ctx=ctx, user=ctx.user, lists=lists,
                  **extra)


@get("/dictionaries", opt={"role": "admin"})
async def dictionaries(request: Request, ctx: TenantCtx) -> Any:
    return await _dictionaries_page(request, ctx)


@post("/dictionaries/{kind:str}", opt={"role": "admin"})
async def dictionary_add(request: Request, ctx: TenantCtx, kind: str, data: Form) -> Any:
    if kind not in KINDS:
        from litestar.exceptions import NotFoundException

        raise NotFoundException()
    try:
        await service.do_add_dictionary_item(ctx.db, kind, str(data.get("name", "")))
    except FormError as exc:
        return await _dictionaries_page(request, ctx, 422, errors={kind: exc.errors.get("name", "")},
                                        form={kind: data.get("name", "")})
    flash(request, _("Added."))
    return redirect(request, f"{ctx.base}/dictionaries")


@post("/dictionaries/{kind:str}/{item_id:int}", opt={"role": "admin"})
async def dictionary_change(request: Request, ctx: TenantCtx, kind: str, item_id: int, data: Form) -> Any:
    if kind not in KINDS:
        from litestar.exceptions import NotFoundException

        raise NotFoundException()
    action = str(data.get("action", ""))
    try:
        if action == "rename":
            await service.do_rename_dictionary_item(ctx.db, kind, item_id, str(data.get("name", "")))
        else:
            await service.do_archive_dictionary_item(ctx.db, kind, item_id, archived=action == "archive")
    except FormError as exc:
        flash(request, " ".join(exc.errors.values()), "error")
    return redirect(request, f"{ctx.base}/dictionaries")


@get("/audit", opt={"role": "admin"})
async def audit_log(request: Request, ctx: TenantCtx) -> Any:
    """A GET form (works without JS); htmx asks for the rows only."""
    from saas.accounts import audit_log as log
    from saas.core.web.render import is_htmx

    f = log.parse_filter(dict(request.query_params))
    events, names = await log.events(ctx.db, ctx.tenant, f)
    template = "clients/_audit_rows.html" if is_htmx(request) else "clients/audit.html"
    return render(request, template, ctx=ctx, user=ctx.user, events=events, names=names, f=f,
                  people=await log.people(ctx.db, ctx.tenant), page=log.PAGE, system=log.SYSTEM)


HANDLERS = [dictionaries, dictionary_add, dictionary_change, audit_log]
