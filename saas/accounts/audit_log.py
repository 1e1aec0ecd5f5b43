"""The company's audit log, filtered by person, kind of action and date (days in the company's
time zone), newest first, in keyset pages."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saas.accounts.models import Membership, User
from saas.core.models import AuditEvent, Tenant

PAGE = 100
SYSTEM = "system"  # jobs, API tokens, the CLI: everything that is not a person


@dataclass
class AuditFilter:
    person: str = ""  # a user id, SYSTEM, or "" for everyone
    action: str = ""  # a prefix of the action name
    since: date | None = None
    until: date | None = None
    before: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def query_string(self, **override: Any) -> str:
        values = {"person": self.person, "action": self.action, "since": self.since or "", "until": self.until or "",
                  **override}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_filter(params: dict[str, str]) -> AuditFilter:
    person = (params.get("person") or "").strip()
    before = params.get("before") or ""
    f = AuditFilter(person=person if person == SYSTEM or person.isdigit() else "",
                    action=(params.get("action") or "").strip()[:60], since=_day(params.get("since")),
                    until=_day(params.get("until")), before=int(before) if before.isdigit() else None)
    if f.since and f.until and f.since > f.until:
        f.since, f.until = f.until, f.since  # a reversed range means the same days
    return f


async def people(db: AsyncSession, tenant: Tenant) -> list[tuple[int, str]]:
    """The company's members, for the "who" filter (former members still show in the log by id)."""
    rows = await db.execute(select(User.id, User.name).join(Membership, Membership.user_id == User.id)
                            .where(Membership.tenant_id == tenant.id).order_by(User.name))
    return [(uid, name) for uid, name in rows]


async def events(db: AsyncSession, tenant: Tenant, f: AuditFilter) -> tuple[list[AuditEvent], dict[int, str]]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(PAGE)
    if f.person == SYSTEM:
        query = query.where(AuditEvent.actor.not_like("user:%"))
    elif f.person:
        query = query.where(AuditEvent.actor == f"user:{f.person}")
    if f.action:
        query = query.where(AuditEvent.action.startswith(f.action, autoescape=True))
    zone = ZoneInfo(tenant.timezone)
    if f.since:
        query = query.where(AuditEvent.created_at >= datetime.combine(f.since, time(), zone))
    if f.until:
        query = query.where(AuditEvent.created_at < datetime.combine(f.until + timedelta(days=1), time(), zone))
    if f.before:
        query = query.where(AuditEvent.id < f.before)
    found = list(await db.scalars(query))
    user_ids = {int(e.actor.split(":")[1]) for e in found if e.actor.startswith("user:")}
    names = {u.id: u.name for u in await db.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    return found, names
