"""RQ entry points of the clients domain. They receive ids only and re-check everything."""
from __future__ import annotations

import asyncio

from sqlalchemy import update

from saas.clients.importing import ImportFileError
from saas.clients.imports import Progress, run_import
from saas.clients.models import Import
from saas.config import get_settings
from saas.core import clock
from saas.jobs import enqueue, rq_job_id, run_tenant_job
from saas.tenants.models import Job, Tenant


class RejectedRows(Exception):
    """All-or-nothing mode met bad rows: everything was rolled back."""


def import_file(tenant_id: int, import_id: int, job_id: int) -> dict:
    async def body(db, tenant: Tenant, job: Job) -> dict:  # noqa: ANN001
        schema = tenant.schema_name
        async with db.session(schema) as s:
            imp = await s.get(Import, import_id)
            if imp is None or imp.status not in ("queued", "running"):
                return {"skipped": "import is not waiting"}
            imp.status = "running"
        try:
            async with db.session(schema) as s:
                imp = await s.get(Import, import_id)
                counts = await run_import(s, imp, progress=Progress(lambda: db.session(schema), job.id))
                if imp.options.get("mode") == "all" and counts["rejected"]:
                    rejected = imp.rejected
                    raise RejectedRows(counts["rejected"], rejected)
                imp.status, imp.finished_at, imp.payload = "done", clock.now(), None
        except RejectedRows as exc:
            n, rejected = exc.args
            async with db.session(schema) as s:
                await s.execute(update(Import).where(Import.id == import_id).values(
                    status="failed", rejected_count=n, rejected=rejected, finished_at=clock.now(),
                    error=f"{n} row(s) rejected; nothing was imported (all-or-nothing mode)"))
            return {"rejected": n}
        except ImportFileError as exc:  # a problem deep in the file: the user's to fix, not ours
            async with db.session(schema) as s:
                await s.execute(update(Import).where(Import.id == import_id).values(
                    status="failed", error=str(exc)[:500], finished_at=clock.now()))
            return {"failed": str(exc)}
        except Exception as exc:
            async with db.session(schema) as s:
                await s.execute(update(Import).where(Import.id == import_id).values(
                    status="failed", error=f"{type(exc).__name__}: {exc}"[:500], finished_at=clock.now()))
            raise
        from saas.clients import events

        await events.import_finished(db, tenant)  # analytics queues a score refresh
        return counts

    return run_tenant_job(tenant_id, job_id, body)


async def do_start_import(db, tenant: Tenant, imp: Import, actor: str) -> Job:  # noqa: ANN001
    """Queue the import. The rows are committed before the job can see them; if the queue is
    down, everything is put back as it was and QueueUnavailable is raised."""
    from saas.jobs import QueueUnavailable, sync_redis

    settings = get_settings()
    try:
        await asyncio.to_thread(sync_redis(settings.redis_url).ping)
    except Exception as exc:  # noqa: BLE001 - any failure: the queue is unavailable
        raise QueueUnavailable(type(exc).__name__) from exc
    job = Job(kind="import", object_id=imp.id, created_by=None, total=imp.total_rows)
    db.add(job)
    imp.status = "queued"
    await db.flush()
    await db.commit()
    try:
        await asyncio.to_thread(
            enqueue, settings, "saas.clients.jobs.import_file", tenant.id, imp.id, job.id,
            job_id=rq_job_id(settings, tenant.schema_name, "import", imp.id),
        )
    except QueueUnavailable:
        imp.status = "uploaded"
        job.status, job.error = "failed", "queue unavailable"
        await db.commit()
        raise
    return job
