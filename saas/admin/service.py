"""Platform operations on companies: list, suspend, resume, delete, restore, purge, plan and limits.

Every change writes a `shared.platform_audit` row in the same transaction. The actor is
`admin:<user id>` from the console, `cli:<os user>` from the command line, `job:<name>` from jobs.
"""
from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import BigInteger, DateTime, String, Text, cast, delete, func, literal, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.db import Database, bind, check_schema, ident
from saas.accounts.limits import KINDS, PLANS
from saas.accounts.models import Membership, PlatformAudit, User
from saas.core.models import Tenant
from saas.core.clock import now
from saas.core.errors import FormError
from saas.core.i18n import _

GRACE_DAYS = 30
PAGE = 50
STATUSES = ("active", "suspended", "deleted")
_ACTIVITY = func.coalesce(Tenant.last_activity_at, text("'-infinity'::timestamptz"))
# sort name -> (key expression, descending?, the key's SQL type for the cursor)
SORTS: dict[str, tuple[Any, bool, Any]] = {
    "created": (Tenant.created_at, True, DateTime(timezone=True)),
    "activity": (_ACTIVITY, True, DateTime(timezone=True)),
    "name": (func.lower(Tenant.name), False, Text()),
}


def audit(db: AsyncSession, actor: str, action: str, tenant: Tenant | None = None, **details: Any) -> None:
    if tenant is not None:
        details = {"tenant_id": tenant.id, **details}
    db.add(PlatformAudit(actor=actor, action=action, target=tenant.slug if tenant else None, details=details))


# ---- the list ----------------------------------------------------------------------------------


@dataclass
class TenantPage:
    rows: list[Tenant]
    users: dict[int, int]
    total: int
    next_cursor: str | None
    sort: str
    filters: dict[str, str] = field(default_factory=dict)


def _encode(key: str, tenant_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, tenant_id]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, int] | None:
    try:
        key, tenant_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(key), int(tenant_id)
    except (ValueError, TypeError):
        return None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tenant_filters(q: str = "", status: str = "") -> list[Any]:
    where = []
    if q.strip():
        pattern = f"%{_escape_like(q.strip())}%"
        where.append(or_(Tenant.name.ilike(pattern), Tenant.slug.ilike(pattern)))
    if status in STATUSES:
        where.append(Tenant.status == status)
    return where


