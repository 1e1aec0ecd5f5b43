"""Page rendering: one function builds every page's context, so no page forgets a part of it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from jinja2 import StrictUndefined
from markupsafe import Markup
from litestar import MediaType, Request
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.plugins.htmx import HTMXDetails
from litestar.response import Redirect, Response, Template
from litestar.template.config import TemplateConfig

from saas.core import clock
from saas.core import i18n
from saas.core.web.redirects import safe_path

ROOT = Path(__file__).resolve().parents[3]


def configure_engine(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension just above
        lambda s: i18n.translations(i18n.get_locale()).gettext(s),
        lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n),
        newstyle=True,
    )
    env.globals["_"] = template_gettext  # after the extension, which installs a slower `_`
    env.undefined = StrictUndefined
    env.filters.update(
        date=i18n.fmt_date, datetime=i18n.fmt_datetime, money=i18n.fmt_money, number=i18n.fmt_number,
        percent=i18n.fmt_percent,
    )
    env.globals.update(
        get_locale=i18n.get_locale, LOCALES=i18n.LOCALES, language_name=i18n.language_name,
        role_label=role_label, workspace_nav=workspace_nav, today=clock.today, **DOMAIN_GLOBALS,
    )


_TRANSLATED: dict[str, dict[str, Markup]] = {locale: {} for locale in i18n.LOCALES}


def template_gettext(message: str, **variables: Any) -> Markup:
    """`_()` in templates: what Jinja's newstyle gettext returns (the translation as Markup, then
    `%` the variables, escaped), with a plain message's result kept per locale. A page calls it
    about a hundred times; Jinja's own goes through three calls and a `%` on every one."""
    locale = i18n.get_locale()
    if variables or type(message) is not str:
        return _catalog_markup(locale, message) % variables
    known = _TRANSLATED[locale]
    found = known.get(message)
    if found is None:
        found = known[message] = _catalog_markup(locale, message) % {}
    return found


def _catalog_markup(locale: str, message: str) -> Markup:
    # Our own catalog's text is trusted markup, as Jinja's gettext treats it; the variables are escaped by `%`.
    return Markup(i18n.translations(locale).gettext(message))  # noqa: S704


# Template helpers a higher domain provides (analytics: score labels and reasons), registered at
# startup by saas/wiring.py, so this module never imports a domain.
DOMAIN_GLOBALS: dict[str, Any] = {}


def register_globals(**helpers: Any) -> None:
    DOMAIN_GLOBALS.update(helpers)


def role_label(role: str) -> str:
    labels = {"owner": i18n._("owner"), "admin": i18n._("admin"), "marketer": i18n._("marketer"),
              "viewer": i18n._("viewer")}
    return labels.get(role, role)


# Each domain adds its section here: (path under /t/{slug}, label, minimum role).
NAV: list[tuple[str, str, str]] = [
    ("/clients", i18n.lazy("Clients"), "viewer"),
    ("/campaigns", i18n.lazy("Campaigns"), "viewer"),
    ("/imports", i18n.lazy("Imports"), "marketer"),
    # One entry for the company account; its hub links Team, API tokens, Dictionaries, Analytics, Audit log.
    ("/settings", i18n.lazy("Settings"), "admin"),
]


class Member(Protocol):
    """A workspace context (accounts' TenantCtx) as far as the navigation needs it."""

    def allows(self, role: str) -> bool: ...


def workspace_nav(ctx: Member) -> list[tuple[str, str]]:
    return [(path, i18n._(label)) for path, label, role in NAV if ctx.allows(role)]


def template_config() -> TemplateConfig:
    return TemplateConfig(directory=ROOT / "templates", engine=JinjaTemplateEngine, engine_callback=configure_engine)


def is_htmx(request: Request) -> bool:
    """A fragment request: htmx, but not a history restore (which needs the whole page)."""
    details = HTMXDetails(request)
    return bool(details) and not details.history_restore_request


def flash(request: Request, message: str, level: str = "success") -> None:
    session = request.scope.get("session")
    if not isinstance(session, dict):  # a path without the session middleware: the message goes nowhere
        session = request.scope["session"] = {}
    session.setdefault("_flash", []).append([level, message])


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    private: bool = True,
    **context: Any,
) -> Template:
    session = request.scope.get("session") or {}
    flashes = session.pop("_flash", []) if isinstance(session, dict) else []
    base: dict[str, Any] = {
        "request": request,
        "user": None,
        "ctx": None,
        "memberships": [],
        "flashes": flashes,
        "dev": not request.app.state.settings.production,
        "errors": {},
        "form": {},
    }
    base.update(context)
    if not base["memberships"] and base["ctx"] is not None:  # a workspace page: the switcher's companies
        base["memberships"] = getattr(base["ctx"], "memberships", [])
    base.setdefault("current_path", current_path(request))
    headers = {"Vary": "HX-Request, Cookie"}
    if private:
        headers["Cache-Control"] = "private, no-store"
    if is_htmx(request) and status_code >= 400 and not template.rsplit("/", 1)[-1].startswith("_"):
        # A whole page answering a boosted form (a refused login, say) replaces the page, rather
        # than landing in the flash area where fragments of errors go.
        headers.update({"HX-Retarget": "body", "HX-Reswap": "innerHTML"})
    return Template(template_name=template, context=base, status_code=status_code, headers=headers,
                    media_type=MediaType.HTML)


def current_path(request: Request) -> str:
    """The path as the browser sent it (Litestar strips a trailing slash from request.url)."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.url.path


def redirect(request: Request, path: str) -> Redirect | Response:
    """A 303 for plain forms; htmx follows HX-Redirect with a full page load.

    Every target passes `safe_path`: only a same-origin path, re-encoded, ever leaves here."""
    path = safe_path(path, "/")
    if is_htmx(request):
        # A 303 would be followed inside the XHR; HX-Redirect makes htmx load the page itself.
        return Response(content=b"", status_code=200, headers={"HX-Redirect": path})
    return Redirect(path, status_code=303)
