"""RQ entry points for analytics: the score refresh (after imports, nightly, on demand)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics.scoring import json_safe, refresh
from saas.core.config import get_settings
from saas.core import clock
from saas.core.jobs import check_queue as check_queue_up
from saas.core.jobs import periodic, run_tenant_job, start_job
from saas.core.models import Job, Tenant

KIND = "refresh"


def refresh_scores(tenant_id: int, job_id: int) -> dict:
    async def body(db, tenant: Tenant, job: Job) -> dict:  # noqa: ANN001
        async def progress(done: int, total: int) -> None:
            async with db.session(tenant.schema_name) as s:
                await s.execute(update(Job).where(Job.id == job.id).values(progress=done, total=total))

        async with db.session(tenant.schema_name) as s:
            result = await refresh(s, progress=progress)
            job_row = await s.get(Job, job.id)
            chosen = (result.backtest.get("compare") or {}).get(result.method, {})
            job_row.result = {"clients": result.clients, "method": result.method, "seconds": result.seconds,
                              "status": result.status_counts, "status_ordered": result.backtest.get("status_ordered"),
                              "holdout": json_safe(chosen.get("total"))}
        return {"clients": result.clients, "method": result.method}

    return run_tenant_job(tenant_id, job_id, body)


async def running_refresh(db: AsyncSession) -> Job | None:
    return await db.scalar(select(Job).where(Job.kind == KIND, Job.status.in_(("queued", "running")))
                           .order_by(Job.id.desc()).limit(1))


async def do_queue_refresh(db: AsyncSession, tenant: Tenant, *, check_queue: bool = True) -> Job:
    """Queue one refresh for the tenant (an existing queued or running one is reused)."""
    # Serialise concurrent presses (two web processes), so the second reuses the first's job.
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{tenant.schema_name}:{KIND}"})
    existing = await running_refresh(db)
    if existing is not None and existing.created_at > clock.now() - timedelta(hours=2):
        return existing
    if check_queue:
        await check_queue_up(get_settings())
    if existing is not None:  # stuck for hours: a dead worker; its retry budget is spent
        existing.status, existing.error = "failed", "abandoned"
    return await start_job(db, tenant, Job(kind=KIND, status="queued"), refresh_scores)


NIGHTLY_HOUR_UTC = 2


def _tonight(now: datetime) -> datetime:
    run_at = now.replace(hour=NIGHTLY_HOUR_UTC, minute=0, second=0, microsecond=0)
    return run_at if run_at > now else run_at + timedelta(days=1)


@periodic("nightly", _tonight, "%Y%m%d")
def nightly() -> int:
    """Queue a refresh for every active tenant (scheduled by the worker's RQ scheduler)."""
    from saas.core.db import Database

    async def main() -> int:
        settings = get_settings()
        db = Database(settings.database_url, pool_size=2)
        count = 0
        try:
            async with db.session() as s:
                tenants = list(await s.scalars(select(Tenant).where(Tenant.status == "active")))
            for tenant in tenants:
                async with db.session(tenant.schema_name) as s:
                    await do_queue_refresh(s, tenant, check_queue=False)
                    count += 1
        finally:
            await db.dispose()
        return count

    return asyncio.run(main())


def resnapshot_dashboard(schema: str) -> bool:
    """Recount the dashboard's snapshot after live writes (queued by dashboard.mark_stale)."""
    from saas.analytics.dashboard import resnapshot
    from saas.core.db import Database

    async def main() -> bool:
        db = Database(get_settings().database_url, pool_size=2)
        try:
            async with db.session() as s:  # a company deleted or suspended meanwhile is left alone
                active = await s.scalar(select(Tenant.id).where(Tenant.schema_name == schema,
                                                                Tenant.status == "active"))
            return active is not None and await resnapshot(db, schema)
        finally:
            await db.dispose()

    return asyncio.run(main())
