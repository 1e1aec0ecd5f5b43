"""Accounts and tenants: signup, login, memberships, invitations, password resets, API tokens.

Verb prefixes: get_ looks up, access_ looks up and authorises, check_ validates, do_ writes.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import and_, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core import clock
from saas.core.clock import now
from saas.core.errors import FormError
from saas.core.text import slugify
from saas.core.db import adopt_binding, bind, binding_column, create_schema, schema_for
from saas.accounts.models import ROLES, ApiToken, Invitation, Membership, PasswordReset, User
from saas.core.models import Tenant
from saas.core.i18n import _
from saas.core.web.security import RESERVED_SLUGS, dummy_verify, hash_password, verify_password

ROLE_RANK = {"viewer": 0, "marketer": 1, "admin": 2, "owner": 3}
INVITE_DAYS = 7
RESET_HOURS = 1
MIN_PASSWORD = 8



class EmailNotConfirmed(FormError):
    """The action needs a confirmed address; the caller sends the confirmation link."""

    def __init__(self) -> None:
        super().__init__({"form": _("Confirm your email address first: we have sent you a link. Open it, then "
                                    "try again.")})


@dataclass
class TenantAccess:
    tenant: Tenant
    role: str

    def allows(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- validation ----------------------------------------------------------------------------


def check_email(raw: str, field: str = "email") -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise FormError({field: _("Enter a valid email address.")}) from None


def check_password(raw: str) -> str:
    if len(raw) < MIN_PASSWORD:
        raise FormError({"password": _("The password must be at least %(n)s characters.", n=MIN_PASSWORD)})
    if len(raw) > 256:
        raise FormError({"password": _("The password is too long.")})
    return raw


def check_role(raw: str) -> str:
    if raw not in ROLES:
        raise FormError({"role": _("Choose a role: owner, admin, marketer or viewer.")})
    return raw


def check_required(value: str, field: str, label_message: str, max_len: int = 200) -> str:
    value = (value or "").strip()
    if not value:
        raise FormError({field: label_message})
    if len(value) > max_len:
        raise FormError({field: _("At most %(n)s characters.", n=max_len)})
    return value


# ---- users ---------------------------------------------------------------------------------


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.strip().lower()))


async def do_create_user(session: AsyncSession, email: str, name: str, password: str,
                         locale: str | None = None, *, confirmed: bool = False) -> User:
    """`confirmed`: the address is proven already (the account is made from a link mailed to it)."""
    email = check_email(email)
    name = check_required(name, "name", _("Enter your name."))
    check_password(password)
    if await get_user_by_email(session, email):
        raise FormError({"email": _("This email is already registered. Log in instead.")})
    user = User(email=email, name=name, password_hash=await hash_password(password), locale=locale,
                email_confirmed_at=now() if confirmed else None)
    session.add(user)
    await session.flush()
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    user = await get_user_by_email(session, email)
    if user is None:
        await dummy_verify(password)
        return None
    ok, new_hash = await verify_password(user.password_hash, password)
    if not ok:
        return None
    if new_hash:
        user.password_hash = new_hash
    return user


# ---- tenants -------------------------------------------------------------------------------


def check_company_name(name: str) -> str:
    """A company name whose address (slug) would be one of our own route words is refused."""
    name = check_required(name, "company", _("Enter the company name."))
    if slugify(name) in RESERVED_SLUGS:
        raise FormError({"company": _("“%(name)s” is reserved for the service's own pages. Add a word, "
                                      "for example “%(name)s Studio”.", name=name)})
    return name


async def _unique_slug(session: AsyncSession, name: str) -> str:
    base = slugify(name)
    # The usual case first, by the unique index: the regex below scans every company (17 ms at 10,000).
    if await session.scalar(select(Tenant.id).where(Tenant.slug == base)) is None:
        return base
    taken = set(
        await session.scalars(select(Tenant.slug).where(Tenant.slug.op("~")(f"^{re.escape(base)}(-[0-9]+)?$")))
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def do_create_tenant(
    session: AsyncSession, name: str, owner: User | None = None, *, locale: str = "ru", is_demo: bool = False
) -> Tenant:
    """Register a company and create its schema at head, in the caller's transaction."""
    name = check_company_name(name)
    tenant_id = await session.scalar(text("SELECT nextval(pg_get_serial_sequence('shared.tenants', 'id'))"))
    schema = schema_for(tenant_id)
    tenant = Tenant(
        id=tenant_id, slug=await _unique_slug(session, name), name=name, schema_name=schema,
        locale=locale, is_demo=is_demo,
    )
    session.add(tenant)
    await session.flush()
    tenant.schema_version = await create_schema(await session.connection(), schema)
    if owner is not None:
        session.add(Membership(user_id=owner.id, tenant_id=tenant.id, role="owner"))
    await session.flush()
    return tenant


