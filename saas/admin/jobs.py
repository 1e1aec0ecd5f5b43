"""The platform's hourly maintenance (RQ): destroy companies past their grace period, refresh
the usage figures of companies active since they were last measured, and delete company exports
whose 24-hour link has expired, and expire import files and undo data past each company's time
(saas/clients/imports/retention.py). Also the refill of the spare company schemas (saas/admin/spares.py):
queued after each signup that took one, and every ten minutes."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from saas.core.config import get_settings
from saas.core.jobs import periodic


def _next_hour(now: datetime) -> datetime:
    return (now + timedelta(hours=1)).replace(minute=7, second=0, microsecond=0)


@periodic("platform", _next_hour, "%Y%m%d%H")
def maintenance() -> dict:
    from saas.admin.service import purge_due
    from saas.admin.stats import refresh_stale
    from saas.core.db import Database
    from saas.backup.service import remove_expired
    from saas.clients.imports.retention import sweep_all

    async def main() -> dict:
        db = Database(get_settings().database_url, pool_size=2)
        try:
            destroyed = await purge_due(db, actor="job:maintenance")
            measured = await refresh_stale(db)
            expired = await remove_expired(db)
            imports_expired = await sweep_all(db)
        finally:
            await db.dispose()
        return {"destroyed": [r["slug"] for r in destroyed], "measured": measured, "exports_removed": expired,
                "imports_expired": imports_expired}

    return asyncio.run(main())


def refresh_usage() -> int:
    """Measure the companies whose console figures may be out of date (queued when the console's
    company list is opened; saas/admin/stats.py says which)."""
    from saas.admin.stats import refresh_stale
    from saas.core.db import Database

    async def main() -> int:
        db = Database(get_settings().database_url, pool_size=2)
        try:
            return await refresh_stale(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _next_ten_minutes(now: datetime) -> datetime:
    return (now + timedelta(minutes=10)).replace(second=0, microsecond=0)


def refill_spares() -> int:
    """Top the pool of spare company schemas up (queued after each signup that took one)."""
    from saas.admin.spares import refill
    from saas.core.db import Database

    async def main() -> int:
        db = Database(get_settings().database_url, pool_size=2)
        try:
            return await refill(db.engine)
        finally:
            await db.dispose()

    return asyncio.run(main())


@periodic("spares", _next_ten_minutes, "%Y%m%d%H%M")
def refill_spares_periodic() -> int:
    """The same every ten minutes: catches up when a queued refill was lost (Redis down at signup)."""
    return refill_spares()
