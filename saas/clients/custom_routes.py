"""Custom field definitions (owner/admin) and saved views of the client list (every user)."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from sqlalchemy import Select, select, update

from saas.clients import custom
from saas.clients.queries import views_visible_to
from saas.clients.models import SavedView
from saas.core import clock
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _
from saas.core.web.render import flash, redirect, render

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _fields_page(request: Request, ctx: TenantCtx, status: int = 200, **extra: Any) -> Any:
    return render(request, "clients/fields.html", status_code=status, ctx=ctx, user=ctx.user,
                  fields=await custom.definitions(ctx.db, include_archived=True), types=custom.TYPES, **extra)


@get("/fields", opt={"role": "admin"})
async def fields_page(request: Request, ctx: TenantCtx) -> Any:
    return await _fields_page(request, ctx)


@post("/fields", opt={"role": "admin"})
async def field_create(request: Request, ctx: TenantCtx, data: Form) -> Any:
    try:
        await custom.do_save_field(ctx.db, data)
    except FormError as exc:
        return await _fields_page(request, ctx, 422, errors=exc.errors, form=data)
    flash(request, _("Field added."))
    return redirect(request, f"{ctx.base}/fields")


@post("/fields/{field_id:int}", opt={"role": "admin"})
async def field_update(request: Request, ctx: TenantCtx, field_id: int, data: Form) -> Any:
    field = await custom.access_field(ctx.db, field_id)
    action = str(data.get("action") or "save")
    try:
        if action == "archive":

            field.archived_at = clock.now()
        elif action == "restore":
            field.archived_at = None
        elif action in ("up", "down"):
            fields = await custom.definitions(ctx.db, include_archived=True)
            i = next(n for n, f in enumerate(fields) if f.id == field.id)
            j = i - 1 if action == "up" else i + 1
            if 0 <= j < len(fields):
                fields[i], fields[j] = fields[j], fields[i]
                for position, f in enumerate(fields):
                    f.position = position
        elif action == "change_type":
            options = [o.strip() for o in str(data.get("options") or "").replace(",", "\n").split("\n") if o.strip()]
            new_type = str(data.get("new_type") or "")
            ok, bad = await custom.type_change_preview(ctx.db, field, new_type, options or field.options)
            if bad and not data.get("confirm"):
                return await _fields_page(request, ctx, 422, preview={"field": field.id, "ok": ok, "bad": bad[:50],
                                                                      "count": len(bad), "new_type": new_type})
            await custom.do_change_type(ctx.db, field, new_type, options or field.options)
        else:
            await custom.do_save_field(ctx.db, {**data, "type": field.type}, field)
    except FormError as exc:
        return await _fields_page(request, ctx, 422, errors={f"{field.id}.{k}": v for k, v in exc.errors.items()})
    flash(request, _("Saved."))
    return redirect(request, f"{ctx.base}/fields")


# ---- saved views ---------------------------------------------------------------------------


def visible_views(ctx: TenantCtx) -> Select[tuple[SavedView]]:
    """The views the user sees, by name (the list reads them as rows: queries.furniture's "views")."""
    return select(SavedView).where(views_visible_to(ctx.user.id)).order_by(SavedView.name)


async def access_view(ctx: TenantCtx, view_id: int) -> SavedView:
    view = await ctx.db.scalar(visible_views(ctx).where(SavedView.id == view_id))
    if view is None:
        raise NotFoundException()
    return view


@post("/views")
async def view_save(request: Request, ctx: TenantCtx, data: Form) -> Any:
    name = str(data.get("name") or "").strip()[:100]
    if not name:
        flash(request, _("Name the view."), "error")
        return redirect(request, f"{ctx.base}/clients?{data.get('query') or ''}")
    from urllib.parse import parse_qsl

    params = {k: v for k, v in parse_qsl(str(data.get("query") or "")) if k not in ("after", "view")}
    view = SavedView(user_id=ctx.user.id, name=name, params=params, shared=bool(data.get("shared")),
                     is_default=bool(data.get("is_default")))
    if view.is_default:
        await ctx.db.execute(update(SavedView).where(SavedView.user_id == ctx.user.id).values(is_default=False))
    ctx.db.add(view)
    await ctx.db.flush()
    flash(request, _("View saved."))
    return redirect(request, f"{ctx.base}/clients?view={view.id}")


@post("/views/{view_id:int}", opt={"role": "viewer"})
async def view_change(request: Request, ctx: TenantCtx, view_id: int, data: Form) -> Any:
    view = await access_view(ctx, view_id)
    action = str(data.get("action") or "")
    if view.user_id != ctx.user.id and not ctx.allows("admin"):
        raise NotFoundException()
    if action == "delete":
        await ctx.db.delete(view)
    elif action == "default":
        await ctx.db.execute(update(SavedView).where(SavedView.user_id == ctx.user.id).values(is_default=False))
        view.is_default = True
    elif action == "share":
        view.shared = not view.shared
    return redirect(request, f"{ctx.base}/clients")


HANDLERS = [fields_page, field_create, field_update, view_save, view_change]
