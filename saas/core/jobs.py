"""Queue access: enqueue, job status, and the worker entry.

RQ carries only ids. A job's durable state is a row in its tenant's `jobs` table; the RQ job id is
derived from it (`<prefix>-<schema>-<kind>-<id>`), so enqueuing twice is refused (`unique`) and a
job never runs twice at once for the same object. Jobs re-check the tenant before doing anything.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import rq
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.config import Settings, get_settings
from saas.core import clock
from saas.core.db import Database
from saas.core.models import Job, Tenant
from saas.core.i18n import lazy

F = TypeVar("F", bound=Callable[..., Any])
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


def rq_status(settings: Settings, rq_id: str) -> str | None:
    """The RQ status of a job on whichever queue it was put ("missing" once Redis forgot it, None
    when Redis is down). Not Queue.fetch_job: that answers None for a job of another queue, and a
    build on a worker started with --queue was then judged missing and marked failed mid-run."""
    try:
        return rq.job.Job.fetch(rq_id, connection=sync_redis(settings.redis_url)).get_status()
    except NoSuchJobError:
        return "missing"
    except (RedisError, OSError):
        return None


def enqueue(settings: Settings, func: str | Callable[..., Any], *args: Any, job_id: str, timeout: int = 3600,
            queue: str = DEFAULT_QUEUE,
            **kwargs: Any) -> None:
    """Enqueue once. Raises QueueUnavailable when Redis is down."""
    try:
        get_queue(settings, queue).enqueue(
            cast(Any, func), *args, job_id=job_id, unique=True, job_timeout=timeout,
            retry=Retry(max=2, interval=[5, 30]), result_ttl=3600, failure_ttl=7 * 86400, **kwargs,
        )
    except DuplicateJobError:
        return
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(str(type(exc).__name__)) from exc


# ---- starting a job: the one lifecycle ------------------------------------------------------


async def check_queue(settings: Settings) -> None:
    """Raise QueueUnavailable unless Redis answers (before anything is written)."""
    try:
        await asyncio.to_thread(sync_redis(settings.redis_url).ping)
    except Exception as exc:  # any failure to reach Redis: the queue is unavailable
        raise QueueUnavailable(type(exc).__name__) from exc


async def start_job(db: AsyncSession, tenant: Tenant, row: Job, func: Callable[..., Any], *args: Any,
                    key: int | None = None, timeout: int = 3600,
                    undo: Callable[[], None] | None = None) -> Job:
    """Queue `func(tenant.id, *args, row.id)` for the job row `row`, the same way for every job
    (a caller that must not change anything while the queue is down calls `check_queue` first):
    commit the row together with whatever the caller changed beside it (so the worker sees it),
    enqueue with a deterministic id (`key`: the object the job is for, default the row), and if the
    queue went down meanwhile mark the row failed, let `undo` put the caller's object back, commit
    and raise QueueUnavailable. RQ names the job by the function's own path."""
    settings = get_settings()
    db.add(row)
    await db.flush()
    await db.commit()
    try:
        await asyncio.to_thread(enqueue, settings, func, tenant.id, *args, row.id,
                                job_id=rq_job_id(settings, tenant.schema_name, row.kind, key or row.id),
                                timeout=timeout)
    except QueueUnavailable:
        row.status, row.error = "failed", "queue unavailable"
        if undo is not None:
            undo()
        await db.commit()
        raise
    return row


# ---- periodic jobs: each run schedules the next ------------------------------------------------


@dataclass(frozen=True)
class Periodic:
    work: Callable[[], Any]
    next_run: Callable[[datetime], datetime]  # from now to the next run
    stamp: str  # strftime of the run time in the unique RQ id: one schedule per hour or per date


PERIODIC: dict[str, Periodic] = {}


def periodic(name: str, next_run: Callable[[datetime], datetime], stamp: str) -> Callable[[F], F]:
    """Register `work` to run periodically under `name` (the worker schedules it at start)."""
    def register(work: F) -> F:
        PERIODIC[name] = Periodic(work, next_run, stamp)
        return work
    return register


def ensure_scheduled(settings: Settings, name: str) -> None:
    """Schedule `name`'s next run once: every worker calls this at start, the unique id makes the
    second call a no-op, and each run schedules the one after it."""
    item = PERIODIC[name]
    run_at = item.next_run(clock.now())
    schedule_once(settings, run_at, run_periodic, f"{settings.redis_prefix}-{name}-{run_at.strftime(item.stamp)}",
                  name)


def run_periodic(name: str) -> Any:
    """The RQ entry of every periodic job: run it, then schedule its next run."""
    result = PERIODIC[name].work()
    ensure_scheduled(get_settings(), name)
    return result


# ---- inside the worker -------------------------------------------------------------------


def failure_text(exc: BaseException) -> str:
    """What a failed job or import stores for people to read: a sentence and the error's class, never
    the exception's own text, which can quote a row's values (a name, a phone) into the database."""
    from saas.core.i18n import _

    return _("The job stopped on an error (%(kind)s). Try again; if it happens again, tell support.",
             kind=type(exc).__name__)[:500]


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
            from saas.core.i18n import set_locale

            set_locale(tenant.locale)  # messages a job stores (rejected rows, errors) read in the company's language
            async with db.session(tenant.schema_name) as s:
                job = await s.get(Job, job_row_id)
                if job is None or job.status in ("done", "cancelled"):
                    return {"skipped": "nothing to do"}
                job.status, job.started_at, job.error = "running", clock.now(), None
            try:
                result = await body(db, tenant, job)
            except Exception as exc:
                async with db.session(tenant.schema_name) as s:
                    await s.execute(update(Job).where(Job.id == job_row_id).values(
                        status="failed", error=failure_text(exc), finished_at=clock.now()))
                raise
            async with db.session(tenant.schema_name) as s:
                current = await s.scalar(select(Job.status).where(Job.id == job_row_id))
                if current == "running":
                    await s.execute(update(Job).where(Job.id == job_row_id).values(
                        status="done", finished_at=clock.now()))
            return result
        finally:
            await db.dispose()

    return asyncio.run(main())