async def do_signup(
    session: AsyncSession, *, company: str, name: str, email: str, password: str, locale: str
) -> tuple[User, Tenant]:
    errors: dict[str, str] = {}
    for check in (
        lambda: check_company_name(company),
        lambda: check_required(name, "name", _("Enter your name.")),
        lambda: check_email(email),
        lambda: check_password(password),
    ):
        try:
            check()
        except FormError as exc:
            errors.update(exc.errors)
    if errors:
        raise FormError(errors)
    user = await do_create_user(session, email, name, password, locale=locale)
    tenant = await do_create_tenant(session, company, user, locale=locale)
    return user, tenant


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return await session.scalar(select(Tenant).where(Tenant.slug == slug))


# Built once (every workspace page runs it): a statement built anew costs more CPU than running it.
# The row of the company at `slug` binds the transaction to it (db.binding_column): no round trip of
# its own.
_USER_AND_ACCESS = (
    select(User, Tenant, Membership.role,
           binding_column(Tenant.schema_name, Tenant.slug == bindparam("slug")).label("bound"))
    .select_from(User)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Tenant, and_(Tenant.id == Membership.tenant_id, Tenant.status != "deleted"))
    .where(User.id == bindparam("user_id")).order_by(Tenant.name)
)


async def user_and_access(session: AsyncSession, user_id: int,
                          slug: str) -> tuple[User | None, TenantAccess | None, list[TenantAccess]]:
    """The signed-in user, their access to the tenant at `slug` and all their companies (the top
    bar's switcher), in one query: the hot path of every workspace page. (None, None, []) for a
    user who is gone; (user, None, ...) for a non-member. A member's access leaves the transaction
    bound to the company: the caller unbinds it if it refuses the access after all."""
    rows = (await session.execute(_USER_AND_ACCESS, {"user_id": user_id, "slug": slug})).all()
    if not rows:
        return None, None, []
    companies = [TenantAccess(tenant, role) for _user, tenant, role, _bound in rows if tenant is not None]
    access = next((a for a in companies if a.tenant.slug == slug), None)
    if access is not None:
        adopt_binding(session, access.tenant.schema_name)
    return rows[0][0], access, companies


async def memberships_of(session: AsyncSession, user_id: int) -> list[TenantAccess]:
    rows = await session.execute(
        select(Tenant, Membership.role)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user_id, Tenant.status != "deleted")
        .order_by(Tenant.name)
    )
    return [TenantAccess(t, r) for t, r in rows]


async def members_of(session: AsyncSession, tenant_id: int) -> list[tuple[User, str]]:
    rows = await session.execute(
        select(User, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant_id).order_by(User.name)
    )
    return [(u, r) for u, r in rows]


TOUCH_EVERY = timedelta(minutes=5)


