"""The API skeleton: the bearer token alone decides the tenant and the role."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Router, get
from litestar.di import Provide
from sqlalchemy import select

from saas.core.errors import ERRORS
from saas.accounts.models import ApiToken

from saas.accounts.deps import ApiCtx, api_ctx, api_gate


@dataclass
class Me:
    tenant: str
    tenant_name: str
    role: str


@get("/me", summary="The token's tenant and role", responses=ERRORS)
async def me(ctx: ApiCtx) -> Me:
    return Me(tenant=ctx.tenant.slug, tenant_name=ctx.tenant.name, role=ctx.role)




@dataclass
class TokenInfo:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


@get("/tokens", opt={"role": "admin"}, summary="The company's API tokens (admin)", responses=ERRORS)
async def list_tokens(ctx: ApiCtx) -> list[TokenInfo]:
    rows = await ctx.db.scalars(select(ApiToken).where(ApiToken.tenant_id == ctx.tenant.id).order_by(ApiToken.id))
    return [TokenInfo(t.id, t.name, t.role, t.prefix, t.created_at, t.last_used_at, t.revoked_at is not None)
            for t in rows]


HANDLERS = [me, list_tokens]


def api_router(handlers: list) -> Router:
    return Router(path="/api/v1", route_handlers=[*HANDLERS, *handlers], dependencies={"ctx": Provide(api_ctx)},
                  guards=[api_gate], tags=["api"], security=[{"bearer": []}])
