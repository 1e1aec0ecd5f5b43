"""Signup, login, password reset, invitations, the company switcher and the team page."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.config import Settings
from saas.core.mail import send_mail
from saas.accounts import service
from saas.accounts.models import User
from saas.core.errors import FormError
from saas.core.web import sessions
from saas.accounts.deps import TenantCtx
from saas.core.i18n import LOCALES, _, get_locale, set_locale
from saas.core.web.render import flash, redirect, render
from saas.core.web.security import Throttle

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


def _safe_next(value: str | None) -> str | None:
    """Only local paths: an open redirect would make the login page a phishing tool."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


async def _page_user(request: Request, db: AsyncSession, user: User | None) -> dict[str, Any]:
    memberships = await service.memberships_of(db, user.id) if user else []
    return {"user": user, "memberships": memberships}


def _log_in(request: Request, user: User) -> None:
    session = request.scope.setdefault("session", {})
    keep_flash = session.get("_flash", [])
    session.clear()
    session.update(user_id=user.id, locale=user.locale or get_locale(), _flash=keep_flash)
    sessions.rotate(request)
    set_locale(session["locale"])


# ---- landing and signup --------------------------------------------------------------------


@get("/", name="landing")
async def landing(request: Request, db: AsyncSession, user: User | None) -> Any:
    return render(request, "accounts/landing.html", private=False, **await _page_user(request, db, user))


@get("/signup")
async def signup_page(request: Request, db: AsyncSession, user: User | None) -> Any:
    return render(request, "accounts/signup.html", **await _page_user(request, db, user))


@post("/signup")
async def signup(request: Request, db: AsyncSession, data: Form) -> Any:
    form = {k: _field(data, k) for k in ("company", "name", "email")}
    try:
        user, tenant = await service.do_signup(
            db, company=form["company"], name=form["name"], email=form["email"],
            password=_field(data, "password"), locale=get_locale(),
        )
    except FormError as exc:
        return render(request, "accounts/signup.html", status_code=422, errors=exc.errors, form=form)
    _log_in(request, user)
    flash(request, _("Welcome to Kartoteka! Your company's workspace is ready."))
    return redirect(request, f"/t/{tenant.slug}/")


@get("/companies/new")
async def new_company_page(request: Request, db: AsyncSession, user: User | None) -> Any:
    if user is None:
        return redirect(request, "/login?next=/companies/new")
    return render(request, "accounts/new_company.html", **await _page_user(request, db, user))


@post("/companies")
async def create_company(request: Request, db: AsyncSession, user: User | None, data: Form) -> Any:
    if user is None:
        return redirect(request, "/login")
    try:
        tenant = await service.do_create_tenant(db, _field(data, "company"), user, locale=get_locale())
    except FormError as exc:
        return render(request, "accounts/new_company.html", status_code=422, errors=exc.errors,
                      form={"company": _field(data, "company")}, **await _page_user(request, db, user))
    flash(request, _("Company created."))
    return redirect(request, f"/t/{tenant.slug}/")


# ---- login and logout ----------------------------------------------------------------------


@get("/login")
async def login_page(request: Request, db: AsyncSession, user: User | None, next: str | None = None) -> Any:
    return render(request, "accounts/login.html", form={"next": _safe_next(next) or ""},
                  **await _page_user(request, db, user))


@post("/login")
async def login(request: Request, db: AsyncSession, data: Form) -> Any:
    email, password = _field(data, "email").strip().lower(), _field(data, "password")
    form = {"email": email, "next": _safe_next(_field(data, "next")) or ""}
    ip = request.client.host if request.client else "unknown"
    throttle = Throttle(request.app.state.redis, request.app.state.settings.redis_prefix)
    try:
        if await throttle.blocked(email, ip):
            return render(request, "accounts/login.html", status_code=429, form=form,
                          errors={"form": _("Too many failed attempts. Wait 15 minutes, or reset your password.")})
        user = await service.authenticate(db, email, password)
        if user is None:
            await throttle.failed(email, ip)
            return render(request, "accounts/login.html", status_code=401, form=form,
                          errors={"form": _("Wrong email or password.")})
        await throttle.succeeded(email, ip)
    except RedisError:
        return render(request, "accounts/login.html", status_code=503, form=form,
                      errors={"form": _("Login is temporarily unavailable: our session store is down. "
                                        "Try again in a minute.")})
    _log_in(request, user)
    if form["next"]:
        return redirect(request, form["next"])
    memberships = await service.memberships_of(db, user.id)
    return redirect(request, f"/t/{memberships[0].tenant.slug}/" if len(memberships) == 1 else "/companies")