async def touch_tenant(session: AsyncSession, tenant: Tenant) -> None:
    """Record activity, at most once per five minutes per tenant (it is a hot path: the row read
    for the membership check says whether it is due, so most requests send nothing)."""
    seen = tenant.last_activity_at
    if seen is not None and clock.now() - seen < TOUCH_EVERY:
        return
    await session.execute(
        text("UPDATE shared.tenants SET last_activity_at = now() WHERE id = :id AND "
             "(last_activity_at IS NULL OR last_activity_at < now() - interval '5 minutes')"),
        {"id": tenant.id},
    )


# ---- invitations ---------------------------------------------------------------------------


async def do_invite(
    session: AsyncSession, access: TenantAccess, inviter: User, email: str, role: str
) -> tuple[Invitation, str]:
    email = check_email(email)
    role = check_role(role)
    if role == "owner" and access.role != "owner":
        raise FormError({"role": _("Only an owner can invite another owner.")})
    existing = await session.scalar(
        select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == access.tenant.id, User.email == email)
    )
    if existing:
        raise FormError({"email": _("This person is already a member.")})
    from saas.accounts.limits import check_limit  # limits imports this module

    await check_limit(session, access.tenant, "users")
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        tenant_id=access.tenant.id, email=email, role=role, token_hash=token_hash(token),
        invited_by=inviter.id, expires_at=now() + timedelta(days=INVITE_DAYS),
    )
    session.add(invitation)
    await session.flush()
    return invitation, token


async def pending_invitations(session: AsyncSession, tenant_id: int) -> list[Invitation]:
    return list(await session.scalars(
        select(Invitation).where(Invitation.tenant_id == tenant_id, Invitation.accepted_at.is_(None),
                                 Invitation.expires_at > clock.now()).order_by(Invitation.created_at.desc())
    ))


async def get_invitation(session: AsyncSession, token: str) -> tuple[Invitation, Tenant] | None:
    row = (await session.execute(
        select(Invitation, Tenant).join(Tenant, Tenant.id == Invitation.tenant_id)
        .where(Invitation.token_hash == token_hash(token), Invitation.accepted_at.is_(None),
               Invitation.expires_at > clock.now(), Tenant.status == "active")
    )).first()
    return (row[0], row[1]) if row else None


async def do_accept_invitation(session: AsyncSession, invitation: Invitation, user: User) -> None:
    """Join the invitation's own tenant, and only if it was addressed to this user."""
    if user.email != invitation.email:
        raise FormError({"form": _("This invitation was sent to another email address.")})
    if user.email_confirmed_at is None:
        raise EmailNotConfirmed()
    member = await session.get(Membership, (user.id, invitation.tenant_id))
    if member is None:
        session.add(Membership(user_id=user.id, tenant_id=invitation.tenant_id, role=invitation.role))
    invitation.accepted_at = now()
    await session.flush()


# ---- password reset ------------------------------------------------------------------------


async def do_request_reset(session: AsyncSession, email: str) -> tuple[User, str] | None:
    user = await get_user_by_email(session, email)
    if user is None:
        return None
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=token_hash(token),
                              expires_at=now() + timedelta(hours=RESET_HOURS)))
    await session.flush()
    return user, token


async def get_reset(session: AsyncSession, token: str) -> PasswordReset | None:
    return await session.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == token_hash(token), PasswordReset.used_at.is_(None),
                                    PasswordReset.expires_at > clock.now())
    )


async def do_reset_password(session: AsyncSession, reset: PasswordReset, password: str) -> User:
    check_password(password)
    user = await session.get(User, reset.user_id)
    user.password_hash = await hash_password(password)
    reset.used_at = now()
    # Every other outstanding link for this user dies with this one.
    await session.execute(
        update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now())
    )
    await session.flush()
    return user


async def do_change_password(session: AsyncSession, user: User, current: str, new: str) -> None:
    if not (await verify_password(user.password_hash, current))[0]:
        raise FormError({"current": _("Wrong password.")})
    check_password(new)
    user.password_hash = await hash_password(new)
    await session.flush()


