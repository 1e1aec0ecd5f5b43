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


async def provide_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.session() as session:
        yield session


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


async def bind_schema(db: AsyncSession, schema: str) -> None:
    """Bind the current and every later transaction of this session to one tenant schema."""
    await bind(db, schema)


async def tenant_ctx(request: Request, slug: str, db: AsyncSession) -> TenantCtx:
    user_id = request.scope.get("session", {}).get("user_id")
    if not user_id:
        raise LoginRequired()
    user, access, companies = await service.user_and_access(db, int(user_id), slug)  # one query: the hot path
    if user is None:
        request.scope["session"] = {}
        raise LoginRequired()
    if access is None:
        raise NotFoundException()
    if access.tenant.status == "suspended":
        raise TenantSuspended(_("This company's account is suspended. Contact support."),
                              extra={"company": access.tenant.name})
    required = min_role(request)
    if not access.allows(required):
        raise PermissionDeniedException(_("Your role does not allow this."))
    await service.touch_tenant(db, access.tenant)
    await bind_schema(db, access.tenant.schema_name)
    if not (request.scope.get("session") or {}).get("locale"):
        set_locale(access.tenant.locale)
    return TenantCtx(db=db, user=user, tenant=access.tenant, role=access.role, memberships=companies)


async def _token_access(connection: ASGIConnection, db: AsyncSession) -> tuple[Any, Tenant]:
    """The bearer token's (token, tenant) after every check: valid, company active, role enough."""
    auth = connection.headers.get("authorization", "")
    scheme, _sep, secret = auth.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotAuthorizedException("A bearer token is required.")
    found = await service.access_token(db, secret.strip())
    if found is None:
        raise NotAuthorizedException("The token is invalid or revoked.")
    token, tenant = found
    if tenant.status == "suspended":
        raise PermissionDeniedException("This company's account is suspended.")
    required = min_role(connection)  # type: ignore[arg-type]  # uses the method and the route only
    if service.ROLE_RANK[token.role] < service.ROLE_RANK[required]:
        raise PermissionDeniedException(f"This needs the {required} role; the token has {token.role}.")
    return token, tenant


async def api_ctx(request: Request, db: AsyncSession) -> ApiCtx:
    # a write's token was checked by api_gate before its body was read: not looked up twice
    token, tenant = request.scope.pop(_CHECKED, None) or await _token_access(request, db)  # type: ignore[misc]
    await bind_schema(db, tenant.schema_name)
    return ApiCtx(db=db, tenant=tenant, role=token.role, token_id=token.id)


_CHECKED = "_api_token_checked"


async def api_gate(connection: ASGIConnection, _handler: object) -> None:
    """A guard on the API router: the token is checked before the body is read. (Litestar reads and
    parses `data` before it resolves dependencies such as `api_ctx`, so a stranger could make the server
    read and parse a large body first.) Requests without a body keep to `api_ctx` alone."""
    if connection.scope["method"] in SAFE:
        return
    async with connection.app.state.db.session() as db:
        connection.scope[_CHECKED] = await _token_access(connection, db)  # type: ignore[literal-required]
