"""The company's own account pages: team actions, API tokens, company settings and their hub."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from saas.accounts import service
from saas.accounts import limits
from saas.accounts import company as account
from saas.accounts.routes import _team_page
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _
from saas.core.web.render import flash, redirect, render

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
ADMIN = {"role": "admin"}


def _str(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _one_message(exc: FormError) -> str:
    return exc.errors.get("form") or "; ".join(exc.errors.values())


# ---- team --------------------------------------------------------------------------------------


@post("/team/members/{member_id:int}/role", opt=ADMIN)
async def member_role(request: Request, ctx: TenantCtx, member_id: int, data: Form) -> Any:
    try:
        await account.do_change_role(ctx.db, ctx.tenant, ctx.role, ctx.actor, member_id, _str(data, "role"))
    except FormError as exc:
        return await _team_page(request, ctx, status_code=422, errors={"member": _one_message(exc)})
    flash(request, _("The role has been changed."))
    if member_id == ctx.user.id and not service.ROLE_RANK[_str(data, "role")] >= service.ROLE_RANK["admin"]:
        return redirect(request, f"{ctx.base}/")  # no longer allowed to manage the team
    return redirect(request, f"{ctx.base}/team")


@post("/team/members/{member_id:int}/remove", opt=ADMIN)
async def member_remove(request: Request, ctx: TenantCtx, member_id: int) -> Any:
    try:
        await account.do_remove_member(ctx.db, ctx.tenant, ctx.role, ctx.actor, member_id)
    except FormError as exc:
        return await _team_page(request, ctx, status_code=422, errors={"member": _one_message(exc)})
    # Their API tokens die with the membership (access_token refuses them already; this records it).
    for token in await service.do_revoke_member_tokens(ctx.db, ctx.tenant.id, member_id):
        account.audit(ctx.db, ctx.actor, "token.revoked", "token", token.id, name=token.name, reason="member removed")
    if member_id == ctx.user.id:
        flash(request, _("You have left %(company)s.", company=ctx.tenant.name))
        return redirect(request, "/companies")
    flash(request, _("The member has been removed."))
    return redirect(request, f"{ctx.base}/team")


@post("/team/invitations/{invitation_id:int}/revoke", opt=ADMIN)
async def invitation_revoke(request: Request, ctx: TenantCtx, invitation_id: int) -> Any:
    invitation = await account.do_revoke_invitation(ctx.db, ctx.tenant, ctx.actor, invitation_id)
    flash(request, _("The invitation to %(email)s has been revoked.", email=invitation.email))
    return redirect(request, f"{ctx.base}/team")


# ---- API tokens --------------------------------------------------------------------------------


async def _tokens_page(request: Request, ctx: TenantCtx, status: int = 200, **extra: Any) -> Any:
    names = {u.id: u.name for u, _role in await service.members_of(ctx.db, ctx.tenant.id)}
    return render(request, "accounts/tokens.html", status_code=status, ctx=ctx, user=ctx.user,
                  tokens=await account.tokens_of(ctx.db, ctx.tenant), names=names,
                  roles=[r for r in ("viewer", "marketer", "admin", "owner") if ctx.allows(r)], **extra)


@get("/tokens", opt=ADMIN)
async def tokens_page(request: Request, ctx: TenantCtx) -> Any:
    return await _tokens_page(request, ctx)


@post("/tokens", opt=ADMIN)
async def token_create(request: Request, ctx: TenantCtx, data: Form) -> Any:
    form = {"name": _str(data, "name"), "role": _str(data, "role") or "viewer"}
    try:
        role = account.check_token_role(ctx.role, form["role"])
        token, secret = await service.do_create_token(ctx.db, ctx.tenant, role, form["name"], created_by=ctx.user.id)
    except FormError as exc:
        return await _tokens_page(request, ctx, 422, errors=exc.errors, form=form)
    account.audit(ctx.db, ctx.actor, "token.created", "token", token.id, name=token.name, role=token.role)
    # Shown once, in this response only: never stored in the session or a flash message.
    return await _tokens_page(request, ctx, 201, created=token, secret=secret)


@post("/tokens/{token_id:int}/revoke", opt=ADMIN)
async def token_revoke(request: Request, ctx: TenantCtx, token_id: int) -> Any:
    token = await account.do_revoke_token(ctx.db, ctx.tenant, ctx.actor, token_id)
    flash(request, _("The token “%(name)s” has been revoked.", name=token.name))
    return redirect(request, f"{ctx.base}/tokens")


# ---- company settings --------------------------------------------------------------------------


async def _settings_page(request: Request, ctx: TenantCtx, status: int = 200, **extra: Any) -> Any:
    return render(request, "accounts/settings.html", status_code=status, ctx=ctx, user=ctx.user,
                  currencies=account.CURRENCIES, timezones=account.TIMEZONES,
                  usage=await limits.usage_summary(ctx.db, ctx.tenant), **extra)


@get("/settings", opt=ADMIN)
async def settings_page(request: Request, ctx: TenantCtx) -> Any:
    return await _settings_page(request, ctx)


@post("/settings", opt=ADMIN)
async def settings_save(request: Request, ctx: TenantCtx, data: Form) -> Any:
    form = {k: _str(data, k) for k in ("name", "currency", "timezone", "locale")}
    try:
        await account.do_update_company(ctx.db, ctx.tenant, ctx.actor, form)
    except FormError as exc:
        return await _settings_page(request, ctx, 422, errors=exc.errors, form=form)
    flash(request, _("Company settings saved."))
    return redirect(request, f"{ctx.base}/settings")


HANDLERS = [member_role, member_remove, invitation_revoke, tokens_page, token_create, token_revoke, settings_page,
            settings_save]
