"""The import's RQ entry point and its start. It receives ids only and re-checks everything."""
from __future__ import annotations

from sqlalchemy import update

from saas.clients.imports.reader import ImportFileError
from saas.clients.imports.service import Progress, run_import
from saas.clients.models import Import
from saas.core import clock
from saas.core.config import get_settings
from saas.core.jobs import check_queue, run_tenant_job, start_job
from saas.core.models import Job, Tenant


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
    await check_queue(get_settings())  # before the import changes state
    imp.status = "queued"

    def undo() -> None:
        imp.status = "uploaded"

    return await start_job(db, tenant, Job(kind="import", object_id=imp.id, created_by=None, total=imp.total_rows),
                           import_file, imp.id, key=imp.id, undo=undo)