@post("/logout")
async def logout(request: Request) -> Any:
    request.scope["session"] = {}
    return redirect(request, "/")


@get("/companies")
async def companies(request: Request, db: AsyncSession, user: User | None) -> Any:
    if user is None:
        return redirect(request, "/login?next=/companies")
    return render(request, "accounts/companies.html", **await _page_user(request, db, user))


# ---- password reset ------------------------------------------------------------------------


@get("/forgot")
async def forgot_page(request: Request) -> Any:
    return render(request, "accounts/forgot.html")


@post("/forgot")
async def forgot(request: Request, db: AsyncSession, settings: Settings, data: Form) -> Any:
    email = _field(data, "email").strip().lower()
    found = await service.do_request_reset(db, email)
    if found:
        user, token = found
        await send_mail(db, settings, user.email, _("Reset your Kartoteka password"), _(
            "Someone asked to reset the password of your Kartoteka account.\n\n"
            "To choose a new password, open this link within an hour:\n%(link)s\n\n"
            "If it was not you, ignore this message.", link=f"{settings.base_url}/reset/{token}"))
    # The same answer either way, so the form does not reveal who has an account.
    flash(request, _("If an account exists for that address, we have sent a reset link to it."))
    return redirect(request, "/login")


@get("/reset/{token:str}")
async def reset_page(request: Request, db: AsyncSession, token: str) -> Any:
    if await service.get_reset(db, token) is None:
        return render(request, "accounts/reset.html", status_code=404, invalid=True, token=token)
    return render(request, "accounts/reset.html", invalid=False, token=token)


@post("/reset/{token:str}")
async def reset(request: Request, db: AsyncSession, token: str, data: Form) -> Any:
    found = await service.get_reset(db, token)
    if found is None:
        return render(request, "accounts/reset.html", status_code=404, invalid=True, token=token)
    try:
        user = await service.do_reset_password(db, found, _field(data, "password"))
    except FormError as exc:
        return render(request, "accounts/reset.html", status_code=422, invalid=False, token=token, errors=exc.errors)
    _log_in(request, user)
    flash(request, _("Your password has been changed."))
    memberships = await service.memberships_of(db, user.id)
    return redirect(request, f"/t/{memberships[0].tenant.slug}/" if len(memberships) == 1 else "/companies")


# ---- invitations ---------------------------------------------------------------------------


@get("/invite/{token:str}")
async def invite_page(request: Request, db: AsyncSession, user: User | None, token: str) -> Any:
    found = await service.get_invitation(db, token)
    if found is None:
        return render(request, "accounts/invite.html", status_code=404, invitation=None, token=token)
    invitation, tenant = found
    existing = await service.get_user_by_email(db, invitation.email)
    return render(request, "accounts/invite.html", invitation=invitation, tenant=tenant, token=token,
                  has_account=existing is not None, **await _page_user(request, db, user))


@post("/invite/{token:str}")
async def accept_invite(request: Request, db: AsyncSession, user: User | None, token: str, data: Form) -> Any:
    found = await service.get_invitation(db, token)
    if found is None:
        raise NotFoundException()
    invitation, tenant = found
    try:
        if user is None:
            existing = await service.get_user_by_email(db, invitation.email)
            if existing is not None:
                user = await service.authenticate(db, invitation.email, _field(data, "password"))
                if user is None:
                    raise FormError({"password": _("Wrong password.")})
            else:
                user = await service.do_create_user(db, invitation.email, _field(data, "name"),
                                                    _field(data, "password"), locale=get_locale())
        await service.do_accept_invitation(db, invitation, user)
    except FormError as exc:
        existing = await service.get_user_by_email(db, invitation.email)
        return render(request, "accounts/invite.html", status_code=422, invitation=invitation, tenant=tenant,
                      token=token, has_account=existing is not None, errors=exc.errors,
                      form={"name": _field(data, "name")}, **await _page_user(request, db, user))
    _log_in(request, user)
    flash(request, _("You have joined %(company)s.", company=tenant.name))
    return redirect(request, f"/t/{tenant.slug}/")


# ---- inside a workspace --------------------------------------------------------------------


