"""Client list and card pages. Thin: parse, call the service, render (page or fragment)."""
from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body

from saas.clients import operations as ops
from saas.clients import card_rows, columns, events, list_rows, queries, service
from saas.clients.models import Client
from saas.core import clock
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _
from saas.core.web.render import flash, is_htmx, redirect, register_globals, render

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
CLIENT_FORM_FIELDS = (
    "last_name", "first_name", "middle_name", "birth_date", "phone", "email", "address", "note",
    "passport_series", "passport_number", "passport_issued_by", "passport_issued_on", "passport_division_code",
)

# The list's and the card's rows, drawn in Python (see list_rows and card_rows)
register_globals(client_rows=list_rows.render_rows, operation_row=card_rows.operation_row_renderer)


def _one(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value)


def _many(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    return [str(v) for v in (value if isinstance(value, list) else [value]) if str(v).strip()]


# What the pages show beside their rows, each page's read in one statement (queries.furniture)
FORM_FURNITURE = ("fields", *queries.DICTIONARIES)
CARD_FURNITURE = ("operations", *FORM_FURNITURE)


# ---- list ----------------------------------------------------------------------------------


async def _list_params(request: Request, ctx: TenantCtx, full: bool) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """The query, or a saved view's (the user's default one when the list opens bare); and the page's
    furniture, one statement: the custom fields; the saved views the user sees when a view is asked
    for or the `full` page lists them; the dictionaries for the full page's menus."""
    params = dict(request.query_params)
    view_id = str(params.get("view") or "")
    parts = ("fields", *(("views",) if full or view_id.isdigit() else ()), *(queries.DICTIONARIES if full else ()))
    furniture = await queries.furniture(ctx.db, *parts, user_id=ctx.user.id)
    view = None
    if view_id.isdigit():  # one of the views the user sees (custom_routes.access_view's rule), else 404
        view = next((v for v in furniture["views"] if v.id == int(view_id)), None)
        if view is None:
            raise NotFoundException()
    elif not params and not request.headers.get("hx-request"):
        view = next((v for v in furniture["views"] if v.user_id == ctx.user.id and v.is_default), None)
    if view is not None:
        params = {**view.params, **{k: v for k, v in params.items() if k not in ("view",)}}
    return params, view, furniture


@get("/clients")
async def client_list(request: Request, ctx: TenantCtx) -> Any:
    from saas.clients import custom

    target = request.headers.get("hx-target") if is_htmx(request) else None
    params, view, furniture = await _list_params(request, ctx, full=target not in ("more", "rows"))
    fields = furniture["fields"]
    all_columns = columns.catalogue(fields, custom.label)
    ticked = request.query_params.getall("col", []) if "col" in request.query_params else None
    shown, chosen = columns.choose(params, ticked, request.cookies.get(columns.COOKIE), all_columns, fields)
    f = queries.parse_filter(params)
    f.columns = columns.encode(shown, all_columns)
    client_columns, score_columns = queries.list_columns_for(shown, f.sort)
    page = await queries.list_clients(ctx.db, f, client_columns, score_columns, fields)  # plain rows, the columns shown
    context: dict[str, Any] = {"ctx": ctx, "user": ctx.user, "f": f, "page": page, "fields": fields,
                               "columns": [c for c in all_columns if c.key in shown], "all_columns": all_columns,
                               "field_label": custom.label}
    if target == "more":
        return render(request, "clients/_rows.html", **context)  # scrolling: the next rows only
    count, estimated = await queries.count_clients(ctx.db, f, page, fields)  # "about 120 000" past 10,000
    if target == "rows":  # typing: the rows and the count, no views, no menus
        return render(request, "clients/_rows.html", count=count, estimated=estimated, **context)
    context.update(view=view, **furniture)  # the views and dictionaries
    response = render(request, "clients/index.html", count=count, estimated=estimated, **context)
    if chosen:  # remembered for this company's list (the cookie's path), for the next bare visit
        response.set_cookie(columns.COOKIE, columns.encode(shown, all_columns, "."), path=f"{ctx.base}/clients",
                            max_age=columns.COOKIE_MAX_AGE, httponly=True, samesite="lax",
                            secure=request.app.state.settings.secure_cookies)
    return response


@post("/clients/bulk")
async def client_bulk(request: Request, ctx: TenantCtx, data: Form) -> Any:
    # "product_group:5": the group chosen by name in the action list (the id never typed by hand)
    action, _sep, chosen = _one(data, "action").partition(":")
    ids = [int(i) for i in _many(data, "ids") if i.isdigit()]
    if action == "export":
        query = "&".join(f"ids={i}" for i in ids)
        return redirect(request, f"{ctx.base}/clients/export?format={_one(data, 'format') or 'csv'}&{query}")
    try:
        result = await service.do_bulk(ctx.db, ids, action, chosen or _one(data, "value"), ctx.actor)
        flash(request, _("Updated %(n)s clients.", n=result.changed))
    except FormError as exc:
        flash(request, " ".join(exc.errors.values()), "error")
    return redirect(request, f"{ctx.base}/clients?{_one(data, 'back')}")


# ---- create and edit -----------------------------------------------------------------------


async def _form_context(ctx: TenantCtx) -> dict[str, Any]:
    from saas.clients import custom

    return {"field_label": custom.label, **await queries.furniture(ctx.db, *FORM_FURNITURE)}


@get("/clients/new")
async def client_new(request: Request, ctx: TenantCtx) -> Any:
    return render(request, "clients/form.html", ctx=ctx, user=ctx.user, client=None, form={},
                  **await _form_context(ctx))


def _form_input(data: dict[str, Any], client: Client | None) -> dict[str, Any]:
    raw = {k: _one(data, k).strip() for k in CLIENT_FORM_FIELDS}
    present = set(CLIENT_FORM_FIELDS)
    passport_keys = {k for k in CLIENT_FORM_FIELDS if k.startswith("passport_")}
    if client is not None and not any(raw[k] for k in passport_keys) and not _one(data, "passport_clear"):
        present -= passport_keys  # the edit form shows the passport masked: empty means unchanged
    return {
        "raw": raw, "present": present,
        "consent": {ch: bool(_one(data, f"consent_{ch}")) for ch in service.CHANNELS},
        "tags": _one(data, "tags").replace(";", ",").split(","),
        "product_group_ids": [int(i) for i in _many(data, "product_group_ids") if i.isdigit()],
        "direction_ids": [int(i) for i in _many(data, "direction_ids") if i.isdigit()],
        "custom": {k[3:]: (_many(data, k) if isinstance(data.get(k), list) else _one(data, k))
                   for k in data if k.startswith("cf_")},
    }


async def _custom_from_form(ctx: TenantCtx, sent: dict[str, Any]) -> dict[str, Any]:
    """Every active field is on the form: an unticked yes/no is "no", an empty input clears."""
    out: dict[str, Any] = {}
    for fd in await queries.field_rows(ctx.db):
        value = sent.get(fd.key)
        out[fd.key] = (value if value not in (None, "") else False) if fd.type == "bool" else value
    return out


async def _save(request: Request, ctx: TenantCtx, data: dict[str, Any], client: Client | None) -> Any:
    form = _form_input(data, client)
    try:
        saved = await service.do_save_client(
            ctx.db, form["raw"], actor=ctx.actor, client=client, present=form["present"],
            consent=form["consent"], consent_source=_one(data, "consent_source") or "form", tags=form["tags"],
            product_group_ids=form["product_group_ids"], direction_ids=form["direction_ids"],
            custom=await _custom_from_form(ctx, form["custom"]),
        )
    except FormError as exc:
        return render(request, "clients/form.html", status_code=422, ctx=ctx, user=ctx.user, client=client,
                      errors=exc.errors, form={**data, **form["raw"]}, **await _form_context(ctx))
    flash(request, _("Client saved."))
    return redirect(request, f"{ctx.base}/clients/{saved.id}")


@post("/clients")
async def client_create(request: Request, ctx: TenantCtx, data: Form) -> Any:
    return await _save(request, ctx, data, None)


@get("/clients/{client_id:int}/edit")
async def client_edit(request: Request, ctx: TenantCtx, client_id: int) -> Any:
    client = await service.access_client(ctx.db, client_id)
    form = {k: getattr(client, k) or "" for k in service.PLAIN_FIELDS}
    form["tags"] = ", ".join(client.tags)
    for key, value in (client.custom or {}).items():
        form[f"cf_{key}"] = value
    return render(request, "clients/form.html", ctx=ctx, user=ctx.user, client=client, form=form,
                  **await _form_context(ctx))


@post("/clients/{client_id:int}")
async def client_update(request: Request, ctx: TenantCtx, client_id: int, data: Form) -> Any:
    return await _save(request, ctx, data, await service.access_client(ctx.db, client_id))


@post("/clients/validate/{name:str}")
async def client_validate_field(ctx: TenantCtx, name: str, data: Form) -> Response:
    """Inline validation: the same rules as saving, answered for one field."""
    raw = {k: _one(data, k) for k in CLIENT_FORM_FIELDS if k in data}
    raw.setdefault("last_name", "x")  # judge this field alone, not the missing name
    try:
        service.check_client(raw)
        message = ""
    except FormError as exc:
        message = exc.errors.get(name, "")
    return Response(message, media_type="text/plain; charset=utf-8")


# ---- the card ------------------------------------------------------------------------------


async def card_context(ctx: TenantCtx, client: Any, *, fields: bool = True, furniture: dict[str, Any] | None = None,
                       **extra: Any) -> dict[str, Any]:
    """`client`: a card row (queries.card_row, with `score=` and its `furniture`: CARD_FURNITURE) or,
    after a write, the Client saved; then the score is read afresh, since the write has just
    recomputed it, and the operations and the rest in one statement. `fields=False`: without the
    custom fields (the operations fragment does not draw them)."""
    from saas.clients import custom

    if furniture is None:
        await ctx.db.flush()  # the write's own changes first: a Core statement does not autoflush
        parts = CARD_FURNITURE if fields else ("operations", *queries.DICTIONARIES)
        furniture = await queries.furniture(ctx.db, *parts, client_id=client.id)
    if "score" not in extra:
        extra["score"] = await queries.score_row(ctx.db, client.id)
    if "overdue" not in extra:
        extra["overdue"] = (await ops.overdue_amounts(ctx.db, [client.id])).get(client.id, 0)
    return {
        "ctx": ctx, "user": ctx.user, "client": client, **furniture,
        **({"field_label": custom.label} if "fields" in furniture else {}),
        "op_form": {"occurred_on": _company_today(ctx)}, "op_errors": {}, "can_reveal": ctx.allows("admin"), **extra,
    }


@get("/clients/{client_id:int}")
async def client_card(request: Request, ctx: TenantCtx, client_id: int) -> Any:
    # the client, its scores and operations, the fields and dictionaries: plain rows, one statement
    client, score = await queries.card_row(ctx.db, client_id, furniture=CARD_FURNITURE)
    return render(request, "clients/card.html", **await card_context(
        ctx, client, score=score, overdue=client.page_overdue or 0,
        furniture=queries.furniture_of(client, CARD_FURNITURE)))


@get("/clients/{client_id:int}/passport", opt={"role": "admin"})
async def client_passport(request: Request, ctx: TenantCtx, client_id: int) -> Any:
    client = await service.access_client(ctx.db, client_id)
    passport = service.reveal_passport(client)
    await service.audit(ctx.db, ctx.actor, "passport.revealed", "client", client.id)
    return render(request, "clients/_passport.html", ctx=ctx, client=client, passport=passport)


@post("/clients/{client_id:int}/archive")
async def client_archive(request: Request, ctx: TenantCtx, client_id: int) -> Any:
    client = await service.access_client(ctx.db, client_id)
    await service.do_archive_client(ctx.db, client, ctx.actor, archived=client.archived_at is None)
    flash(request, _("Client archived.") if client.archived_at else _("Client restored."))
    return redirect(request, f"{ctx.base}/clients/{client.id}")


@post("/clients/{client_id:int}/erase", opt={"role": "admin"})
async def client_erase(request: Request, ctx: TenantCtx, client_id: int) -> Any:
    client = await service.access_client(ctx.db, client_id)
    try:
        await service.do_erase_client(ctx.db, client, ctx.actor)
    except FormError as exc:
        flash(request, " ".join(exc.errors.values()), "error")
        return redirect(request, f"{ctx.base}/clients/{client.id}")
    flash(request, _("The client's personal data was erased; the amounts of their operations are kept."))
    return redirect(request, f"{ctx.base}/clients")


@get("/clients/{client_id:int}/data.json", opt={"role": "admin"})
async def client_data(ctx: TenantCtx, client_id: int) -> Response:
    client = await service.access_client(ctx.db, client_id)
    data = await service.client_data_export(ctx.db, client, ctx.actor)
    return Response(data, headers={"Content-Disposition": f'attachment; filename="client-{client.id}.json"',
                                   "Cache-Control": "no-store"})


# ---- operations on the card ----------------------------------------------------------------


def _company_today(ctx: TenantCtx) -> str:
    """The new operation's date field starts at today in the company's time zone (most entries are today's)."""
    from zoneinfo import ZoneInfo

    return clock.now().astimezone(ZoneInfo(ctx.tenant.timezone)).date().isoformat()


async def _operations_fragment(request: Request, ctx: TenantCtx, client: Any, status: int = 200,
                               **extra: Any) -> Any:
    """The operations after a change (htmx: the fragment, with the score panel out of band; else the
    card). `client`: the Client, read again here; or, given `overdue`, the row the write itself
    returned (ops.AddedOperation.client: its metrics as recounted), drawn as it is."""
    htmx = is_htmx(request)
    written = events.written_score(ctx.db, client.id)  # the scores this request's write has just put
    if written is not None:
        extra.setdefault("score", SimpleNamespace(**written))
    if "overdue" not in extra:  # the Client, which the write has recounted
        await ctx.db.refresh(client)
    # with htmx the score panel comes along out of band: the write has just re-scored the client
    return render(request, "clients/_operations.html" if htmx else "clients/card.html", status_code=status,
                  **await card_context(ctx, client, fields=not htmx, score_oob=htmx, **extra))


@post("/clients/{client_id:int}/operations")
async def operation_add(request: Request, ctx: TenantCtx, client_id: int, data: Form) -> Any:
    client = await ops.lock_client(ctx.db, client_id)  # read and locked for the write in one statement
    raw = {k: _one(data, k) for k in data}
    try:
        added = await ops.do_add_operation(ctx.db, client, raw, ctx.actor)
    except FormError as exc:
        card = await service.access_client(ctx.db, client_id)
        return await _operations_fragment(request, ctx, card, 422, op_form=raw, op_errors=exc.errors)
    if not is_htmx(request):
        flash(request, _("Operation added."))
        return redirect(request, f"{ctx.base}/clients/{client.id}")
    # the client's row as the write recounted it, and its overdue sum: nothing to read again
    return await _operations_fragment(request, ctx, added.client, overdue=added.client.overdue or 0)


@get("/clients/{client_id:int}/operations/{operation_id:int}/edit")
async def operation_edit(request: Request, ctx: TenantCtx, client_id: int, operation_id: int) -> Any:
    client = await service.access_client(ctx.db, client_id)
    op = await ops.access_operation(ctx.db, operation_id, client.id)
    return await _operations_fragment(request, ctx, client, editing=op.id)


@post("/clients/{client_id:int}/operations/{operation_id:int}")
async def operation_update(request: Request, ctx: TenantCtx, client_id: int, operation_id: int,
                           data: Form) -> Any:
    client = await service.access_client(ctx.db, client_id)
    op = await ops.access_operation(ctx.db, operation_id, client.id)
    raw = {k: _one(data, k) for k in data}
    try:
        await ops.do_update_operation(ctx.db, op, raw, ctx.actor)
    except FormError as exc:
        return await _operations_fragment(request, ctx, client, 422, editing=op.id, edit_errors=exc.errors)
    if not is_htmx(request):
        return redirect(request, f"{ctx.base}/clients/{client.id}")
    return await _operations_fragment(request, ctx, client)


@post("/clients/{client_id:int}/operations/{operation_id:int}/delete")
async def operation_delete_form(request: Request, ctx: TenantCtx, client_id: int, operation_id: int) -> Any:
    client = await service.access_client(ctx.db, client_id)
    await ops.do_delete_operation(ctx.db, await ops.access_operation(ctx.db, operation_id, client.id), ctx.actor)
    if not is_htmx(request):
        flash(request, _("Operation deleted."))
        return redirect(request, f"{ctx.base}/clients/{client.id}")
    return await _operations_fragment(request, ctx, client)


@delete("/clients/{client_id:int}/operations/{operation_id:int}", status_code=200)
async def operation_delete(request: Request, ctx: TenantCtx, client_id: int, operation_id: int) -> Any:
    return await operation_delete_form.fn(request, ctx, client_id, operation_id)


HANDLERS = [
    client_list, client_bulk, client_new, client_create, client_edit, client_update, client_validate_field,
    client_card, client_passport, client_archive, client_erase, client_data,
    operation_add, operation_edit, operation_update, operation_delete_form, operation_delete,
]


@get("/clients/export", opt={"role": "marketer"})  # the whole base's personal data: not for viewers
async def client_export(request: Request, ctx: TenantCtx) -> Response:
    from litestar.response import Stream

    from saas.clients.export import export_clients

    params = dict(request.query_params)
    params["ids"] = request.query_params.getall("ids", [])
    f = queries.parse_filter(params)
    fmt = "xlsx" if params.get("format") == "xlsx" else "csv"
    full = params.get("passport") == "full" and ctx.allows("admin")
    out, _count = await export_clients(ctx.db, f, fmt=fmt, delimiter="," if params.get("delimiter") == "," else ";",
                                       full_passport=full, actor=ctx.actor)
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
             else "text/csv; charset=utf-8")

    def chunks() -> Iterator[bytes]:
        with out:
            while block := out.read(65536):
                yield block

    return Stream(chunks(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="clients.{fmt}"', "Cache-Control": "no-store"})


HANDLERS.insert(0, client_export)
