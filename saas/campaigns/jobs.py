"""The list build job: one transaction that swaps the snapshot, so a killed worker changes nothing."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.campaigns.models import Campaign
from saas.campaigns.service import build
from saas.core.config import get_settings
from saas.core import clock
from saas.core.jobs import (check_queue, failure_text, get_queue, rq_job_id, rq_status, run_tenant_job, start_job,
                            sync_redis)
from saas.core.models import Job, Tenant
from saas.core.i18n import _

KIND = "campaign"
STUCK_AFTER = timedelta(minutes=20)


def build_list(tenant_id: int, campaign_id: int, job_id: int) -> dict:
    async def body(db, tenant: Tenant, job: Job) -> dict:  # noqa: ANN001
        schema = tenant.schema_name
        async with db.session(schema) as s:  # visible at once: the page shows "building"
            await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="building"))
            await s.execute(update(Job).where(Job.id == job.id).values(progress=10, total=100))
        try:
            async with db.session(schema) as s:
                campaign = await s.get(Campaign, campaign_id, with_for_update=True)
                if campaign is None:
                    return {"skipped": "no such campaign"}
                count = await build(s, campaign)
                await s.execute(update(Job).where(Job.id == job.id).values(progress=100, total=100))
        except Exception as exc:
            async with db.session(schema) as s:
                await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(
                    status="failed", error=failure_text(exc)))
            raise
        return {"members": count}

    return run_tenant_job(tenant_id, job_id, body)


async def latest_job(db: AsyncSession, campaign_id: int) -> Job | None:
    return await db.scalar(select(Job).where(Job.kind == KIND, Job.object_id == campaign_id)
                           .order_by(Job.id.desc()).limit(1))


async def do_queue_build(db: AsyncSession, tenant: Tenant, campaign: Campaign) -> Job:
    await check_queue(get_settings())
    # Two web processes may take two presses at once: serialise them (only them, not the running
    # build, which holds the campaign row), so the second sees the first's job and reuses it.
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                     {"key": f"{tenant.schema_name}:{KIND}:{campaign.id}"})
    current = await latest_job(db, campaign.id)
    if current is not None and current.status in ("queued", "running"):
        return current
    campaign.status, campaign.error = "building", None

    def undo() -> None:
        campaign.status = "ready" if campaign.built_at else "draft"

    return await start_job(db, tenant, Job(kind=KIND, object_id=campaign.id, status="queued", total=100),
                           build_list, campaign.id, timeout=1800, undo=undo)


async def reconcile(db: AsyncSession, tenant: Tenant, campaign: Campaign) -> None:
    """Never "building" forever: if the job is gone from Redis or failed for good, say so."""
    if campaign.status != "building":
        return
    job = await latest_job(db, campaign.id)
    settings = get_settings()
    state = None  # Redis down: judge by age alone
    if job is not None:
        state = await asyncio.to_thread(rq_status, settings, rq_job_id(settings, tenant.schema_name, KIND, job.id))
    too_old = job is None or job.created_at < clock.now() - STUCK_AFTER
    if state in ("failed", "stopped", "canceled", "missing") or (state is None and too_old):
        reason = job.error if job is not None and job.error else _("The build stopped; press Build again.")
        # Guarded by status: the worker may have swapped the list in since we read the campaign
        # (this UPDATE then waits for its commit and matches nothing), and "ready" must win.
        failed = (await db.execute(
            update(Campaign).where(Campaign.id == campaign.id, Campaign.status == "building")
            .values(status="failed", error=reason).returning(Campaign.id)
            .execution_options(synchronize_session=False))).first()
        if failed is not None and job is not None:
            await db.execute(update(Job).where(Job.id == job.id, Job.status.in_(("queued", "running")))
                             .values(status="failed", error=reason).execution_options(synchronize_session=False))
            await db.refresh(job)
        await db.refresh(campaign)


async def do_cancel(db: AsyncSession, tenant: Tenant, campaign: Campaign) -> None:
    from rq.command import send_stop_job_command

    job = await latest_job(db, campaign.id)
    if job is None or job.status not in ("queued", "running"):
        return
    settings = get_settings()
    rq_id = rq_job_id(settings, tenant.schema_name, KIND, job.id)

    def stop() -> None:
        rq_job = get_queue(settings).fetch_job(rq_id)
        if rq_job is None:
            return
        if rq_job.get_status() == "started":
            send_stop_job_command(sync_redis(settings.redis_url), rq_id)
        else:
            rq_job.cancel()

    await asyncio.to_thread(stop)
    job.status, job.error = "cancelled", "cancelled by the user"
    campaign.status = "ready" if campaign.built_at else "draft"
    campaign.error = None