# ---- a job whose retries are spent ----------------------------------------------------------

# What the job's object shows once its job failed for good. Guarded by status, so an object that
# finished meanwhile is never overwritten.
FAILED_OBJECT = {
    "campaign": "UPDATE campaigns SET status = 'failed', error = :error WHERE id = :id AND status = 'building'",
    "import": "UPDATE imports SET status = 'failed', error = :error, finished_at = now() "
              "WHERE id = :id AND status IN ('queued', 'running')",
}


async def do_fail_job(db: Database, tenant_id: int, job_row_id: int, reason: str) -> bool:
    """Mark a queued or running job row (and its object) failed with a reason the user reads."""
    async with db.session() as s:
        tenant = await s.get(Tenant, tenant_id)
    if tenant is None:
        return False
    from saas.core.i18n import _, set_locale

    set_locale(tenant.locale)
    async with db.session(tenant.schema_name) as s:
        row = (await s.execute(
            update(Job).where(Job.id == job_row_id, Job.status.in_(("queued", "running")))
            .values(status="failed", error=_(reason), finished_at=clock.now())
            .returning(Job.kind, Job.object_id))).first()
        if row is None:
            return False
        if row.kind in FAILED_OBJECT and row.object_id is not None:
            await s.execute(text(FAILED_OBJECT[row.kind]), {"id": row.object_id, "error": _(reason)})
    return True


ABANDONED = lazy("The worker running this job stopped, and its retries are spent. Start it again.")


def record_final_failure(job: rq.job.Job, reason: str = ABANDONED) -> None:
    """A tenant job (tenant id first, job row id last) that RQ will not retry again leaves its rows
    failed with a reason, never "running" forever. Runs in the worker, whichever path the failure took."""
    if job.should_retry or not (job.func_name or "").startswith("saas.") or len(job.args) < 2 \
            or not all(isinstance(a, int) for a in job.args):
        return

    async def main() -> None:
        db = Database(get_settings().database_url, pool_size=1, max_overflow=0)
        try:
            await do_fail_job(db, job.args[0], job.args[-1], reason)
        finally:
            await db.dispose()

    try:
        asyncio.run(main())
    except Exception:  # the database may be away too; the page's reconcile still says so
        import logging

        logging.getLogger("saas.core.jobs").exception("could not record the failure of job %s", job.id)


class Worker(rq.Worker):
    """RQ's worker, plus: a killed job's rows end failed once its retries are spent, and the
    heartbeat grace (RQ's fixed 60 s after each check) comes from RQ_HEARTBEAT_GRACE."""

    heartbeat_grace = 60
    # RQ doubles its wait between attempts to reach a lost Redis up to 60 s; capped at 5 s, jobs
    # resume within seconds of Redis coming back, at the cost of a log line every 5 s meanwhile.
    max_connection_wait_time = 5.0

    def get_heartbeat_ttl(self, job: rq.job.Job) -> int:
        return super().get_heartbeat_ttl(job) - 60 + self.heartbeat_grace

    def handle_work_horse_killed(self, job: rq.job.Job, retpid: int, ret_val: int, rusage: Any) -> None:
        record_final_failure(job)  # the horse died (OOM, SIGKILL): no exception handler hears of it


def _on_exception(job: rq.job.Job, exc_type: type, exc_value: BaseException, tb: Any) -> bool:
    """Called for a job that raised, and by the registry cleanup for a job whose worker vanished."""
    if exc_type is rq.exceptions.AbandonedJobError:
        record_final_failure(job)
    return True


def run_worker(settings: Settings, burst: bool = False, queues: list[str] | None = None) -> None:
    """One RQ worker. RQ_JOB_MONITORING_INTERVAL, RQ_MAINTENANCE_INTERVAL, RQ_WORKER_TTL and
    RQ_HEARTBEAT_GRACE (seconds) tune how soon a killed worker's job counts as abandoned and is
    retried by a surviving worker: its heartbeat lapses after monitoring interval + grace, and the
    next maintenance run notices (defaults 30, 60, 420 and 60: within about 2.5 minutes; RQ's own
    maintenance default of 600 s would leave a campaign "building" for up to 12)."""
    import os

    names = [queue_name(settings, n) for n in (queues or QUEUES)]
    worker = Worker(names, connection=sync_redis(settings.redis_url),
                    job_monitoring_interval=int(os.environ.get("RQ_JOB_MONITORING_INTERVAL", "30")),
                    maintenance_interval=int(os.environ.get("RQ_MAINTENANCE_INTERVAL", "60")),
                    worker_ttl=int(os.environ.get("RQ_WORKER_TTL", "420")),
                    exception_handlers=[_on_exception])
    worker.heartbeat_grace = int(os.environ.get("RQ_HEARTBEAT_GRACE", "60"))
    worker.work(with_scheduler=True, burst=burst, logging_level="INFO")


def schedule_once(settings: Settings, run_at: datetime, func: str | Callable[..., Any], job_id: str,
                  *args: Any) -> None:
    """Enqueue `func(*args)` at `run_at` once (a second call with the same id is a no-op)."""
    with contextlib.suppress(DuplicateJobError):
        get_queue(settings).enqueue_at(run_at, func, *args, job_id=job_id, unique=True, job_timeout=3600)