async def list_tenants(db: AsyncSession, *, q: str = "", status: str = "", sort: str = "created",
                       after: str | None = None, limit: int = PAGE) -> TenantPage:
    """One page, by keyset on (sort key, id): the same cost on page 1 and page 200."""
    sort = sort if sort in SORTS else "created"
    key, descending, key_type = SORTS[sort]
    where = tenant_filters(q, status)
    total = await db.scalar(select(func.count()).select_from(Tenant).where(*where))
    query = select(Tenant, cast(key, String).label("sort_key")).where(*where)
    cursor = _decode(after) if after else None
    if cursor is not None:
        bound = tuple_(cast(literal(cursor[0], Text()), key_type), literal(cursor[1], BigInteger()))
        query = query.where(tuple_(key, Tenant.id) < bound if descending else tuple_(key, Tenant.id) > bound)
    order = (key.desc(), Tenant.id.desc()) if descending else (key.asc(), Tenant.id.asc())
    rows = (await db.execute(query.order_by(*order).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    tenants = [t for t, _k in rows]
    users = dict((await db.execute(
        select(Membership.tenant_id, func.count()).where(Membership.tenant_id.in_([t.id for t in tenants]))
        .group_by(Membership.tenant_id))).all()) if tenants else {}
    next_cursor = _encode(rows[-1][1], rows[-1][0].id) if more and rows else None
    return TenantPage(tenants, users, int(total or 0), next_cursor, sort, {"q": q, "status": status})


async def access_tenant(db: AsyncSession, tenant_id: int, *, lock: bool = False) -> Tenant:
    tenant = await db.get(Tenant, tenant_id, with_for_update=lock or None)
    if tenant is None:
        raise NotFoundException()
    return tenant


async def get_by_slug(db: AsyncSession, slug: str) -> Tenant:
    tenant = await db.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise FormError({"slug": _("No company with the address %(slug)s.", slug=slug)})
    return tenant


async def members(db: AsyncSession, tenant: Tenant) -> list[tuple[User, str]]:
    rows = await db.execute(select(User, Membership.role).join(Membership, Membership.user_id == User.id)
                            .where(Membership.tenant_id == tenant.id).order_by(Membership.role, User.email))
    return [(u, r) for u, r in rows]


# ---- state changes -----------------------------------------------------------------------------


async def do_suspend(db: AsyncSession, tenant: Tenant, actor: str, reason: str) -> Tenant:
    reason = (reason or "").strip()
    if not reason:
        raise FormError({"reason": _("Give the reason for the suspension (it goes to the platform log).")})
    if tenant.status != "active":
        raise FormError({"form": _("Only an active company can be suspended.")})
    tenant.status, tenant.suspended_at, tenant.suspend_reason = "suspended", now(), reason[:500]
    audit(db, actor, "tenant.suspended", tenant, reason=tenant.suspend_reason)
    await db.flush()
    return tenant


async def do_resume(db: AsyncSession, tenant: Tenant, actor: str) -> Tenant:
    if tenant.status != "suspended":
        raise FormError({"form": _("Only a suspended company can be resumed.")})
    audit(db, actor, "tenant.resumed", tenant, was_suspended_since=tenant.suspended_at.isoformat()
          if tenant.suspended_at else None, reason=tenant.suspend_reason)
    tenant.status, tenant.suspended_at, tenant.suspend_reason = "active", None, None
    await db.flush()
    return tenant


async def do_delete(db: AsyncSession, tenant: Tenant, actor: str, grace_days: int = GRACE_DAYS) -> Tenant:
    """Close the company now; its schema is dropped by the purge after the grace period."""
    if tenant.status == "deleted":
        raise FormError({"form": _("This company is already deleted.")})
    tenant.deleted_at = now()
    tenant.purge_after = tenant.deleted_at + timedelta(days=grace_days)
    before, tenant.status = tenant.status, "deleted"
    audit(db, actor, "tenant.deleted", tenant, previous_status=before, purge_after=tenant.purge_after.isoformat())
    await db.flush()
    return tenant


_restore_lock = asyncio.Lock()


async def do_restore(db: AsyncSession, tenant: Tenant, actor: str) -> Tenant:
    """Undo a deletion within the grace period; a suspended company comes back suspended."""
    if tenant.status != "deleted":
        raise FormError({"form": _("Only a deleted company can be restored.")})
    if tenant.purge_after is not None and tenant.purge_after <= now():
        raise FormError({"form": _("The grace period is over: this company's data is due for destruction.")})
    tenant.status = "suspended" if tenant.suspended_at else "active"
    audit(db, actor, "tenant.restored", tenant, deleted_at=tenant.deleted_at.isoformat() if tenant.deleted_at
          else None, status=tenant.status)
    tenant.deleted_at = tenant.purge_after = None
    await db.flush()
    await _catch_up_schema(db, tenant)
    return tenant


async def _catch_up_schema(db: AsyncSession, tenant: Tenant) -> None:
    """Deleted schemas are skipped by `saas migrate`; bring a restored one to head, in this transaction."""
    from saas.admin.migrate import _upgrade, head

    if tenant.schema_version == head("tenant"):
        return
    async with _restore_lock:  # Alembic's `op` is process-wide: one upgrade at a time in a process
        conn = await db.connection()
        await bind(conn, tenant.schema_name)
        await conn.run_sync(_upgrade, "tenant", tenant.schema_name, None)
        await bind(conn, None)
    tenant.schema_version = head("tenant")


def check_limits(plan: str, raw: dict[str, str]) -> dict[str, int | None]:
    """The overrides typed in the console: blank keeps the plan's value, "none" lifts the limit."""
    if plan not in PLANS:
        raise FormError({"plan": _("Choose a plan from the list.")})
    out: dict[str, int | None] = {}
    errors = {}
    for kind in KINDS:
        value = (raw.get(kind) or "").strip().lower()
        if not value:
            continue
        if value in ("none", "-", "∞"):
            out[kind] = None
        elif value.isdigit() and int(value) <= 10**9:
            out[kind] = int(value)
        else:
            errors[kind] = _("A whole number, or “none” for no limit; blank keeps the plan's value.")
    if errors:
        raise FormError(errors)
    return out


async def do_set_plan(db: AsyncSession, tenant: Tenant, actor: str, plan: str, raw_limits: dict[str, str]) -> Tenant:
    limits = check_limits(plan, raw_limits)
    before = {"plan": tenant.plan, "limits": tenant.limits or {}}
    tenant.plan, tenant.limits = plan, limits
    if before != {"plan": plan, "limits": limits}:
        audit(db, actor, "tenant.plan_changed", tenant, before=before, after={"plan": plan, "limits": limits})
    await db.flush()
    return tenant


# ---- destruction ---------------------------------------------------------------------------------


async def due_for_purge(db: AsyncSession, at: datetime | None = None) -> list[int]:
    due = select(Tenant.id).where(Tenant.status == "deleted", Tenant.purge_after <= (at or now()))
    return list(await db.scalars(due.order_by(Tenant.purge_after)))


async def do_purge(db: AsyncSession, tenant_id: int, actor: str) -> dict[str, Any] | None:
    """Drop a deleted company's schema after its grace period, and write the destruction record.

    Its registry row goes too (memberships, invitations and tokens cascade), and so do the user
    accounts that belonged to no other company. Returns the record, or None when not due.
    """
    tenant = await db.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None or tenant.status != "deleted" or tenant.purge_after is None or tenant.purge_after > now():
        return None
    schema = check_schema(tenant.schema_name)
    tables = await db.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"), {"s": schema})
    user_ids = list(await db.scalars(select(Membership.user_id).where(Membership.tenant_id == tenant.id)))
    await db.execute(text(f"DROP SCHEMA IF EXISTS {ident(schema)} CASCADE"))
    await db.execute(delete(Tenant).where(Tenant.id == tenant.id))
    orphans = select(User.id).where(User.id.in_(user_ids), ~User.is_platform_admin,
                                    ~select(Membership).where(Membership.user_id == User.id).exists())
    removed_users = len((await db.execute(delete(User).where(User.id.in_(orphans)).returning(User.id))).all())
    record = {"tenant_id": tenant.id, "slug": tenant.slug, "schema": schema, "tables_dropped": int(tables or 0),
              "users_removed": removed_users, "deleted_at": tenant.deleted_at.isoformat() if tenant.deleted_at
              else None, "purge_after": tenant.purge_after.isoformat(), "destroyed_at": now().isoformat()}
    db.add(PlatformAudit(actor=actor, action="tenant.destroyed", target=tenant.slug, details=record))
    await db.flush()
    return record


async def purge_due(database: Database, actor: str = "job:purge") -> list[dict[str, Any]]:
    """Purge every company past its grace period, each in its own transaction."""
    async with database.session() as s:
        ids = await due_for_purge(s)
    records = []
    for tenant_id in ids:
        async with database.session() as s:
            record = await do_purge(s, tenant_id, actor)
        if record:
            records.append(record)
    return records


# ---- the log ----------------------------------------------------------------------------------------


async def audit_log(db: AsyncSession, *, action: str = "", target: str = "", before: int | None = None,
                    limit: int = 100) -> tuple[list[PlatformAudit], dict[str, str]]:
    query = select(PlatformAudit)
    if action:
        query = query.where(PlatformAudit.action.startswith(action))
    if target:
        query = query.where(PlatformAudit.target == target)
    if before:
        query = query.where(PlatformAudit.id < before)
    events = list(await db.scalars(query.order_by(PlatformAudit.id.desc()).limit(limit)))
    ids = {int(e.actor.split(":", 1)[1]) for e in events if e.actor.startswith("admin:")}
    names = dict((await db.execute(select(User.id, User.email).where(User.id.in_(ids)))).all()) if ids else {}
    return events, {f"admin:{k}": v for k, v in names.items()}
