"""Usage figures per company, kept in `shared.tenants.stats` (counting 10,000 schemas per page view
would not do). Refreshed by the hourly maintenance job for the companies active since their last
figures, when the console's company list is opened (a queued job, see `needs_refresh`), and on
demand from the console."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.engine import is_citus
from saas.core.db import Database, check_schema, qualified
from saas.accounts.models import Membership
from saas.core.models import Tenant
from saas.core.clock import now

STORAGE = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
           "WHERE c.relnamespace = to_regnamespace(:s) AND c.relkind IN ('r', 'm')")
# On Citus the coordinator holds empty shells: the size is the shards' on the company's worker.
CITUS_STORAGE = ("SELECT coalesce(sum(citus_total_relation_size(p.logicalrelid)), 0) FROM pg_dist_partition p "
                 "JOIN pg_class c ON c.oid = p.logicalrelid WHERE c.relnamespace = to_regnamespace(:s)")


async def measure(db: AsyncSession, tenant: Tenant) -> dict[str, Any]:
    schema = check_schema(tenant.schema_name)
    users = await db.scalar(select(func.count()).select_from(Membership).where(Membership.tenant_id == tenant.id))
    if await db.scalar(text("SELECT to_regclass(:t) IS NULL"), {"t": qualified(schema, "clients")}):
        return {"users": int(users), "missing_schema": True}
    counts = (await db.execute(text(
        f"SELECT (SELECT count(*) FROM {qualified(schema, 'clients')} WHERE erased_at IS NULL), "  # noqa: S608 - checked schema
        f"(SELECT count(*) FROM {qualified(schema, 'operations')}), "
        f"(SELECT count(*) FROM {qualified(schema, 'campaigns')})"))).one()
    storage = await db.scalar(text(CITUS_STORAGE if await is_citus(await db.connection()) else STORAGE), {"s": schema})
    return {"users": int(users), "clients": int(counts[0]), "operations": int(counts[1]),
            "campaigns": int(counts[2]), "storage_bytes": int(storage)}


async def refresh(db: AsyncSession, tenant: Tenant) -> dict[str, Any]:
    tenant.stats, tenant.stats_at = await measure(db, tenant), now()
    await db.flush()
    return tenant.stats


FRESH = timedelta(minutes=3)  # figures younger than this are not measured again on opening the console
# `last_activity_at` moves at most once per five minutes (accounts.service.touch_tenant): a company
# touched up to five minutes before its figures may have written after them.
TOUCH_STEP = timedelta(minutes=5)


def needs_refresh(at: datetime, fresh: timedelta = FRESH) -> ColumnElement[bool]:
    """Companies whose figures may be out of date at `at`: never measured, or measured more than
    `fresh` ago and active since (within the activity stamp's step)."""
    return and_(Tenant.status != "deleted", or_(
        Tenant.stats_at.is_(None),
        and_(Tenant.stats_at < at - fresh, Tenant.last_activity_at > Tenant.stats_at - TOUCH_STEP)))


def is_stale(tenant: Tenant, at: datetime, fresh: timedelta = FRESH) -> bool:
    """`needs_refresh` for one company in hand."""
    if tenant.status == "deleted":
        return False
    if tenant.stats_at is None:
        return True
    active = tenant.last_activity_at is not None and tenant.last_activity_at > tenant.stats_at - TOUCH_STEP
    return tenant.stats_at < at - fresh and active


async def stale_count(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(Tenant).where(needs_refresh(now()))) or 0)


async def refresh_stale(database: Database, limit: int = 2000, fresh: timedelta = FRESH) -> int:
    """Refresh the companies whose figures may be out of date: each in its own transaction."""
    async with database.session() as s:
        ids = list(await s.scalars(
            select(Tenant.id).where(needs_refresh(now(), fresh))
            .order_by(Tenant.stats_at.asc().nulls_first()).limit(limit)))
    for tenant_id in ids:
        async with database.session() as s:
            tenant = await s.get(Tenant, tenant_id)
            if tenant is not None:
                await refresh(s, tenant)
    return len(ids)


async def platform_totals(db: AsyncSession) -> dict[str, Any]:
    """Platform usage: companies and their cached figures, demo companies left out (counted apart).
    `as_of`: the figures hold as of then (the oldest measurement of a company active since it, or
    else the newest measurement); None when nothing was measured yet."""
    row = (await db.execute(text("""
        SELECT count(*) FILTER (WHERE NOT is_demo),
               coalesce(sum((stats->>'clients')::bigint) FILTER (WHERE NOT is_demo), 0),
               coalesce(sum((stats->>'operations')::bigint) FILTER (WHERE NOT is_demo), 0),
               coalesce(sum((stats->>'storage_bytes')::bigint) FILTER (WHERE NOT is_demo), 0),
               count(*) FILTER (WHERE is_demo)
        FROM shared.tenants WHERE status <> 'deleted'"""))).one()
    totals: dict[str, Any] = dict(zip(("companies", "clients", "operations", "storage_bytes", "demo_companies"),
                                      (int(v) for v in row), strict=True))
    changed = await db.scalar(select(func.min(Tenant.stats_at)).where(
        Tenant.status != "deleted", Tenant.last_activity_at > Tenant.stats_at - TOUCH_STEP))
    totals["as_of"] = changed or await db.scalar(select(func.max(Tenant.stats_at)).where(Tenant.status != "deleted"))
    return totals
