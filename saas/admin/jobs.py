"""The platform's hourly maintenance (RQ): destroy companies past their grace period, refresh
the usage figures of companies active since they were last measured, and delete company exports
whose 24-hour link has expired."""
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
