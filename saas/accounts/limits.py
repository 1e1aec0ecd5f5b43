"""Plan limits: how many clients, users and campaigns a month a company may have.

A plan sets the defaults; `shared.tenants.limits` overrides them per company (None: no limit).
The check is soft: two creations racing at the limit may both pass, which is acceptable for a
commercial limit (it is not a security boundary).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core import clock
from saas.core.db import check_schema, qualified
from saas.accounts.models import Invitation, Membership
from saas.core.models import Tenant
from saas.core.errors import FormError
from saas.core.i18n import _

KINDS = ("clients", "users", "campaigns_per_month")
PLANS: dict[str, dict[str, int | None]] = {
    "free": {"clients": 1000, "users": 5, "campaigns_per_month": 20},
    "standard": {"clients": 20000, "users": 20, "campaigns_per_month": 200},
    "business": {"clients": None, "users": None, "campaigns_per_month": None},
}


def plan_names() -> list[str]:
    return list(PLANS)


def limits_for(tenant: Tenant) -> dict[str, int | None]:
    """The effective limits: the plan's, overridden by the company's own. Demo companies have none."""
    if tenant.is_demo:
        return dict.fromkeys(KINDS)
    base = dict(PLANS.get(tenant.plan, PLANS["business"]))
    for kind, value in (tenant.limits or {}).items():
        if kind in KINDS:
            base[kind] = value
    return base


async def usage(db: AsyncSession, tenant: Tenant, kind: str) -> int:
    schema = check_schema(tenant.schema_name)
    if kind == "clients":
        sql = f"SELECT count(*) FROM {qualified(schema, 'clients')} WHERE erased_at IS NULL"  # noqa: S608 - checked name
        return int(await db.scalar(text(sql)))
    if kind == "campaigns_per_month":
        sql = (f"SELECT count(*) FROM {qualified(schema, 'campaigns')} "  # noqa: S608 - checked name
               "WHERE created_at >= date_trunc('month', now() AT TIME ZONE :tz) AT TIME ZONE :tz")
        return int(await db.scalar(text(sql), {"tz": tenant.timezone or "UTC"}))
    if kind == "users":
        members = await db.scalar(select(func.count()).select_from(Membership)
                                  .where(Membership.tenant_id == tenant.id))
        pending = await db.scalar(select(func.count()).select_from(Invitation).where(
            Invitation.tenant_id == tenant.id, Invitation.accepted_at.is_(None), Invitation.expires_at > clock.now()))
        return int(members) + int(pending)
    raise ValueError(f"unknown limit {kind!r}")


def _message(kind: str, limit: int) -> str:
    if kind == "clients":
        return _("Your plan allows at most %(n)s clients. Archive or erase some, or ask us to raise the limit.",
                 n=limit)
    if kind == "users":
        return _("Your plan allows at most %(n)s users, pending invitations included. Remove a member or "
                 "revoke an invitation, or ask us to raise the limit.", n=limit)
    return _("Your plan allows at most %(n)s new campaigns a month. Reuse a draft, or ask us to raise the limit.",
             n=limit)


async def _bound_tenant(db: AsyncSession) -> Tenant | None:
    schema = db.info.get("schema")
    return await db.scalar(select(Tenant).where(Tenant.schema_name == schema)) if schema else None


@dataclass
class Room:
    """A limited kind's limit, its usage, how many more fit, and the sentence that says the limit."""
    limit: int
    used: int
    message: str

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)


async def room(db: AsyncSession, tenant: Tenant | None, kind: str) -> Room | None:
    """The plan's room for more of `kind`; None when the plan sets no limit.

    `tenant` may be None inside a session bound to a tenant schema: it is found from the binding.
    """
    tenant = tenant or await _bound_tenant(db)
    if tenant is None:  # never "no limit" by accident: an unbound session has no company to count
        raise LookupError("room() needs the tenant or a session bound to its schema")
    limit = limits_for(tenant).get(kind)
    if limit is None:
        return None
    return Room(limit, await usage(db, tenant, kind), _message(kind, limit))


async def check_limit(db: AsyncSession, tenant: Tenant | None, kind: str, adding: int = 1) -> None:
    """Raise FormError (a clear message under the key "form") when `adding` more would pass the limit."""
    if (space := await room(db, tenant, kind)) is not None and adding > space.left:
        raise FormError({"form": space.message})


async def usage_summary(db: AsyncSession, tenant: Tenant) -> list[dict[str, Any]]:
    """Each limit with the current usage, for the settings page and the console."""
    limits = limits_for(tenant)
    return [{"kind": kind, "limit": limits.get(kind), "used": await usage(db, tenant, kind)} for kind in KINDS]
