"""The platform's hourly maintenance (RQ): destroy companies past their grace period, refresh
the usage figures of companies active since they were last measured, and delete company exports
whose 24-hour link has expired."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from saas.config import Settings, get_settings
from saas.core import clock


def maintenance() -> dict:
    from saas.admin.service import purge_due
    from saas.admin.stats import refresh_stale
    from saas.core.db import Database
    from saas.tenants.exports import remove_expired

    async def main() -> dict:
        db = Database(get_settings().database_url, pool_size=2)
        try:
            destroyed = await purge_due(db, actor="job:maintenance")
            measured = await refresh_stale(db)
            expired = await remove_expired(db)
        finally:
            await db.dispose()
        return {"destroyed": [r["slug"] for r in destroyed], "measured": measured, "exports_removed": expired}

    return asyncio.run(main())


def ensure_maintenance(settings: Settings | None = None) -> None:
    """Schedule the next hour's run once (a unique id per hour; any worker may call this)."""
    from saas.jobs import schedule_once

    settings = settings or get_settings()
    run_at = (clock.now() + timedelta(hours=1)).replace(minute=7, second=0, microsecond=0)
    schedule_once(settings, run_at, "saas.admin.jobs.maintenance_and_reschedule",
                  f"{settings.redis_prefix}-platform-{run_at:%Y%m%d%H}")


def maintenance_and_reschedule() -> dict:
    result = maintenance()
    ensure_maintenance()
    return result