@get("/team", opt={"role": "admin"})
async def team(request: Request, ctx: TenantCtx) -> Any:
    return await _team_page(request, ctx)


async def _team_page(request: Request, ctx: TenantCtx, **extra: Any) -> Any:
    return render(
        request, "accounts/team.html", ctx=ctx, user=ctx.user,
        memberships=await service.memberships_of(ctx.db, ctx.user.id),
        members=await service.members_of(ctx.db, ctx.tenant.id),
        invitations=await service.pending_invitations(ctx.db, ctx.tenant.id),
        roles=service.ROLE_RANK, **extra,
    )


@post("/team/invite", opt={"role": "admin"})
async def invite(request: Request, ctx: TenantCtx, settings: Settings, data: Form) -> Any:
    form = {"email": _field(data, "email"), "role": _field(data, "role") or "viewer"}
    access = service.TenantAccess(ctx.tenant, ctx.role)
    try:
        _invitation, token = await service.do_invite(ctx.db, access, ctx.user, form["email"], form["role"])
    except FormError as exc:
        return await _team_page(request, ctx, status_code=422, errors=exc.errors, form=form)
    await send_mail(ctx.db, settings, form["email"].strip().lower(),
                    _("%(name)s invites you to %(company)s on Kartoteka", name=ctx.user.name,
                      company=ctx.tenant.name),
                    _("%(name)s invites you to join %(company)s on Kartoteka as %(role)s.\n\n"
                      "Accept the invitation within 7 days:\n%(link)s", name=ctx.user.name,
                      company=ctx.tenant.name, role=form["role"], link=f"{settings.base_url}/invite/{token}"))
    flash(request, _("Invitation sent to %(email)s.", email=form["email"]))
    return redirect(request, f"{ctx.base}/team")


@post("/lang", include_in_schema=False)
async def switch_language(
    request: Request, db: AsyncSession, user: User | None,
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Any:
    lang = data.get("lang") if data.get("lang") in LOCALES else None
    if lang:
        request.scope.setdefault("session", {})["locale"] = lang
        set_locale(lang)
        if user is not None:
            user.locale = lang
    back = data.get("next") or "/"
    return redirect(request, back if isinstance(back, str) and back.startswith("/") and not back.startswith("//")
                    else "/")


WORKSPACE_HANDLERS = [team, invite]

account_handlers = [
    switch_language,
    landing, signup_page, signup, new_company_page, create_company, login_page, login, logout, companies,
    forgot_page, forgot, reset_page, reset, invite_page, accept_invite,
]


# ---- "Try the demo" (development only) -------------------------------------------------------


def _demo_allowed(settings: Settings) -> None:
    if settings.production:
        raise NotFoundException()


@post("/demo")
async def demo_start(request: Request, settings: Settings) -> Any:
    """Queue the demo company (or reuse it) and show its progress; log in when it is ready."""
    import asyncio

    from saas.core.jobs import QueueUnavailable, enqueue

    _demo_allowed(settings)
    try:
        await asyncio.to_thread(enqueue, settings, "saas.demo.demo_job", job_id=f"{settings.redis_prefix}-demo",
                                timeout=600)
    except QueueUnavailable:
        flash(request, _("The queue is unavailable. Try again in a minute."), "error")
        return redirect(request, "/")
    return render(request, "accounts/demo.html", login=None)


@get("/demo/status")
async def demo_status(request: Request, db: AsyncSession, settings: Settings) -> Any:
    import asyncio

    from saas.core.jobs import get_queue

    _demo_allowed(settings)
    job = await asyncio.to_thread(get_queue(settings).fetch_job, f"{settings.redis_prefix}-demo")
    status = job.get_status() if job is not None else "missing"
    if status == "finished":
        result = job.return_value() or {}
        user = await service.get_user_by_email(db, result.get("owner_email", ""))
        if user is not None:
            _log_in(request, user)
            flash(request, _("Welcome to the demo company. Log in later as %(email)s with the password %(pw)s.",
                             email=result["owner_email"], pw=result.get("password") or "—"))
            return redirect(request, f"/t/{result['slug']}/")
    if status in ("failed", "stopped", "canceled", "missing"):
        return render(request, "accounts/_demo_progress.html", failed=True)
    return render(request, "accounts/_demo_progress.html", failed=False)


account_handlers += [demo_start, demo_status]