# ---- e-mail confirmation -------------------------------------------------------------------
# The link is signed, not stored: user id, expiry and an HMAC over them and the address, so it
# dies when the address changes and needs no table. Opening it twice is harmless.

CONFIRM_DAYS = 3


def _confirm_mac(secret: str, user_id: int, email: str, expires: int) -> str:
    message = f"confirm:{user_id}:{email}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def confirm_token(secret: str, user: User) -> str:
    expires = int(clock.timestamp()) + CONFIRM_DAYS * 86400
    return f"{user.id}-{expires}-{_confirm_mac(secret, user.id, user.email, expires)}"


async def do_confirm_email(session: AsyncSession, secret: str, token: str) -> User | None:
    """The user the link confirms (now marked confirmed), or None for a wrong or expired link."""
    try:
        user_id, expires, mac = token.split("-", 2)
        uid, exp = int(user_id), int(expires)
    except ValueError:
        return None
    user = await session.get(User, uid)
    if user is None or exp < clock.timestamp():
        return None
    if not hmac.compare_digest(mac, _confirm_mac(secret, uid, user.email, exp)):
        return None
    if user.email_confirmed_at is None:
        user.email_confirmed_at = now()
        await session.flush()
    return user


# ---- API tokens ----------------------------------------------------------------------------

TOKEN_PREFIX = "kt_"  # noqa: S105 - the public prefix that marks our tokens, not a secret


async def do_create_token(session: AsyncSession, tenant: Tenant, role: str, name: str,
                          created_by: int | None = None) -> tuple[ApiToken, str]:
    """A token for the tenant. `created_by` (the member creating it) ties its life to their
    membership; None only for tokens the platform operator issues from the command line."""
    role = check_role(role)
    name = check_required(name, "name", _("Name the token."), 100)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(tenant_id=tenant.id, name=name, role=role, token_hash=token_hash(secret), prefix=secret[:10],
                     created_by=created_by)
    session.add(token)
    await session.flush()
    return token, secret


_TOKEN_ACCESS = (  # built once: every API call runs it; `bind`: the token's company is bound at once
    select(ApiToken, Tenant, Membership.role, binding_column(Tenant.schema_name, bindparam("bind")).label("bound"))
    .join(Tenant, Tenant.id == ApiToken.tenant_id)
    .outerjoin(Membership, (Membership.user_id == ApiToken.created_by) & (Membership.tenant_id == Tenant.id))
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None), Tenant.status != "deleted")
)


async def access_token(session: AsyncSession, secret: str, *,
                       bind_company: bool = False) -> tuple[ApiToken, Tenant] | None:
    """The live token and its company. `bind_company`: the open transaction is left bound to the
    company (the caller unbinds it if it refuses the access for another reason)."""
    row = (await session.execute(_TOKEN_ACCESS, {"token_hash": token_hash(secret), "bind": bind_company})).first()
    if row is None:
        return None
    token, tenant, creator_role, _bound = row
    # A member's token lives only while they are a member with at least the token's role: it is
    # refused the moment they are removed or demoted (removal also revokes it for the record).
    if token.created_by is not None and (creator_role is None or ROLE_RANK[creator_role] < ROLE_RANK[token.role]):
        if bind_company:
            await bind(session, None)
        return None
    if bind_company:
        adopt_binding(session, tenant.schema_name)
    if token.last_used_at is None or now() - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now()
    return token, tenant


async def do_revoke_member_tokens(session: AsyncSession, tenant_id: int, user_id: int) -> list[ApiToken]:
    """Revoke the live tokens a member created in one company (they have left it)."""
    tokens = list(await session.scalars(select(ApiToken).where(
        ApiToken.tenant_id == tenant_id, ApiToken.created_by == user_id, ApiToken.revoked_at.is_(None))))
    for token in tokens:
        token.revoked_at = now()
    await session.flush()
    return tokens
