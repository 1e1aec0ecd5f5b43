"""System health for the console: queues and workers from RQ's registries, failed jobs, and the
tenant schema versions. RQ's client is synchronous: the web calls these through a thread."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.config import Settings
from saas.core.jobs import QUEUES, queue_name, sync_redis
from saas.admin.migrate import head
from saas.core.models import Tenant

FAILED_SHOWN = 50


@dataclass
class FailedJob:
    id: str
    queue: str
    func: str
    args: str
    ended_at: datetime | None
    error: str


def _queue(settings: Settings, name: str) -> Queue:
    return Queue(queue_name(settings, name), connection=sync_redis(settings.redis_url))


def _error(job: Job) -> str:
    """The end of the traceback, from the latest result (RQ 2 keeps it there)."""
    try:
        result = job.latest_result()
        text = (result.exc_string if result is not None else "") or job._exc_info or ""  # noqa: SLF001 - exc_info without its deprecation
    except Exception:  # noqa: BLE001 - an unreadable result is shown as such
        text = ""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-6:]) if lines else "?"


def queues(settings: Settings) -> dict[str, Any]:
    """Depth per queue, the live workers on our queues and the latest failed jobs."""
    redis = sync_redis(settings.redis_url)
    rows, failed = [], []
    ours = {queue_name(settings, n) for n in QUEUES}
    for name in QUEUES:
        q = _queue(settings, name)
        rows.append({"name": name, "queued": q.count, "started": q.started_job_registry.count,
                     "scheduled": q.scheduled_job_registry.count, "failed": q.failed_job_registry.count})
        ids = q.failed_job_registry.get_job_ids(0, FAILED_SHOWN - 1, desc=True)
        for job in Job.fetch_many(ids, connection=redis):
            if job is not None:
                failed.append(FailedJob(job.id, name, job.func_name or "?", _args(job),
                                        getattr(job, "ended_at", None), _error(job)))
    workers = [{"name": w.name, "state": w.get_state(), "queues": [n.removeprefix(settings.redis_prefix + "-")
                                                                   for n in w.queue_names()],
                "heartbeat": getattr(w, "last_heartbeat", None), "job": w.get_current_job_id(),
                "pid": getattr(w, "pid", None)}
               for w in Worker.all(connection=redis) if ours & set(w.queue_names())]
    return {"queues": rows, "workers": workers, "failed": failed}


def _args(job: Job) -> str:
    try:
        return ", ".join(repr(a) for a in job.args)[:120]
    except Exception:  # noqa: BLE001 - undecodable arguments
        return "?"


def retry(settings: Settings, queue: str, job_id: str) -> bool:
    """Put a failed job back on its queue. False when it is not in the failed registry any more."""
    if queue not in QUEUES:
        return False
    registry = _queue(settings, queue).failed_job_registry
    if job_id not in registry.get_job_ids():
        return False
    registry.requeue(job_id)
    return True


async def schema_versions(db: AsyncSession, limit: int = 50) -> dict[str, Any]:
    target = head("tenant")
    counts = (await db.execute(select(Tenant.schema_version, func.count()).where(Tenant.status != "deleted")
                               .group_by(Tenant.schema_version).order_by(func.count().desc()))).all()
    behind = list(await db.scalars(select(Tenant).where(Tenant.status != "deleted",
                                                        Tenant.schema_version.is_distinct_from(target))
                                   .order_by(Tenant.id).limit(limit)))
    return {"head": target, "counts": [(v, n) for v, n in counts], "behind": behind,
            "behind_total": sum(n for v, n in counts if v != target)}
