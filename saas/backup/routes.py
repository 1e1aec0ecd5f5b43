"""The owner's "Export everything" page: build a ZIP in the background, download it for 24 hours,
and restore such a ZIP into an empty company. Owners and admins only."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from saas.core import clock
from saas.core.jobs import QueueUnavailable
from saas.backup import restore
from saas.backup import service as exports
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _
from saas.core.web.render import flash, is_htmx, redirect, render

ADMIN = {"role": "admin"}


async def _page(request: Request, ctx: TenantCtx, status: int = 200, **extra: Any) -> Any:
    return render(request, "backup/export.html", status_code=status, ctx=ctx, user=ctx.user,
                  jobs=await exports.recent_jobs(ctx.db),
                  exports=exports, **extra)


@get("/export", opt=ADMIN)
async def export_page(request: Request, ctx: TenantCtx) -> Any:
    return await _page(request, ctx)


@post("/export", opt=ADMIN)
async def export_start(request: Request, ctx: TenantCtx,
                       data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Any:
    full = data.get("passport") == "full" and ctx.allows("admin")  # the client export's rule
    try:
        await exports.do_start_export(ctx.db, ctx.tenant, user_id=ctx.user.id, actor=ctx.actor, full_passport=full)
        flash(request, _("The export is being built. It usually takes a minute."))
    except QueueUnavailable:
        flash(request, _("The queue is unavailable. Nothing was changed; try again in a minute."), "error")
    return redirect(request, f"{ctx.base}/export")


@get("/export/jobs/{job_id:int}", opt=ADMIN)
async def export_job(request: Request, ctx: TenantCtx, job_id: int) -> Any:
    """The self-replacing progress element (htmx); a plain request gets the whole page."""
    job = await exports.access_job(ctx.db, job_id)
    if not is_htmx(request):
        return redirect(request, f"{ctx.base}/export")
    return render(request, "backup/_export_job.html", ctx=ctx, job=job, exports=exports)


@get("/export/jobs/{job_id:int}/{key:str}", opt=ADMIN)
async def export_download(request: Request, ctx: TenantCtx, job_id: int, key: str) -> Any:
    job = await exports.access_job(ctx.db, job_id)
    removed = (job.result or {}).get("removed")  # read first: an expiry below rewrites the row
    data = await exports.do_download(ctx.db, job, key, ctx.actor)
    if data is None:
        return render(request, "backup/export_expired.html", status_code=410, ctx=ctx, user=ctx.user, job=job,
                      removed=removed)
    name = f"kartoteka-{ctx.tenant.slug}-{job.finished_at or clock.today():%Y-%m-%d}.zip"
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"})


@post("/export/restore", opt=ADMIN)
async def restore_start(request: Request, ctx: TenantCtx,
                        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> Any:
    upload = data.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise FormError({"file": _("Choose a Kartoteka export ZIP.")})
        await restore.do_start_restore(ctx.db, ctx.tenant, user_id=ctx.user.id, actor=ctx.actor,
                                       data=await upload.read())
    except FormError as exc:
        return await _page(request, ctx, 422, errors=exc.errors)
    except QueueUnavailable:
        flash(request, _("The queue is unavailable. Nothing was changed; try again in a minute."), "error")
        return redirect(request, f"{ctx.base}/export")
    flash(request, _("The export is being restored into this company."))
    return redirect(request, f"{ctx.base}/export")


HANDLERS = [export_page, export_start, export_job, export_download, restore_start]
