"""The one choke point for tenancy and roles.

Every tenant route depends on `tenant_ctx`: it resolves `/t/{slug}`, checks the session user's
membership (not a member: 404, so nothing can be enumerated), checks the handler's minimum role
(`opt={"role": ...}`), and binds the request's transaction to the tenant schema. The API resolves
the tenant from the bearer token alone (`api_ctx`). Nothing else binds schemas.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from dataclasses import dataclass, field

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.config import Settings
from saas.core.db import bind
from saas.core.errors import LoginRequired, TenantSuspended
from saas.accounts import service
from saas.accounts.models import User
from saas.core.models import Tenant
from saas.core.i18n import _, set_locale

SAFE = {"GET", "HEAD", "OPTIONS"}




def min_role(request: Request) -> str:
    default = "viewer" if request.method in SAFE else "marketer"
    return request.route_handler.opt.get("role", default)


_OPEN_SESSION = "_db_session_open"


async def provide_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.session() as session:
        request.scope[_OPEN_SESSION] = session  # type: ignore[literal-required]
        try:
            yield session
        finally:
            request.scope.pop(_OPEN_SESSION, None)  # type: ignore[misc]


async def close_abandoned_session(_exc: Exception, scope: Any) -> None:
    """An app-wide after_exception hook. When a dependency after `db` refuses the request (tenant_ctx's
    404, a bad token's 401), Litestar never resumes provide_db: its session would keep its pooled
    connection until the garbage collector finalised the generator, which also logged errors.
    Closing it here returns the connection at once; the generator's own exit later finds nothing
    to do."""
    session = scope.pop(_OPEN_SESSION, None)
    if session is not None:
        await session.close()


async def provide_user(request: Request, db: AsyncSession) -> User | None:
    user_id = request.scope.get("session", {}).get("user_id")
    if not user_id:
        return None
    user = await service.get_user(db, int(user_id))
    if user is None:
        request.scope["session"] = {}
    return user


async def provide_settings(request: Request) -> Settings:
    return request.app.state.settings


@dataclass
class TenantCtx:
    """What every tenant handler needs: the bound session, who is asking, and where."""

    db: AsyncSession
    user: User
    tenant: Tenant
    role: str
    memberships: list[service.TenantAccess] = field(default_factory=list)  # every company of the user

    def allows(self, role: str) -> bool:
        return service.ROLE_RANK[self.role] >= service.ROLE_RANK[role]

    @property
    def actor(self) -> str:
        return f"user:{self.user.id}"

    @property
    def base(self) -> str:
        return f"/t/{self.tenant.slug}"


@dataclass
class ApiCtx:
    db: AsyncSession
    tenant: Tenant
    role: str
    token_id: int

    def allows(self, role: str) -> bool:
        return service.ROLE_RANK[self.role] >= service.ROLE_RANK[role]

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"


async def tenant_ctx(request: Request, slug: str, db: AsyncSession) -> TenantCtx:
    user_id = request.scope.get("session", {}).get("user_id")
    if not user_id:
        raise LoginRequired()
    # One query: the hot path. A member's company is bound by it; a refusal below unbinds it.
    user, access, companies = await service.user_and_access(db, int(user_id), slug)
    if user is None:
        request.scope["session"] = {}
        raise LoginRequired()
    if access is None:
        raise NotFoundException()
    if access.tenant.status == "suspended":
        await bind(db, None)
        raise TenantSuspended(_("This company's account is suspended. Contact support."),
                              extra={"company": access.tenant.name})
    required = min_role(request)
    if not access.allows(required):
        await bind(db, None)
        raise PermissionDeniedException(_("Your role does not allow this."))
    await service.touch_tenant(db, access.tenant)
    if not (request.scope.get("session") or {}).get("locale"):
        set_locale(access.tenant.locale)
    return TenantCtx(db=db, user=user, tenant=access.tenant, role=access.role, memberships=companies)


async def _token_access(connection: ASGIConnection, db: AsyncSession, *, bind_company: bool) -> tuple[Any, Tenant]:
    """The bearer token's (token, tenant) after every check: valid, company active, role enough.
    `bind_company`: the transaction is left bound to the company (unbound again on a refusal)."""
    auth = connection.headers.get("authorization", "")
    scheme, _sep, secret = auth.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotAuthorizedException("A bearer token is required.")
    found = await service.access_token(db, secret.strip(), bind_company=bind_company)
    if found is None:
        raise NotAuthorizedException("The token is invalid or revoked.")
    token, tenant = found
    required = min_role(connection)  # type: ignore[arg-type]  # uses the method and the route only
    if tenant.status == "suspended":
        refusal = "This company's account is suspended."
    elif service.ROLE_RANK[token.role] < service.ROLE_RANK[required]:
        refusal = f"This needs the {required} role; the token has {token.role}."
    else:
        return token, tenant
    if bind_company:
        await bind(db, None)
    raise PermissionDeniedException(refusal)


async def api_ctx(request: Request, db: AsyncSession) -> ApiCtx:
    # A write's token was checked by api_gate before its body was read: not looked up twice; its
    # company is bound by the request's first transaction (_bind_tenant). A read's token query binds it.
    checked = request.scope.pop(_CHECKED, None)  # type: ignore[misc]
    if checked is None:
        token, tenant = await _token_access(request, db, bind_company=True)
    else:
        token, tenant = checked
        await bind(db, tenant.schema_name)
    return ApiCtx(db=db, tenant=tenant, role=token.role, token_id=token.id)


_CHECKED = "_api_token_checked"


async def api_gate(connection: ASGIConnection, _handler: object) -> None:
    """A guard on the API router: the token is checked before the body is read. (Litestar reads and
    parses `data` before it resolves dependencies such as `api_ctx`, so a stranger could make the server
    read and parse a large body first.) Outside a transaction: one round trip instead of three.
    Requests without a body keep to `api_ctx` alone."""
    if connection.scope["method"] in SAFE:
        return
    async with connection.app.state.db.autocommit_session() as db:
        connection.scope[_CHECKED] = await _token_access(connection, db, bind_company=False)  # type: ignore[literal-required]
