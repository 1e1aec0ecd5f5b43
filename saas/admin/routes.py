"""The platform console pages. Every handler depends on `admin` (see guard.py): 404 for non-admins."""
from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from babel.dates import format_timedelta
from litestar import Request, Router, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import File
from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError

from saas.admin import export, guard, health, service, stats
from saas.admin.guard import AdminCtx
from saas.accounts.limits import KINDS, PLANS, limits_for
from saas.core.clock import now
from saas.core.errors import FormError
from saas.core.i18n import _, get_locale
from saas.core.jobs import get_queue
from saas.core.web.render import flash, redirect, render

if TYPE_CHECKING:
    from saas.core.models import Tenant

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
POLLS = 20  # the company list re-reads its figures every 2 s while a refresh it queued runs, at most this often


def _s(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def page(request: Request, admin: AdminCtx, template: str, status: int = 200, **context: Any) -> Any:
    return render(request, template, status_code=status, user=admin.user, admin=admin, **context)


@get("/")
async def console_home(request: Request, admin: AdminCtx) -> Any:
    return redirect(request, "/admin/tenants")


async def _queue_usage_refresh(request: Request) -> bool:
    """Queue a measurement of the companies whose figures may be out of date: one at a time (a fixed
    id, no result kept, so the id is free again once it ran; a failure holds it for a minute).
    False when the queue is down."""
    settings = request.app.state.settings

    def put() -> None:
        get_queue(settings).enqueue("saas.admin.jobs.refresh_usage", job_id=f"{settings.redis_prefix}-usage-refresh",
                                    unique=True, result_ttl=0, failure_ttl=60, job_timeout=1800)

    try:
        await asyncio.to_thread(put)
    except DuplicateJobError:
        return True  # one is queued or running already
    except (RedisError, OSError):
        return False
    return True


def _age(at: datetime | None) -> str | None:
    if at is None:
        return None
    return format_timedelta(min(at - now(), timedelta(0)), add_direction=True, granularity="minute",
                            locale=get_locale())


@get("/tenants")
async def tenants_list(request: Request, admin: AdminCtx, q: str = "", status: str = "", sort: str = "created",
                       after: str | None = None, poll: int = 0) -> Any:
    result = await service.list_tenants(admin.db, q=q[:100], status=status, sort=sort, after=after)
    # Figures that may be out of date are measured again in the background; the page re-reads them
    # (polling itself, see admin/tenants.html) until they are current.
    pending = poll < POLLS and await stats.stale_count(admin.db) > 0 and await _queue_usage_refresh(request)
    totals = await stats.platform_totals(admin.db)
    again = urlencode({"q": q[:100], "status": status, "sort": sort, "after": after or "", "poll": poll + 1})
    return page(request, admin, "admin/tenants.html", result=result, statuses=service.STATUSES, totals=totals,
                usage_age=_age(totals["as_of"]), pending=pending, poll_url=f"/admin/tenants?{again}")


async def _tenant_page(request: Request, admin: AdminCtx, tenant_id: int, status: int = 200, **extra: Any) -> Any:
    tenant = await service.access_tenant(admin.db, tenant_id)
    if stats.is_stale(tenant, now()):
        await stats.refresh(admin.db, tenant)
    events, names = await service.audit_log(admin.db, target=tenant.slug, limit=20)
    return page(request, admin, "admin/tenant.html", status, tenant=tenant,
                members=await service.members(admin.db, tenant), limits=limits_for(tenant), plans=PLANS,
                kinds=KINDS, events=events, names=names, usage_age=_age(tenant.stats_at), **extra)


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
