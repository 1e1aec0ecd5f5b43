"""Import pages: upload, the mapping screen with a dry run, progress, the report, and undo."""
from __future__ import annotations

import contextlib
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body
from sqlalchemy import and_, case, func, select

from saas.clients.imports import dryrun, privacy
from saas.clients.imports import service as imports
from saas.clients.imports.jobs import READ_JOB, do_queue_check, do_start_import, do_store_upload, is_reading
from saas.clients.imports.rows import sample_rows
from saas.clients.service import audit
from saas.clients.models import Import
from saas.core.jobs import QueueUnavailable
from saas.accounts.limits import Room, room
from saas.core.models import Job
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _, lazy
from saas.core.web.render import flash, is_htmx, redirect, render

FIELD_LABELS = {
    "full_name": lazy("Full name (one column)"), "last_name": lazy("Last name"), "first_name": lazy("First name"),
    "middle_name": lazy("Patronymic"), "birth_date": lazy("Birth date"), "phone": lazy("Phone"), "email": lazy("Email"),
    "address": lazy("Address"), "passport_series": lazy("Passport series"), "passport_number": lazy("Passport number"),
    "passport_issued_by": lazy("Issued by"), "passport_issued_on": lazy("Date of issue"),
    "passport_division_code": lazy("Division code"), "consent_email": lazy("Consent: email"),
    "consent_sms": lazy("Consent: SMS"), "consent_calls": lazy("Consent: calls"), "tags": lazy("Tags"),
    "note": lazy("Note"), "product_groups": lazy("Product groups"), "directions": lazy("Directions"),
    "client_phone": lazy("Client's phone"), "client_email": lazy("Client's email"),
    "client_passport": lazy("Client's passport"), "client_name": lazy("Client's full name"), "kind": lazy("Kind"),
    "occurred_on": lazy("Date"), "amount": lazy("Amount"), "product_group": lazy("Product group"),
    "direction": lazy("Direction"), "due_on": lazy("Due date"), "paid_on": lazy("Paid on"),
}


def field_choices(kind: str, fields: list | None = None) -> list[tuple[str, str]]:
    from saas.clients.custom import label

    builtin = [(f, _(FIELD_LABELS.get(f, f))) for f in imports.fields_for(kind)]
    return builtin + ([(f"custom:{fd.key}", label(fd)) for fd in fields or []] if kind == "clients" else [])


async def _custom(ctx: TenantCtx) -> list:
    from saas.clients.custom import definitions

    return await definitions(ctx.db)


async def _history(ctx: TenantCtx) -> list[dict[str, Any]]:
    """The latest imports, only the columns the list shows: never the stored files (up to 100 MB
    each) nor the rejected rows. An upload the worker has not read yet shows as "reading"."""
    status = case((and_(Import.status == "uploaded", func.jsonb_array_length(Import.headers) == 0), "reading"),
                  else_=Import.status)
    rows = await ctx.db.execute(select(Import.id, Import.kind, Import.filename, Import.total_rows, Import.created_at,
                                       status.label("status")).order_by(Import.id.desc()).limit(50))
    return [dict(row) for row in rows.mappings()]


@get("/imports", opt={"role": "marketer"})
async def import_list(request: Request, ctx: TenantCtx) -> Any:
    return render(request, "clients/imports.html", ctx=ctx, user=ctx.user, imports=await _history(ctx))


