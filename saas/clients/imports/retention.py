"""How long an import's stored file and undo data are kept: a company setting (default 30 days
after the upload), swept by the hourly platform maintenance.

Past that time an import keeps its counts and its rejected rows' line numbers and reasons; the
file, its sample, the rejected rows' cells and the undo snapshots go, and the undo button says why.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, null, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients.models import Import, ImportUndo
from saas.core import clock
from saas.core.errors import FormError
from saas.core.i18n import _, ngettext_

DEFAULT_DAYS = 30
MAX_DAYS = 365
KEY = "privacy"  # a row of the company's `settings` table: {"import_retention_days": n}
BUSY = ("queued", "running")  # an import being applied keeps its file until it ends


async def retention_days(db: AsyncSession) -> int:
    value = await db.scalar(text("SELECT value FROM settings WHERE key = :k"), {"k": KEY})
    days = (value or {}).get("import_retention_days")
    return days if isinstance(days, int) and 1 <= days <= MAX_DAYS else DEFAULT_DAYS


def check_days(raw: Any) -> int:
    try:
        days = int(str(raw).strip())
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise FormError({"import_retention_days": _("Enter a whole number of days from 1 to %(n)s.", n=MAX_DAYS)})
    return days


async def do_set_retention(db: AsyncSession, raw: Any, actor: str) -> int:
    """Save the setting; files already past the new time go at the next hourly sweep."""
    from saas.clients.service import audit

    days = check_days(raw)
    before = await retention_days(db)
    await db.execute(text(
        "INSERT INTO settings (key, value, updated_at) VALUES (:k, CAST(:v AS jsonb), :now) "
        "ON CONFLICT (key) DO UPDATE SET value = settings.value || EXCLUDED.value, updated_at = EXCLUDED.updated_at"),
        {"k": KEY, "v": f'{{"import_retention_days": {days}}}', "now": clock.now()})
    if days != before:
        await audit(db, actor, "company.retention_changed", "company", None, before=before, after=days)
    return days


def expires_at(imp: Import, days: int) -> datetime:
    return imp.created_at + timedelta(days=days)


async def sweep(db: AsyncSession, now: datetime | None = None) -> int:
    """Expire this company's imports older than its retention time (the session is bound);
    returns how many. Idempotent: an expired import is not touched again."""
    days = await retention_days(db)
    cutoff = (now or clock.now()) - timedelta(days=days)
    due = and_(Import.expired_at.is_(None), Import.created_at < cutoff, Import.status.not_in(BUSY))
    ids = list(await db.scalars(select(Import.id).where(due)))
    if not ids:
        return 0
    await db.execute(delete(ImportUndo).where(ImportUndo.import_id.in_(ids)))
    # Rejected rows keep their line and reason (the report stays readable); their cells go.
    stripped = text("(SELECT coalesce(jsonb_agg(jsonb_set(r, '{values}', '{}'::jsonb) ORDER BY ord), "
                    "'[]'::jsonb) "
                    "FROM jsonb_array_elements(CASE WHEN jsonb_typeof(imports.rejected) = 'array' "
                    "THEN imports.rejected ELSE '[]'::jsonb END) WITH ORDINALITY AS e(r, ord))")
    await db.execute(update(Import).where(Import.id.in_(ids)).values(
        # expired_at: when the time ran out (the sweep follows within the hour), which also says
        # how many days were kept.
        payload=None, sample=null(), rejected=stripped, expired_at=Import.created_at + timedelta(days=days),
        file_removed=case((Import.payload.is_not(None), "expired"), else_=Import.file_removed))
        .execution_options(synchronize_session=False))
    return len(ids)


def undo_gone_message(imp: Import) -> str:
    """Why an import can no longer be undone (shown instead of the button, and by the API)."""
    days = round((imp.expired_at - imp.created_at).total_seconds() / 86400) if imp.expired_at else DEFAULT_DAYS
    return ngettext_("This import can no longer be undone: its undo data and stored file were deleted on %(date)s, "
                     "as the company's personal data settings ask (kept %(num)s day after the upload).",
                     "This import can no longer be undone: its undo data and stored file were deleted on %(date)s, "
                     "as the company's personal data settings ask (kept %(num)s days after the upload).",
                     days, date=imp.expired_at.date().isoformat() if imp.expired_at else "")


async def sweep_all(database: Any, now: datetime | None = None) -> int:
    """The hourly maintenance's pass over every company not deleted (suspended ones too: retention
    does not pause); one transaction per company, a failing one does not stop the others."""
    import logging

    from saas.core.db import check_schema
    from saas.core.models import Tenant

    async with database.session() as s:
        schemas = list(await s.scalars(select(Tenant.schema_name).where(Tenant.deleted_at.is_(None))
                                       .order_by(Tenant.id)))
    expired = 0
    for schema in schemas:
        try:
            async with database.session(check_schema(schema)) as s:
                expired += await sweep(s, now)
        except Exception:  # e.g. a schema not migrated yet; the next hour retries
            logging.getLogger(__name__).exception("import retention sweep failed for %s", schema)
    return expired
