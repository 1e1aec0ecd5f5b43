"""RQ entry points for analytics: the score refresh (after imports, nightly, on demand)."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics.scoring import json_safe, refresh
from saas.config import get_settings
from saas.core import clock
from saas.jobs import QueueUnavailable, enqueue, rq_job_id, run_tenant_job, sync_redis
from saas.tenants.models import Job, Tenant

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
    settings = get_settings()
    if check_queue:
        try:
            await asyncio.to_thread(sync_redis(settings.redis_url).ping)
        except Exception as exc:  # noqa: BLE001
            raise QueueUnavailable(type(exc).__name__) from exc
    if existing is not None:  # stuck for hours: a dead worker; its retry budget is spent
        existing.status, existing.error = "failed", "abandoned"
    job = Job(kind=KIND, status="queued")
    db.add(job)
    await db.flush()
    await db.commit()
    try:
        await asyncio.to_thread(enqueue, settings, "saas.analytics.jobs.refresh_scores", tenant.id, job.id,
                                job_id=rq_job_id(settings, tenant.schema_name, KIND, job.id), timeout=3600)
    except QueueUnavailable:
        job.status, job.error = "failed", "queue unavailable"
        await db.commit()
        raise
    return job


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


NIGHTLY_HOUR_UTC = 2


def ensure_nightly(settings=None) -> None:  # noqa: ANN001
    """Schedule tonight's refresh of every tenant once (unique id per date; any worker may call)."""
    from saas.jobs import schedule_once

    settings = settings or get_settings()
    now = clock.now()
    run_at = now.replace(hour=NIGHTLY_HOUR_UTC, minute=0, second=0, microsecond=0)
    if run_at <= now:
        run_at += timedelta(days=1)
    schedule_once(settings, run_at, "saas.analytics.jobs.nightly_and_reschedule",
                  f"{settings.redis_prefix}-nightly-{run_at:%Y%m%d}")


def nightly_and_reschedule() -> int:
    count = nightly()
    ensure_nightly()
    return count
