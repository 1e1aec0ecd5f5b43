"""A company's own account: team roles, invitations, API tokens and company settings.

Every function takes the acting member's role and the tenant, and scopes every lookup by the
tenant id, so an id from another company is simply not found. Changes are written to the
company's audit log (the session is bound to the tenant schema by `tenant_ctx`).
"""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar.exceptions import NotFoundException
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from saas.accounts.models import ApiToken, Invitation, Membership
from saas.core.models import AuditEvent, Tenant
from saas.accounts.service import ROLE_RANK, check_required, check_role
from saas.core.clock import now
from saas.core.errors import FormError
from saas.core.i18n import LOCALES, _

CURRENCIES = ("RUB", "USD", "EUR", "KZT", "BYN", "UZS", "KGS", "AMD", "GEL", "AZN", "TRY", "CNY")
TIMEZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
    "Asia/Magadan", "Asia/Kamchatka", "Europe/Minsk", "Asia/Almaty", "Asia/Tashkent", "Asia/Bishkek",
    "Asia/Yerevan", "Asia/Tbilisi", "Asia/Baku", "Europe/Istanbul", "Europe/Berlin", "Europe/London", "UTC",
)


def audit(db: AsyncSession, actor: str, action: str, object_type: str | None = None,
          object_id: int | None = None, **details: Any) -> None:
    db.add(AuditEvent(actor=actor, action=action, object_type=object_type, object_id=object_id, details=details))


# ---- team ------------------------------------------------------------------------------------


async def access_member(db: AsyncSession, tenant: Tenant, user_id: int) -> Membership:
    member = await db.get(Membership, (user_id, tenant.id))
    if member is None:
        raise NotFoundException()
    return member


async def _owners_locked(db: AsyncSession, tenant: Tenant) -> list[int]:
    """The owners' ids, their rows locked: two owners demoting each other cannot leave none."""
    return list(await db.scalars(
        select(Membership.user_id).where(Membership.tenant_id == tenant.id, Membership.role == "owner")
        .order_by(Membership.user_id).with_for_update()
    ))


def _check_may_manage(actor_role: str, member: Membership, new_role: str | None = None) -> None:
    touches_owner = member.role == "owner" or new_role == "owner"
    if touches_owner and actor_role != "owner":
        raise FormError({"form": _("Only an owner can change or remove an owner.")})


async def do_change_role(db: AsyncSession, tenant: Tenant, actor_role: str, actor: str, user_id: int,
                         role: str) -> Membership:
    member = await access_member(db, tenant, user_id)
    role = check_role(role)
    _check_may_manage(actor_role, member, role)
    if member.role == "owner" and role != "owner" and await _owners_locked(db, tenant) == [user_id]:
        raise FormError({"form": _("This is the company's last owner. Make someone else an owner first.")})
    before, member.role = member.role, role
    audit(db, actor, "member.role_changed", "user", user_id, before=before, after=role)
    await db.flush()
    return member


async def do_remove_member(db: AsyncSession, tenant: Tenant, actor_role: str, actor: str, user_id: int) -> None:
    member = await access_member(db, tenant, user_id)
    _check_may_manage(actor_role, member)
    if member.role == "owner" and await _owners_locked(db, tenant) == [user_id]:
        raise FormError({"form": _("The company's last owner cannot be removed. Make someone else an owner "
                                   "first.")})
    await db.execute(delete(Membership).where(Membership.tenant_id == tenant.id, Membership.user_id == user_id))
    audit(db, actor, "member.removed", "user", user_id, role=member.role)


async def do_revoke_invitation(db: AsyncSession, tenant: Tenant, actor: str, invitation_id: int) -> Invitation:
    invitation = await db.scalar(select(Invitation).where(
        Invitation.id == invitation_id, Invitation.tenant_id == tenant.id, Invitation.accepted_at.is_(None)))
    if invitation is None:
        raise NotFoundException()
    invitation.expires_at = now()  # the link dies with it; the row stays for the record
    audit(db, actor, "invitation.revoked", "invitation", invitation_id, email=invitation.email)
    await db.flush()
    return invitation


# ---- API tokens --------------------------------------------------------------------------------


async def tokens_of(db: AsyncSession, tenant: Tenant) -> list[ApiToken]:
    return list(await db.scalars(select(ApiToken).where(ApiToken.tenant_id == tenant.id)
                                 .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())))


def check_token_role(actor_role: str, role: str) -> str:
    role = check_role(role)
    if ROLE_RANK[role] > ROLE_RANK[actor_role]:
        raise FormError({"role": _("A token cannot have a higher role than yours.")})
    return role


async def do_revoke_token(db: AsyncSession, tenant: Tenant, actor: str, token_id: int) -> ApiToken:
    token = await db.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.tenant_id == tenant.id))
    if token is None:
        raise NotFoundException()
    if token.revoked_at is None:
        token.revoked_at = now()
        audit(db, actor, "token.revoked", "token", token.id, name=token.name)
    await db.flush()
    return token


# ---- company settings ----------------------------------------------------------------------------


def check_company(raw: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    try:
        values["name"] = check_required(raw.get("name", ""), "name", _("Enter the company name."))
    except FormError as exc:
        errors.update(exc.errors)
    currency = (raw.get("currency") or "").strip().upper()
    if currency not in CURRENCIES:
        errors["currency"] = _("Choose a currency from the list.")
    values["currency"] = currency
    tz = (raw.get("timezone") or "").strip()
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = _("Choose a time zone from the list.")
    values["timezone"] = tz
    locale = raw.get("locale") or ""
    if locale not in LOCALES:
        errors["locale"] = _("Choose a language from the list.")
    values["locale"] = locale
    if errors:
        raise FormError(errors)
    return values


async def do_update_company(db: AsyncSession, tenant: Tenant, actor: str, raw: dict[str, str]) -> Tenant:
    values = check_company(raw)
    changed = {k: [getattr(tenant, k), v] for k, v in values.items() if getattr(tenant, k) != v}
    for key, value in values.items():
        setattr(tenant, key, value)
    if changed:
        audit(db, actor, "company.updated", "company", tenant.id, **changed)
    await db.flush()
    return tenant
