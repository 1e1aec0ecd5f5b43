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
from saas.core import throttle as limits
from saas.core.i18n import LOCALES, _, get_locale, ngettext_, set_locale
from saas.core.web.redirects import safe_path
from saas.core.web.render import flash, is_htmx, redirect, render

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return ngettext_("%(num)s second", "%(num)s seconds", max(seconds, 1))
    return ngettext_("%(num)s minute", "%(num)s minutes", -(-seconds // 60))


def _too_many(template: str, request: Request, wait: int, **context: Any) -> Any:
    """429 with the wait in words (and in Retry-After), the form kept as it was."""
    context.setdefault("errors", {"form": _("Too many attempts. Try again in %(wait)s.", wait=_wait_text(wait))})
    response = render(request, template, status_code=429, **context)
    response.headers["Retry-After"] = str(wait)
    return response


async def _send_confirmation(db: AsyncSession, settings: Settings, user: User) -> None:
    link = f"{settings.base_url}/confirm/{service.confirm_token(settings.secret_key, user)}"
    await send_mail(db, settings, user.email, _("Confirm your email address for Kartoteka"), _(
        "To confirm that this address is yours, open this link within 3 days:\n%(link)s\n\n"
        "You need it to create another company or to join one with your existing account. "
        "If you did not sign up for Kartoteka, ignore this message.", link=link))


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
async def signup(request: Request, db: AsyncSession, settings: Settings, data: Form) -> Any:
    form = {k: _field(data, k) for k in ("company", "name", "email", "from")}
    throttle, ip = limits.for_request(request)
    wait = await throttle.attempt(limits.SIGNUP, form["email"], ip)
    if wait:  # each signup creates a schema: a script must not create thousands
        return _signup_refused(request, 429, form, {"form": _("Too many attempts. Try again in %(wait)s.",
                                                              wait=_wait_text(wait))}, retry_after=wait)
    try:
        user, tenant = await service.do_signup(
            db, company=form["company"], name=form["name"], email=form["email"],
            password=_field(data, "password"), locale=get_locale(),
        )
    except FormError as exc:
        return _signup_refused(request, 422, form, exc.errors)
    await _send_confirmation(db, settings, user)
    _log_in(request, user)
    flash(request, _("Welcome to Kartoteka! Your company's workspace is ready."))
    return redirect(request, f"/t/{tenant.slug}/")


def _signup_refused(request: Request, status: int, form: dict[str, str], errors: dict[str, str],
                    retry_after: int | None = None) -> Any:
    """The errors in place: htmx swaps the form alone; a plain post gets the page it came from
    (the landing page or /signup) back whole, with the form filled in and the errors on it."""
    if is_htmx(request):
        response = render(request, "accounts/_signup_form.html", status_code=status, form=form, errors=errors)
        response.headers.update({"HX-Retarget": "#signup-form", "HX-Reswap": "outerHTML",
                                 "HX-Reselect": "#signup-form"})
    else:
        page = "accounts/landing.html" if form.get("from") == "landing" else "accounts/signup.html"
        response = render(request, page, status_code=status, form=form, errors=errors)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@get("/companies/new")
async def new_company_page(request: Request, db: AsyncSession, user: User | None) -> Any:
    if user is None:
        return redirect(request, "/login?next=/companies/new")
    return render(request, "accounts/new_company.html", **await _page_user(request, db, user))


@post("/companies")
async def create_company(request: Request, db: AsyncSession, settings: Settings, user: User | None,
                         data: Form) -> Any:
    if user is None:
        return redirect(request, "/login")
    form = {"company": _field(data, "company")}
    if user.email_confirmed_at is None:
        throttle, ip = limits.for_request(request)
        if not await throttle.attempt(limits.CONFIRM_MAIL, user.email, ip):
            await _send_confirmation(db, settings, user)
        return render(request, "accounts/new_company.html", status_code=403, form=form,
                      errors={"form": _("Confirm your email address first: we have sent you a link. Open it, "
                                        "then create the company.")}, **await _page_user(request, db, user))
    throttle, ip = limits.for_request(request)
    wait = await throttle.attempt(limits.NEW_COMPANY, user.email, ip)
    if wait:
        return _too_many("accounts/new_company.html", request, wait, form=form, **await _page_user(request, db, user))
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
    return render(request, "accounts/login.html", form={"next": safe_path(next, "")},
                  **await _page_user(request, db, user))


@post("/login")
async def login(request: Request, db: AsyncSession, data: Form) -> Any:
    email, password = _field(data, "email").strip().lower(), _field(data, "password")
    form = {"email": email, "next": safe_path(_field(data, "next"), "")}
    throttle, ip = limits.for_request(request)
    try:
        wait = await throttle.wait(email, ip)
        if wait:  # not even checked: a guesser gets a few tries an hour, the owner a short wait
            return _too_many("accounts/login.html", request, wait, form=form, errors={"form": _(
                "Too many failed attempts. Try again in %(wait)s, or reset your password with the link below.",
                wait=_wait_text(wait))})
        user = await service.authenticate(db, email, password)
        if user is None:
            delay = await throttle.failed(email, ip)
            message = _("Wrong email or password.")
            if delay:
                message += " " + _("The next try is possible in %(wait)s.", wait=_wait_text(delay))
            return render(request, "accounts/login.html", status_code=401, form=form, errors={"form": message})
        await throttle.succeeded(email, ip)
    except RedisError:
        return render(request, "accounts/login.html", status_code=503, form=form,
                      errors={"form": _("Login is temporarily unavailable: our session store is down. "
                                        "Try again in a minute.")})
    _log_in(request, user)
    if form["next"]:
        return redirect(request, form["next"])
    memberships = await service.memberships_of(db, user.id)
    if not memberships and user.is_platform_admin:  # a platform admin with no company: straight to the console
        return redirect(request, "/admin/tenants")
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
    throttle, ip = limits.for_request(request)
    wait = await throttle.attempt(limits.FORGOT, email, ip)
    if wait:  # one mailbox must not be flooded, nor our mail sender used for it
        return _too_many("accounts/forgot.html", request, wait)
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
    # Whoever knew the old password is signed out everywhere; this browser gets a fresh session.
    await sessions.end_sessions(request.app.state.redis, request.app.state.settings, user.id)
    throttle, ip = limits.for_request(request)
    await throttle.succeeded(user.email, ip)  # the owner proved themselves: no more login delays
    _log_in(request, user)
    flash(request, _("Your password has been changed."))
    memberships = await service.memberships_of(db, user.id)
    if not memberships and user.is_platform_admin:  # a platform admin with no company: straight to the console
        return redirect(request, "/admin/tenants")
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
async def accept_invite(request: Request, db: AsyncSession, settings: Settings, user: User | None, token: str,
                        data: Form) -> Any:
    found = await service.get_invitation(db, token)
    if found is None:
        raise NotFoundException()
    invitation, tenant = found
    page = {"invitation": invitation, "tenant": tenant, "token": token, "form": {"name": _field(data, "name")}}
    throttle, ip = limits.for_request(request)
    wait = await throttle.attempt(limits.INVITATION, invitation.email, ip)
    if wait:
        existing = await service.get_user_by_email(db, invitation.email)
        return _too_many("accounts/invite.html", request, wait, has_account=existing is not None, **page,
                         **await _page_user(request, db, user))
    try:
        if user is None:
            existing = await service.get_user_by_email(db, invitation.email)
            if existing is not None:
                # The same password check as the login, under the same throttle.
                wait = await throttle.wait(invitation.email, ip)
                if wait:
                    raise FormError({"password": _("Too many failed attempts. Try again in %(wait)s.",
                                                   wait=_wait_text(wait))})
                user = await service.authenticate(db, invitation.email, _field(data, "password"))
                if user is None:
                    await throttle.failed(invitation.email, ip)
                    raise FormError({"password": _("Wrong password.")})
            else:
                # The link came to this address, so opening it confirms the address.
                user = await service.do_create_user(db, invitation.email, _field(data, "name"),
                                                    _field(data, "password"), locale=get_locale(), confirmed=True)
        await service.do_accept_invitation(db, invitation, user)
    except FormError as exc:
        if isinstance(exc, service.EmailNotConfirmed) and user is not None:
            await _send_confirmation(db, settings, user)
        existing = await service.get_user_by_email(db, invitation.email)
        return render(request, "accounts/invite.html", status_code=422, has_account=existing is not None,
                      errors=exc.errors, **page, **await _page_user(request, db, user))
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
    return redirect(request, safe_path(data.get("next"), "/"))


# ---- e-mail confirmation and the user's own account ------------------------------------------


@get("/confirm/{token:str}")
async def confirm_email(request: Request, db: AsyncSession, settings: Settings, user: User | None, token: str) -> Any:
    confirmed = await service.do_confirm_email(db, settings.secret_key, token)
    if confirmed is None:
        return render(request, "accounts/confirmed.html", status_code=404, ok=False,
                      **await _page_user(request, db, user))
    if user is not None and user.id == confirmed.id:
        flash(request, _("Your email address is confirmed."))
        return redirect(request, "/account")
    return render(request, "accounts/confirmed.html", ok=True, **await _page_user(request, db, user))


@post("/account/confirm")
async def resend_confirmation(request: Request, db: AsyncSession, settings: Settings, user: User | None) -> Any:
    if user is None:
        return redirect(request, "/login?next=/account")
    throttle, ip = limits.for_request(request)
    wait = await throttle.attempt(limits.CONFIRM_MAIL, user.email, ip)
    if wait:
        flash(request, _("Too many attempts. Try again in %(wait)s.", wait=_wait_text(wait)), "error")
    elif user.email_confirmed_at is None:
        await _send_confirmation(db, settings, user)
        flash(request, _("We have sent a confirmation link to %(email)s.", email=user.email))
    return redirect(request, "/account")


async def _account_page(request: Request, db: AsyncSession, user: User, status: int = 200, **extra: Any) -> Any:
    state = request.app.state
    listed = await sessions.list_sessions(state.redis, state.settings, user.id)
    return render(request, "accounts/account.html", status_code=status, sessions=listed,
                  current=sessions.current_id(request), **await _page_user(request, db, user), **extra)


@get("/account")
async def account_page(request: Request, db: AsyncSession, user: User | None) -> Any:
    if user is None:
        return redirect(request, "/login?next=/account")
    return await _account_page(request, db, user)


@post("/account/password")
async def change_password(request: Request, db: AsyncSession, user: User | None, data: Form) -> Any:
    if user is None:
        return redirect(request, "/login?next=/account")
    throttle, ip = limits.for_request(request)
    wait = await throttle.wait(user.email, ip)
    if wait:  # the current password is a password guess like any other
        return await _account_page(request, db, user, 429, errors={"current": _(
            "Too many failed attempts. Try again in %(wait)s.", wait=_wait_text(wait))})
    try:
        await service.do_change_password(db, user, _field(data, "current"), _field(data, "password"))
    except FormError as exc:
        if "current" in exc.errors:
            await throttle.failed(user.email, ip)
        return await _account_page(request, db, user, 422, errors=exc.errors)
    # Every other session ends; this one continues under a new id.
    await sessions.end_sessions(request.app.state.redis, request.app.state.settings, user.id)
    sessions.rotate(request)
    flash(request, _("Your password has been changed. You have been signed out everywhere else."))
    return redirect(request, "/account")


@post("/account/sessions/{session_id:str}/end")
async def end_session(request: Request, user: User | None, session_id: str) -> Any:
    if user is None:
        return redirect(request, "/login?next=/account")
    state = request.app.state
    if session_id == "others":
        count = await sessions.end_sessions(state.redis, state.settings, user.id, keep=sessions.current_id(request))
        flash(request, ngettext_("%(num)s other session ended.", "%(num)s other sessions ended.", count))
        return redirect(request, "/account")
    await sessions.end_sessions(state.redis, state.settings, user.id, only=session_id)
    if session_id == sessions.current_id(request):
        request.scope["session"] = {}
        return redirect(request, "/login")
    flash(request, _("The session has been ended."))
    return redirect(request, "/account")


WORKSPACE_HANDLERS = [team, invite]

account_handlers = [
    switch_language,
    landing, signup_page, signup, new_company_page, create_company, login_page, login, logout, companies,
    forgot_page, forgot, reset_page, reset, invite_page, accept_invite,
    confirm_email, resend_confirmation, account_page, change_password, end_session,
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
