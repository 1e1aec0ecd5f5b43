"""Usage figures per company, kept in `shared.tenants.stats` (counting 10,000 schemas per page view
would not do). Refreshed by the hourly maintenance job for the companies active since their last
figures, and on demand from the console."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, text
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


async def refresh_stale(database: Database, limit: int = 2000) -> int:
    """Refresh the companies never measured or active since they were: each in its own transaction."""
    async with database.session() as s:
        ids = list(await s.scalars(
            select(Tenant.id).where(Tenant.status != "deleted", or_(
                Tenant.stats_at.is_(None), Tenant.last_activity_at > Tenant.stats_at))
            .order_by(Tenant.stats_at.asc().nulls_first()).limit(limit)))
    for tenant_id in ids:
        async with database.session() as s:
            tenant = await s.get(Tenant, tenant_id)
            if tenant is not None:
                await refresh(s, tenant)
    return len(ids)


async def platform_totals(db: AsyncSession) -> dict[str, int]:
    """Platform usage: companies and their cached figures, demo companies left out (counted apart)."""
    row = (await db.execute(text("""
        SELECT count(*) FILTER (WHERE NOT is_demo),
               coalesce(sum((stats->>'clients')::bigint) FILTER (WHERE NOT is_demo), 0),
               coalesce(sum((stats->>'operations')::bigint) FILTER (WHERE NOT is_demo), 0),
               coalesce(sum((stats->>'storage_bytes')::bigint) FILTER (WHERE NOT is_demo), 0),
               count(*) FILTER (WHERE is_demo)
        FROM shared.tenants WHERE status <> 'deleted'"""))).one()
    return dict(zip(("companies", "clients", "operations", "storage_bytes", "demo_companies"),
                    (int(v) for v in row), strict=True))
