"""The dry run over every row: the import itself, run in a transaction that is rolled back.

The counts are then the run's own (matching, the file's repeated clients, the plan's limit), not a
second set of rules that could drift from it. It runs in the worker, after the file is read and again
whenever the mapping changes; the page follows it with a progress bar and shows what it found.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from saas.clients.imports.reader import ImportFileError
from saas.clients.imports.service import Progress, run_import
from saas.clients.models import Import
from saas.core.i18n import _
from saas.core.models import Job

REASONS_SHOWN = 5
CHECK_JOB = "import_check"
CHECKING = ("import_read", CHECK_JOB)  # the jobs that leave a dry run in their result


class _RollBack(Exception):
    """Leaves the dry run's transaction with its summary: nothing it wrote stays."""


def choices(imp: Import) -> dict[str, Any]:
    """What a dry run's counts depend on: compared with the import's current choices on the page."""
    return {"mapping": dict(imp.mapping or {}), "options": dict(imp.options or {})}


async def dry_run(db: Any, schema: str, import_id: int, progress: Progress) -> dict[str, Any] | None:
    """Run the import of `import_id` as it is mapped now, roll it back, and say what it would do:
    {"rows", "created", "updated", "skipped", "rejected", "reasons": [{line, reason}], mapping, options}.
    None if the import is no longer waiting for its mapping."""
    try:
        async with db.session(schema) as s:
            imp = await s.get(Import, import_id, options=[undefer(Import.payload)])
            if imp is None or imp.status not in ("uploaded", "failed") or imp.payload is None or not imp.headers:
                return None
            # Detached: the run sets its counts on it, which must not be written (nor lock the row
            # while the page saves a new mapping).
            s.expunge(imp)
            summary = choices(imp)
            try:
                counts = await run_import(s, imp, progress=progress)
            except ImportFileError as exc:  # a bad row deep in the file: said as the run would say it
                summary["error"] = _(str(exc))
            else:
                summary.update(counts, rows=imp.total_rows, reasons=[
                    {"line": r["line"], "reason": r["reason"]} for r in imp.rejected[:REASONS_SHOWN]])
            raise _RollBack(summary)
    except _RollBack as done:
        return done.args[0]


async def latest(db: AsyncSession, imp: Import) -> Job | None:
    """The import's latest job that checks its rows (the reading, or a check after a new mapping)."""
    return await db.scalar(select(Job).where(Job.kind.in_(CHECKING), Job.object_id == imp.id)
                           .order_by(Job.id.desc()).limit(1))


def state(job: Job | None, imp: Import) -> tuple[str, dict[str, Any] | None]:
    """("checking", None) while it runs, ("done", summary) for the current mapping, ("failed", None),
    or ("none", None): nothing to show (no file, or no check yet)."""
    if job is None:
        return "none", None
    summary = (job.result or {}).get("check")
    if summary and summary.get("mapping") == choices(imp)["mapping"] \
            and summary.get("options") == choices(imp)["options"]:
        return "done", summary
    if job.status in ("queued", "running"):
        return "checking", None
    if job.status == "failed" or (job.result or {}).get("check_failed"):
        return "failed", None
    return "none", None
