"""The API skeleton: the bearer token alone decides the tenant and the role."""
from __future__ import annotations

from dataclasses import dataclass

from litestar import Router, get
from litestar.di import Provide

from saas.web.deps import ApiCtx, api_ctx


@dataclass
class Me:
    tenant: str
    tenant_name: str
    role: str


@get("/me", summary="The token's tenant and role")
async def me(ctx: ApiCtx) -> Me:
    return Me(tenant=ctx.tenant.slug, tenant_name=ctx.tenant.name, role=ctx.role)


def api_router(handlers: list) -> Router:
    return Router(path="/api/v1", route_handlers=[me, *handlers], dependencies={"ctx": Provide(api_ctx)},
                  tags=["api"])
