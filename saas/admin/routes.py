"""The platform console pages. Every handler depends on `admin` (see guard.py): 404 for non-admins."""
from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, Router, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import File

from saas.admin import export, guard, health, service, stats
from saas.admin.guard import AdminCtx
from saas.accounts.limits import KINDS, PLANS, limits_for
from saas.core.clock import now
from saas.core.errors import FormError
from saas.core.i18n import _
from saas.core.web.render import flash, redirect, render

if TYPE_CHECKING:
    from saas.core.models import Tenant

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
STATS_MAX_AGE = timedelta(hours=1)


def _s(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def page(request: Request, admin: AdminCtx, template: str, status: int = 200, **context: Any) -> Any:
    return render(request, template, status_code=status, user=admin.user, admin=admin, **context)


@get("/")
async def console_home(request: Request, admin: AdminCtx) -> Any:
    return redirect(request, "/admin/tenants")


@get("/tenants")
async def tenants_list(request: Request, admin: AdminCtx, q: str = "", status: str = "", sort: str = "created",
                       after: str | None = None) -> Any:
    result = await service.list_tenants(admin.db, q=q[:100], status=status, sort=sort, after=after)
    return page(request, admin, "admin/tenants.html", result=result, statuses=service.STATUSES,
                totals=await stats.platform_totals(admin.db))


async def _tenant_page(request: Request, admin: AdminCtx, tenant_id: int, status: int = 200, **extra: Any) -> Any:
    tenant = await service.access_tenant(admin.db, tenant_id)
    if tenant.status != "deleted" and (tenant.stats_at is None or now() - tenant.stats_at > STATS_MAX_AGE):
        await stats.refresh(admin.db, tenant)
    events, names = await service.audit_log(admin.db, target=tenant.slug, limit=20)
    return page(request, admin, "admin/tenant.html", status, tenant=tenant,
                members=await service.members(admin.db, tenant), limits=limits_for(tenant), plans=PLANS,
                kinds=KINDS, events=events, names=names, **extra)


@get("/tenants/{tenant_id:int}")
async def tenant_detail(request: Request, admin: AdminCtx, tenant_id: int) -> Any:
    return await _tenant_page(request, admin, tenant_id)


async def _change(request: Request, admin: AdminCtx, tenant_id: int, action: Callable[[Tenant], Awaitable[object]],
                  done: str) -> Any:
    tenant = await service.access_tenant(admin.db, tenant_id, lock=True)
    try:
        await action(tenant)
    except FormError as exc:
        return await _tenant_page(request, admin, tenant_id, 422, errors=exc.errors)
    flash(request, done)
    return redirect(request, f"/admin/tenants/{tenant_id}")


@post("/tenants/{tenant_id:int}/suspend")
async def tenant_suspend(request: Request, admin: AdminCtx, tenant_id: int, data: Form) -> Any:
    return await _change(request, admin, tenant_id,
                         lambda t: service.do_suspend(admin.db, t, admin.actor, _s(data, "reason")),
                         _("The company is suspended."))


@post("/tenants/{tenant_id:int}/resume")
async def tenant_resume(request: Request, admin: AdminCtx, tenant_id: int) -> Any:
    return await _change(request, admin, tenant_id, lambda t: service.do_resume(admin.db, t, admin.actor),
                         _("The company is active again."))


@post("/tenants/{tenant_id:int}/restore")
async def tenant_restore(request: Request, admin: AdminCtx, tenant_id: int) -> Any:
    return await _change(request, admin, tenant_id, lambda t: service.do_restore(admin.db, t, admin.actor),
                         _("The company is restored."))


@post("/tenants/{tenant_id:int}/plan")
async def tenant_plan(request: Request, admin: AdminCtx, tenant_id: int, data: Form) -> Any:
    return await _change(request, admin, tenant_id,
                         lambda t: service.do_set_plan(admin.db, t, admin.actor, _s(data, "plan"),
                                                       {k: _s(data, k) for k in KINDS}),
                         _("Plan and limits saved."))


@post("/tenants/{tenant_id:int}/stats")
async def tenant_stats(request: Request, admin: AdminCtx, tenant_id: int) -> Any:
    return await _change(request, admin, tenant_id, lambda t: stats.refresh(admin.db, t), _("Usage refreshed."))


@get("/tenants/{tenant_id:int}/delete")
async def tenant_delete_page(request: Request, admin: AdminCtx, tenant_id: int) -> Any:
    tenant = await service.access_tenant(admin.db, tenant_id)
    return page(request, admin, "admin/delete.html", tenant=tenant, grace_days=service.GRACE_DAYS)


@post("/tenants/{tenant_id:int}/delete")
async def tenant_delete(request: Request, admin: AdminCtx, tenant_id: int, data: Form) -> Any:
    tenant = await service.access_tenant(admin.db, tenant_id, lock=True)
    try:
        if _s(data, "confirm") != tenant.slug:
            raise FormError({"confirm": _("Type the company's address exactly to confirm.")})
        await service.do_delete(admin.db, tenant, admin.actor)
    except FormError as exc:
        return page(request, admin, "admin/delete.html", 422, tenant=tenant, grace_days=service.GRACE_DAYS,
                    errors=exc.errors)
    flash(request, _("The company is deleted. It can be restored until %(date)s.",
                     date=tenant.purge_after.date().isoformat()))
    return redirect(request, f"/admin/tenants/{tenant_id}")


@get("/tenants/{tenant_id:int}/export")
async def tenant_export(request: Request, admin: AdminCtx, tenant_id: int) -> File:
    tenant = await service.access_tenant(admin.db, tenant_id)
    fd, name = tempfile.mkstemp(prefix="kt-export-", suffix=".zip")
    os.close(fd)
    try:
        manifest = await export.export_tenant(request.app.state.db, tenant, Path(name), actor=admin.actor)
    except BaseException:
        os.unlink(name)
        raise
    service.audit(admin.db, admin.actor, "tenant.exported", tenant,
                  rows={t: v["rows"] for t, v in manifest["tables"].items()})
    return File(path=name, filename=f"{tenant.slug}-{now():%Y%m%d-%H%M}.zip", media_type="application/zip",
                background=BackgroundTask(asyncio.to_thread, os.unlink, name),
                headers={"Cache-Control": "private, no-store"})


@get("/health")
async def health_page(request: Request, admin: AdminCtx) -> Any:
    settings = request.app.state.settings
    try:
        rq = await asyncio.to_thread(health.queues, settings)
    except Exception as exc:  # noqa: BLE001 - the page still shows the database part
        rq = {"error": type(exc).__name__, "queues": [], "workers": [], "failed": []}
    return page(request, admin, "admin/health.html", rq=rq, schemas=await health.schema_versions(admin.db))


@post("/health/failed/{job_id:str}/retry")
async def health_retry(request: Request, admin: AdminCtx, job_id: str, data: Form) -> Any:
    queue = _s(data, "queue") or "default"
    ok = await asyncio.to_thread(health.retry, request.app.state.settings, queue, job_id)
    if ok:
        service.audit(admin.db, admin.actor, "job.retried", None, job_id=job_id, queue=queue)
    flash(request, _("The job is queued again.") if ok else _("That job is no longer among the failed ones."),
          "success" if ok else "error")
    return redirect(request, "/admin/health")


@get("/audit")
async def audit_page(request: Request, admin: AdminCtx, action: str = "", target: str = "",
                     before: int | None = None) -> Any:
    events, names = await service.audit_log(admin.db, action=action, target=target, before=before)
    return page(request, admin, "admin/audit.html", events=events, names=names, action=action, target=target)


def admin_router() -> Router:
    return Router(
        path="/admin",
        route_handlers=[console_home, tenants_list, tenant_detail, tenant_suspend, tenant_resume, tenant_restore,
                        tenant_plan, tenant_stats, tenant_delete_page, tenant_delete, tenant_export, health_page,
                        health_retry, audit_page],
        dependencies={"admin": Provide(guard.admin_ctx)},
        include_in_schema=False,
    )
