"""Queue access: enqueue, job status, and the worker entry.

RQ carries only ids. A job's durable state is a row in its tenant's `jobs` table; the RQ job id is
derived from it (`<prefix>-<schema>-<kind>-<id>`), so enqueuing twice is refused (`unique`) and a
job never runs twice at once for the same object. Jobs re-check the tenant before doing anything.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from sqlalchemy import select, update

from saas.config import Settings, get_settings
from saas.db import Database
from saas.tenants.models import Job, Tenant

DEFAULT_QUEUE = "default"
QUEUES = (DEFAULT_QUEUE,)


class QueueUnavailable(RuntimeError):
    """Redis is down: the caller says "the queue is unavailable, try again" and changes nothing."""


def queue_name(settings: Settings, name: str = DEFAULT_QUEUE) -> str:
    return f"{settings.redis_prefix}-{name}"


@functools.cache
def sync_redis(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def get_queue(settings: Settings | None = None, name: str = DEFAULT_QUEUE) -> Queue:
    settings = settings or get_settings()
    return Queue(queue_name(settings, name), connection=sync_redis(settings.redis_url))


def rq_job_id(settings: Settings, schema: str, kind: str, object_id: int) -> str:
    return f"{settings.redis_prefix}-{schema}-{kind}-{object_id}"


def enqueue(settings: Settings, func: str, *args: Any, job_id: str, timeout: int = 3600, queue: str = DEFAULT_QUEUE,
            **kwargs: Any) -> None:
    """Enqueue once. Raises QueueUnavailable when Redis is down."""
    try:
        get_queue(settings, queue).enqueue(
            func, *args, job_id=job_id, unique=True, job_timeout=timeout, retry=Retry(max=2, interval=[5, 30]),
            result_ttl=3600, failure_ttl=7 * 86400, **kwargs,
        )
    except DuplicateJobError:
        return
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(str(type(exc).__name__)) from exc


# ---- inside the worker -------------------------------------------------------------------


def run_tenant_job(tenant_id: int, job_row_id: int, body: Callable[[Database, Tenant, Job], Awaitable[Any]]) -> Any:
    """Run `body` for one tenant's job row: re-check the tenant, track status, record failures."""

    async def main() -> Any:
        settings = get_settings()
        db = Database(settings.database_url, pool_size=2, max_overflow=2)
        try:
            async with db.session() as s:
                tenant = await s.get(Tenant, tenant_id)
            if tenant is None or tenant.status != "active":
                return {"skipped": "tenant is not active"}
            from saas.web.i18n import set_locale

            set_locale(tenant.locale)  # messages a job stores (rejected rows, errors) read in the company's language
            async with db.session(tenant.schema_name) as s:
                job = await s.get(Job, job_row_id)
                if job is None or job.status in ("done", "cancelled"):
                    return {"skipped": "nothing to do"}
                job.status, job.started_at, job.error = "running", datetime.now(UTC), None
            try:
                result = await body(db, tenant, job)
            except Exception as exc:
                async with db.session(tenant.schema_name) as s:
                    await s.execute(update(Job).where(Job.id == job_row_id).values(
                        status="failed", error=f"{type(exc).__name__}: {exc}"[:500], finished_at=datetime.now(UTC)))
                raise
            async with db.session(tenant.schema_name) as s:
                current = await s.scalar(select(Job.status).where(Job.id == job_row_id))
                if current == "running":
                    await s.execute(update(Job).where(Job.id == job_row_id).values(
                        status="done", finished_at=datetime.now(UTC)))
            return result
        finally:
            await db.dispose()

    return asyncio.run(main())


def run_worker(settings: Settings, burst: bool = False, queues: list[str] | None = None) -> None:
    """One RQ worker. RQ_JOB_MONITORING_INTERVAL, RQ_MAINTENANCE_INTERVAL and RQ_WORKER_TTL (seconds)
    tune how soon a killed worker's job counts as abandoned and is retried by a surviving worker
    (defaults 30, 600 and 420: about 90 s to notice, checked when an idle worker wakes up)."""
    import os

    from rq import Worker

    names = [queue_name(settings, n) for n in (queues or QUEUES)]
    worker = Worker(names, connection=sync_redis(settings.redis_url),
                    job_monitoring_interval=int(os.environ.get("RQ_JOB_MONITORING_INTERVAL", "30")),
                    maintenance_interval=int(os.environ.get("RQ_MAINTENANCE_INTERVAL", "600")),
                    worker_ttl=int(os.environ.get("RQ_WORKER_TTL", "420")))
    worker.work(with_scheduler=True, burst=burst, logging_level="INFO")


def schedule_once(settings: Settings, run_at: datetime, func: str, job_id: str) -> None:
    """A periodic job's next run, scheduled once: every worker calls this at start, the unique id
    (per hour or per date) makes the second call a no-op, and the job reschedules itself."""
    try:
        get_queue(settings).enqueue_at(run_at, func, job_id=job_id, unique=True, job_timeout=3600)
    except DuplicateJobError:
        pass
