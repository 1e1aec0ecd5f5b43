"""The import's RQ entry point and its start. It receives ids only and re-checks everything."""
from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import undefer

from saas.clients.imports.reader import ImportFileError, Survey, read_table
from saas.clients.imports.service import Progress, apply_survey, check_upload, default_options, run_import
from saas.clients.models import Import
from saas.core import clock
from saas.core.config import get_settings
from saas.core.errors import FormError
from saas.core.i18n import _
from saas.core.jobs import check_queue, failure_text, run_tenant_job, start_job
from saas.core.models import Job, Tenant


log = logging.getLogger(__name__)


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
                imp = await s.get(Import, import_id, options=[undefer(Import.payload)])
                counts = await run_import(s, imp, progress=Progress(lambda: db.session(schema), job.id))
                if imp.options.get("mode") == "all" and counts["rejected"]:
                    rejected = imp.rejected
                    raise RejectedRows(counts["rejected"], rejected)
                imp.status, imp.finished_at, imp.payload, imp.sample = "done", clock.now(), None, None
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
                    status="failed", error=failure_text(exc), finished_at=clock.now()))
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


# ---- reading an uploaded file (the pages' upload) --------------------------------------------

READ_JOB = "import_read"


async def do_store_upload(db, tenant: Tenant, *, data: bytes, filename: str, kind: str,  # noqa: ANN001
                          actor: str) -> Import:
    """The pages' upload: store the bytes and queue their reading; the request parses nothing (a
    100k-row XLSX takes seconds to read, and the web process serves everyone meanwhile). The
    import stays "uploaded" with no headers until the worker has read it (`is_reading`)."""
    check_upload(data, kind)
    await check_queue(get_settings())  # before anything is stored
    imp = Import(kind=kind, status="uploaded", filename=filename[:200] or "upload", payload=data, headers=[],
                 mapping={}, options=default_options(kind), total_rows=0, created_by=actor)
    db.add(imp)
    await db.flush()

    def undo() -> None:  # the queue went away meanwhile: nothing will ever read the file
        imp.status, imp.error, imp.payload = "failed", _("The queue is unavailable. Upload the file again."), None

    await start_job(db, tenant, Job(kind=READ_JOB, object_id=imp.id, created_by=None), read_file, imp.id,
                    key=imp.id, undo=undo)
    return imp


def is_reading(imp: Import) -> bool:
    """Uploaded, not yet read by the worker (an import that was read always has headers)."""
    return imp.status == "uploaded" and not imp.headers


def read_file(tenant_id: int, import_id: int, job_id: int) -> dict:
    """Read the stored file once: headers, guessed mapping, the row count (with progress) and the
    first rows for the dry run. A file that cannot be imported fails the import with the reason."""
    async def body(db, tenant: Tenant, job: Job) -> dict:  # noqa: ANN001
        schema = tenant.schema_name
        async with db.session(schema) as s:
            row = (await s.execute(select(Import.payload, Import.filename).where(
                Import.id == import_id, Import.status == "uploaded"))).first()
        if row is None or row.payload is None:
            return {"skipped": "import is not waiting to be read"}
        progress = Progress(lambda: db.session(schema), job.id)
        try:
            found = Survey(read_table(row.payload, row.filename))
            for count in found.walk():
                await progress(count, 0, "reading")
            async with db.session(schema) as s:
                imp = await s.get(Import, import_id)
                await apply_survey(s, imp, found)
                from saas.clients import service

                await service.audit(s, imp.created_by or "system", "import.uploaded", "import", imp.id,
                                    kind=imp.kind, rows=found.total)
        except (ImportFileError, FormError) as exc:  # the user's file to fix, said in the company's language
            message = _(str(exc)) if isinstance(exc, ImportFileError) else " ".join(map(str, exc.errors.values()))
            async with db.session(schema) as s:
                await s.execute(update(Import).where(Import.id == import_id).values(
                    status="failed", error=message[:500], finished_at=clock.now(), payload=None))
            return {"failed": "unreadable file"}
        # The mapping screen is open now; the same job goes on to try every row with the guessed mapping.
        await _check(db, schema, import_id, job.id)
        return {"rows": found.total}

    return run_tenant_job(tenant_id, job_id, body)


# ---- the dry run over every row, after the reading and after each new mapping -----------------


async def _check(db, schema: str, import_id: int, job_id: int) -> None:  # noqa: ANN001
    from saas.clients.imports.dryrun import dry_run

    try:
        summary = await dry_run(db, schema, import_id, Progress(lambda: db.session(schema), job_id))
    except Exception:  # the check is advice: the file stays read, and the import can still be run
        log.exception("the dry run of import %s failed", import_id)
        result: dict = {"check_failed": True}
    else:
        result = {"check": summary} if summary is not None else {}
    async with db.session(schema) as s:
        await s.execute(update(Job).where(Job.id == job_id).values(result=result))


def check_file(tenant_id: int, import_id: int, job_id: int) -> dict:
    """The dry run again, for the mapping the page has just saved; a check already overtaken by a
    newer one (the user changed another column meanwhile) leaves the work to it."""
    from saas.clients.imports.dryrun import CHECK_JOB

    async def body(db, tenant: Tenant, job: Job) -> dict:  # noqa: ANN001
        schema = tenant.schema_name
        async with db.session(schema) as s:
            newer = await s.scalar(select(Job.id).where(Job.kind == CHECK_JOB, Job.object_id == import_id,
                                                        Job.id > job.id).limit(1))
        if newer is not None:
            return {"skipped": "a newer check follows"}
        await _check(db, schema, import_id, job.id)
        return {"checked": import_id}

    return run_tenant_job(tenant_id, job_id, body)


async def do_queue_check(db, tenant: Tenant, imp: Import) -> Job:  # noqa: ANN001
    """Queue a dry run of the import's current mapping (committed with it, so the worker sees it)."""
    from saas.clients.imports.dryrun import CHECK_JOB

    return await start_job(db, tenant, Job(kind=CHECK_JOB, object_id=imp.id, created_by=None,
                                           total=imp.total_rows), check_file, imp.id)