@post("/imports", opt={"role": "marketer"})
async def import_upload(
    request: Request, ctx: TenantCtx,
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Any:
    upload = data.get("file")
    kind = str(data.get("kind") or "clients")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise FormError({"file": _("Choose a file to import.")})
        content = await upload.read()
        imp = await do_store_upload(ctx.db, ctx.tenant, data=content, filename=upload.filename, kind=kind,
                                    actor=ctx.actor)
    except QueueUnavailable:
        await ctx.db.rollback()
        errors = {"file": _("The queue is unavailable. Nothing was changed; try again in a minute.")}
    except FormError as exc:
        errors = exc.errors
    else:
        return redirect(request, f"{ctx.base}/imports/{imp.id}")
    return render(request, "clients/imports.html", status_code=422, ctx=ctx, user=ctx.user,
                  imports=await _history(ctx), errors=errors, form={"kind": kind})


async def _job(ctx: TenantCtx, imp: Import) -> Job | None:
    """The import's latest job: its reading, or its run."""
    return await ctx.db.scalar(select(Job).where(Job.kind.in_(("import", READ_JOB)), Job.object_id == imp.id)
                               .order_by(Job.id.desc()).limit(1))


def _reading(imp: Import, job: Job | None) -> str | None:
    """"reading" while the worker reads the upload, "lost" if that job failed; None once read."""
    if not is_reading(imp):
        return None
    return "lost" if job is not None and job.status == "failed" else "reading"


async def _has_file(ctx: TenantCtx, imp: Import) -> bool:
    """Whether the file is still stored, asked of the database without fetching it."""
    return bool(await ctx.db.scalar(select(Import.payload.is_not(None)).where(Import.id == imp.id)))


async def _page(request: Request, ctx: TenantCtx, imp: Import, status: int = 200, **extra: Any) -> Any:
    job = await _job(ctx, imp)
    fields = await _custom(ctx)
    # The dry run maps the first rows the worker kept (`Import.sample`): no page reads the file.
    preview = list(sample_rows(imp, fields)) if imp.status in ("uploaded", "failed") else []
    shown = {k for result, _raw in preview for k in result.values} | {
        f"custom:{k}" for result, _raw in preview for k in result.values.get("custom", {})}
    hidden = privacy.passport_fields(imp)
    for result, _raw in preview:  # custom values shown under their column; passports masked for everyone
        for key, value in result.values.get("custom", {}).items():
            result.values[f"custom:{key}"] = value
        result.values = privacy.mask_values(result.values, hidden)
    preview_fields = [(f, label) for f, label in field_choices(imp.kind, fields) if f in shown]
    can_reveal = ctx.allows("admin") and imp.rejected_count > 0 and privacy.revealed_count(imp) > 0
    return render(request, "clients/import.html", status_code=status, ctx=ctx, user=ctx.user, imp=imp, job=job,
                  **await _check_context(ctx, imp),
                  choices=field_choices(imp.kind, fields), preview=preview, preview_fields=preview_fields,
                  room=await _room_for_clients(ctx, imp), reading=_reading(imp, job),
                  has_file=imp.status in ("uploaded", "failed") and await _has_file(ctx, imp),
                  rejected_rows=privacy.rejected_rows(imp, limit=20), can_reveal=can_reveal, **extra)


async def _check_context(ctx: TenantCtx, imp: Import) -> dict[str, Any]:
    """The dry run over every row: its job, its state and what it found (see `dryrun.state`)."""
    check_job = await dryrun.latest(ctx.db, imp)
    check_state, check = dryrun.state(check_job, imp)
    return {"check_job": check_job, "check_state": check_state, "check": check}


@get("/imports/{import_id:int}/check", opt={"role": "marketer"})
async def import_check(request: Request, ctx: TenantCtx, import_id: int) -> Any:
    """The dry run's box, polled while it runs."""
    imp = await imports.access_import(ctx.db, import_id)
    if not is_htmx(request):
        return redirect(request, f"{ctx.base}/imports/{imp.id}")
    return render(request, "clients/_import_check.html", ctx=ctx, imp=imp, **await _check_context(ctx, imp))


async def _room_for_clients(ctx: TenantCtx, imp: Import) -> Room | None:
    """The plan's client limit, when this file has more rows than clients can still be added: said
    before the import starts rather than as thousands of rejected rows after it."""
    if imp.kind != "clients" or imp.status not in ("uploaded", "failed"):
        return None
    space = await room(ctx.db, ctx.tenant, "clients")
    return space if space is not None and imp.total_rows > space.left else None


@get("/imports/{import_id:int}", opt={"role": "marketer"})
async def import_page(request: Request, ctx: TenantCtx, import_id: int) -> Any:
    return await _page(request, ctx, await imports.access_import(ctx.db, import_id))


def _read_choices(imp: Import, data: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    mapping = {str(i): str(data.get(f"col_{i}") or "") for i in range(len(imp.headers))}
    match_by = data.get("match_by") or []
    match_by = match_by if isinstance(match_by, list) else [match_by]
    options = {"match_by": [m for m in match_by if m in imports.MATCH_KEYS],
               "on_match": data.get("on_match") or "update", "mode": data.get("mode") or "accepted"}
    return mapping, options


@post("/imports/{import_id:int}/preview", opt={"role": "marketer"})
async def import_preview(request: Request, ctx: TenantCtx, import_id: int,
                         data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Any:
    """The dry run: apply the chosen mapping to the first rows, write nothing."""
    imp = await imports.access_import(ctx.db, import_id)
    if imp.status not in ("uploaded", "failed") or is_reading(imp):  # (the worker writes the guessed mapping)
        return await _page(request, ctx, imp)
    imp.mapping, imp.options = _read_choices(imp, data)
    errors = {}
    try:
        imports.check_options(imp.kind, imp.mapping, imp.options, imp.headers,
                              [fd.key for fd in await _custom(ctx)])
    except FormError as exc:
        errors = exc.errors
    else:
        await _recheck(ctx, imp)
    return await _page(request, ctx, imp, status=422 if errors else 200, errors=errors)


async def _recheck(ctx: TenantCtx, imp: Import) -> None:
    """A new mapping: every row is tried again in the worker (a big file takes a while), unless the
    latest check already ran with these choices."""
    latest = await dryrun.latest(ctx.db, imp)
    ran = ((latest.result or {}).get("check") or {}) if latest else {}
    if latest is not None and ran and {k: ran.get(k) for k in ("mapping", "options")} == dryrun.choices(imp):
        return
    if latest is not None and latest.status == "queued":  # not started: it will read the mapping saved now
        return
    if not await _has_file(ctx, imp):
        return
    with contextlib.suppress(QueueUnavailable):  # the mapping is kept; the page says the check did not run
        await do_queue_check(ctx.db, ctx.tenant, imp)


@post("/imports/{import_id:int}/start", opt={"role": "marketer"})
async def import_start(request: Request, ctx: TenantCtx, import_id: int,
                       data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Any:
    imp = await imports.access_import(ctx.db, import_id)
    if imp.status not in ("uploaded", "failed") or is_reading(imp) or not await _has_file(ctx, imp):
        return redirect(request, f"{ctx.base}/imports/{imp.id}")
    mapping, options = _read_choices(imp, data)
    try:
        imports.check_options(imp.kind, mapping, options, imp.headers, [fd.key for fd in await _custom(ctx)])
    except FormError as exc:
        imp.mapping, imp.options = mapping, options
        return await _page(request, ctx, imp, status=422, errors=exc.errors)
    imp.mapping, imp.options = mapping, options
    imp.error, imp.rejected, imp.rejected_count = None, [], 0
    try:
        await do_start_import(ctx.db, ctx.tenant, imp, ctx.actor)
    except QueueUnavailable:
        flash(request, _("The queue is unavailable. Nothing was changed; try again in a minute."), "error")
    return redirect(request, f"{ctx.base}/imports/{imp.id}")


@get("/imports/{import_id:int}/progress", opt={"role": "marketer"})
async def import_progress(request: Request, ctx: TenantCtx, import_id: int) -> Any:
    imp = await imports.access_import(ctx.db, import_id)
    job = await _job(ctx, imp)
    if not is_htmx(request):
        return redirect(request, f"{ctx.base}/imports/{imp.id}")
    reading = _reading(imp, job)
    response = render(request, "clients/_import_progress.html", ctx=ctx, imp=imp, job=job, reading=reading,
                      fragment=True)
    if imp.status in ("done", "failed", "undone") or (imp.status == "uploaded" and reading != "reading"):
        response.headers["HX-Refresh"] = "true"  # the finished page shows the report, a read file its mapping
    return response


@get("/imports/{import_id:int}/rejected.csv", opt={"role": "marketer"})
async def import_rejected(ctx: TenantCtx, import_id: int, reveal: str | None = None) -> Response:
    """Passport cells masked; an admin's `?reveal=passport` gives them in full, audited."""
    imp = await imports.access_import(ctx.db, import_id)
    full = reveal == "passport"
    if full:
        if not ctx.allows("admin"):
            raise PermissionDeniedException(_("Revealing passport data needs the admin or owner role."))
        await audit(ctx.db, ctx.actor, "passport.revealed", "import", imp.id, rows=privacy.revealed_count(imp))
    name = f"import-{imp.id}-rejected{'-full' if full else ''}.csv"
    return Response(imports.rejected_csv(imp, privacy.rejected_rows(imp, reveal=full)),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@post("/imports/{import_id:int}/undo", opt={"role": "admin"})
async def import_undo(request: Request, ctx: TenantCtx, import_id: int) -> Any:
    imp = await imports.access_import(ctx.db, import_id)
    try:
        result = await imports.do_undo(ctx.db, imp, ctx.actor)
        flash(request, _("Import undone: %(c)s new clients and %(o)s operations removed, %(r)s clients restored.",
                         c=result["clients"], o=result["operations"], r=result["restored"]))
    except FormError as exc:
        flash(request, " ".join(exc.errors.values()), "error")
    return redirect(request, f"{ctx.base}/imports/{imp.id}")


HANDLERS = [import_list, import_upload, import_page, import_preview, import_check, import_start, import_progress,
            import_rejected, import_undo]
