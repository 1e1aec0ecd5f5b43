"""Every screen at 1366×900 and 390×844, in Russian and English: nothing scrolls sideways, every
primary button is inside the viewport, and on a Russian page there are no English words or raw codes
(the checks of tests/integration/test_russian_everywhere.py) and axe-core finds no serious or
critical accessibility violation (its rules do not depend on the language). Full-page screenshots
go to test-artifacts/<page>-<viewport>-<lang>.png.

One demo company serves the whole module; its owner is also a platform admin, so one login reaches
the workspace and the console. Pages another helper is still fixing carry a strict xfail (see
/work/notes/sweep-failures.md): the lead removes the marks when they pass.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from e2e.conftest import ARTIFACTS
from saas.demo import DemoResult, create_demo
from testkit import Browser as Http, cli, sql, with_database
from tests.integration.processes import wait_for
from tests.integration.test_russian_everywhere import problems

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
VIEWPORTS = {"desktop": (1366, 900), "phone": (390, 844)}
LANGS = ("ru", "en")


@dataclass
class Site:
    slug: str
    email: str
    password: str
    client: int
    mapping: int  # an import waiting for its columns
    report: int  # a finished import with rejected rows
    campaign: int
    tenant: int
    typed: tuple[str, ...]  # names people typed (companies, users): shown as typed, not translated


def workspace(path: str) -> Callable[[Site], str]:
    return lambda s: f"/t/{s.slug}{path.format(s=s)}"


# page name -> (who sees it: "anon" or "user", its address)
PAGES: dict[str, tuple[str, Callable[[Site], str]]] = {
    "landing": ("anon", lambda s: "/"),
    "signup-error": ("anon", lambda s: "/"),  # the form is sent with a taken e-mail (see open_page)
    "login": ("anon", lambda s: "/login"),
    "companies": ("user", lambda s: "/companies"),
    "account": ("user", lambda s: "/account"),
    "dashboard": ("user", workspace("/")),
    "clients": ("user", workspace("/clients")),
    "card": ("user", workspace("/clients/{s.client}")),
    "card-edit": ("user", workspace("/clients/{s.client}/edit")),
    "client-new": ("user", workspace("/clients/new")),
    "imports": ("user", workspace("/imports")),
    "import-mapping": ("user", workspace("/imports/{s.mapping}")),
    "import-report": ("user", workspace("/imports/{s.report}")),
    "validation": ("user", workspace("/analytics/validation")),
    "campaigns": ("user", workspace("/campaigns")),
    "campaign-builder": ("user", workspace("/campaigns/new")),
    "campaign": ("user", workspace("/campaigns/{s.campaign}")),
    "campaign-members": ("user", workspace("/campaigns/{s.campaign}/members")),
    "settings": ("user", workspace("/settings")),
    "team": ("user", workspace("/team")),
    "tokens": ("user", workspace("/tokens")),
    "dictionaries": ("user", workspace("/dictionaries")),
    "analytics-settings": ("user", workspace("/analytics/settings")),
    "audit": ("user", workspace("/audit")),
    "export": ("user", workspace("/export")),
    "privacy": ("user", workspace("/settings/privacy")),
    "console-tenants": ("user", lambda s: "/admin/tenants"),
    "console-tenant": ("user", lambda s: f"/admin/tenants/{s.tenant}"),
}

# Cases another helper is still fixing: (page, viewport, lang or "*") -> the reason, owner first; marked
# xfail(strict=True) so that the mark goes as soon as the page passes. Empty: every page passes.
KNOWN: dict[tuple[str, str, str], str] = {}


def cases() -> Iterator[Any]:
    for lang in LANGS:  # Russian first: each language has its own logged-in context
        for viewport in VIEWPORTS:
            for name in PAGES:
                reason = KNOWN.get((name, viewport, lang)) or KNOWN.get((name, viewport, "*"))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                yield pytest.param(name, viewport, lang, id=f"{name}-{viewport}-{lang}", marks=marks)


# ---- the company, its data, and the browsers -----------------------------------------------------


@pytest.fixture(autouse=True)
def _screenshot() -> Iterator[None]:
    """This module takes its own screenshots (named by page, viewport and language)."""
    yield


def _api(base_url: str, slug: str) -> httpx.Client:
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "sweep").stdout.strip()
    return httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def site(base_url: str, db_url: str, worker) -> Site:
    # off Playwright's thread: its event loop runs there, and the set-up uses asyncio.run
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(make_site, base_url, db_url).result()


def make_site(base_url: str, db_url: str) -> Site:
    demo: DemoResult = with_database(
        db_url, lambda db: create_demo(db, clients=150, years=2, seed=23, name="Проверка экранов"))
    sql(db_url, "UPDATE shared.users SET is_platform_admin = true WHERE email = :e", {"e": demo.owner_email})
    tenant, schema = sql(db_url, "SELECT id, schema_name FROM shared.tenants WHERE slug = :s", {"s": demo.slug})[0]
    client = sql(db_url, f'SELECT id FROM "{schema}".clients WHERE operations_count > 1 ORDER BY id LIMIT 1')[0][0]
    api = _api(base_url, demo.slug)
    try:
        # a finished import with mistakes (its report lists the rejected rows)
        ops = "Телефон;Дата;Сумма;Тип\n+79990000001;01.02.2025;abc;продажа\n+79990000002;01.02.2025;100;бартер\n"
        r = api.post("/imports", files={"file": ("операции.csv", ops.encode())}, data={"kind": "operations"})
        assert r.status_code == 202, r.text
        report = r.json()["id"]
        wait_for(lambda: api.get(f"/imports/{report}").json()["status"] in ("done", "failed"), 60, "the import")
        r = api.post("/campaigns", json={"name": "Весенняя рассылка", "channel": "sms", "criteria": {},
                                         "size": 60, "control_share": 0.2})
        assert r.status_code in (200, 201), r.text
        campaign = r.json()["id"]
        assert api.post(f"/campaigns/{campaign}/build").status_code == 202
        wait_for(lambda: api.get(f"/campaigns/{campaign}").json()["status"] == "ready", 60, "the campaign list")
    finally:
        api.close()
    # an import waiting for its columns: uploaded through the page, read by the worker
    with Http(base_url) as b:
        assert b.form("/login", {"email": demo.owner_email, "password": demo.password}).status_code == 303
        clients = "Фамилия;Имя;Телефон\nИванов;Иван;+79161234567\nПетров;;12\n"
        r = b.post(f"/t/{demo.slug}/imports", data={"kind": "clients", "_csrf_token": b.csrf()},
                   files={"file": ("клиенты.csv", clients.encode())})
        assert r.status_code == 303, r.text
        url = r.headers["location"]
        wait_for(lambda: 'id="mapping"' in b.get(url).text, 60, "the file to be read", every=0.3)
        mapping = int(url.rsplit("/", 1)[1])
    typed = {r[0] for r in sql(db_url, "SELECT name FROM shared.tenants UNION SELECT name FROM shared.users") if r[0]}
    return Site(slug=demo.slug, email=demo.owner_email, password=demo.password, client=client, mapping=mapping,
                report=report, campaign=campaign, tenant=tenant, typed=tuple(sorted(typed, key=len, reverse=True)))


def _switch_language(page: Page, lang: str, where: str) -> None:
    page.goto(where)
    with page.expect_response(lambda r: r.url.endswith("/lang")):  # before the next request: one session
        page.locator(f"button[name=lang][value={lang}]").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)


def _log_in(page: Page, site: Site) -> None:
    page.goto("/login")
    form = page.locator("form[action='/login']")
    form.locator("[name=email]").fill(site.email)
    form.locator("[name=password]").fill(site.password)
    form.locator("button[type=submit], button:not([type])").last.click()
    expect(page).not_to_have_url(re.compile(r"/login$"))
    page.goto("/admin/tenants")  # the console asks for the password once more
    page.locator("form[action='/admin/login'] [name=password]").fill(site.password)
    with page.expect_response(lambda r: "/admin/login" in r.url and r.request.method == "POST"):
        page.locator("form[action='/admin/login'] button").click()
    expect(page).to_have_url(re.compile(r"^[^?]*/admin/tenants$"))


@pytest.fixture(scope="module")
def pages(browser: Browser, base_url: str, site: Site) -> Iterator[dict[tuple[str, str], Page]]:
    """One page per (who, language), logged in where needed; the tests change its viewport."""
    contexts: list[BrowserContext] = []
    made: dict[tuple[str, str], Page] = {}
    for lang in LANGS:
        for who in ("anon", "user"):
            ctx = browser.new_context(base_url=base_url, locale="ru-RU" if lang == "ru" else "en-US")
            contexts.append(ctx)
            page = ctx.new_page()
            if who == "user":
                _log_in(page, site)  # the login takes the user's language: switch after it
            _switch_language(page, lang, "/account" if who == "user" else "/login")
            made[who, lang] = page
    yield made
    for ctx in contexts:
        ctx.close()


# ---- the checks -------------------------------------------------------------------------------------

# What names an element in a message: its tag, classes and (for buttons) text.
DESCRIBE = """el => {
  const classes = typeof el.className === 'string' && el.className.trim()
    ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
  const text = (el.innerText || el.textContent || el.value || el.getAttribute('aria-label') || '').trim();
  return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes + (text ? ` "${text.slice(0, 40)}"` : '');
}"""

# Buttons a person must reach: the primary ones and every form's submit buttons.
BUTTONS_OUTSIDE = """() => {
  const describe = __DESCRIBE__;
  const width = window.innerWidth;
  const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const buttons = document.querySelectorAll(
    '.btn-primary, form button:not([type=button]):not([type=reset]), form input[type=submit]');
  return [...buttons].filter(shown).map(el => [el, el.getBoundingClientRect()])
    .filter(([, r]) => r.left < -1 || r.right > width + 1)
    .map(([el, r]) => `${describe(el)} spans x ${Math.round(r.left)}..${Math.round(r.right)} of ${width}`);
}""".replace("__DESCRIBE__", DESCRIBE)

# The outermost elements that stick out on the right (their parent does not).
WIDEST = """() => {
  const describe = __DESCRIBE__;
  const width = window.innerWidth;
  return [...document.querySelectorAll('body *')].filter(el => el.getClientRects().length)
    .map(el => [el, el.getBoundingClientRect()]).filter(([, r]) => r.right > width + 1)
    .filter(([el]) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= width + 1)
    .slice(0, 5).map(([el, r]) => `${describe(el).split(' "')[0]} right edge ${Math.round(r.right)}`);
}""".replace("__DESCRIBE__", DESCRIBE)

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.impact} ${v.id}: ${v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(', ')}`
              + (v.nodes.length > 4 ? ` (+${v.nodes.length - 4} more)` : ''));
}"""


def open_page(page: Page, name: str, site: Site) -> None:
    path = PAGES[name][1](site)
    response = page.goto(path)
    assert response is not None and response.status == 200, (name, response and response.status)
    assert page.url.split("://", 1)[1].split("/", 1)[1] == path.lstrip("/"), f"{path} went to {page.url}"
    if name == "signup-error":  # a taken e-mail: the page stays, the error shows in place
        form = page.locator("form[action='/signup']")
        form.locator("[name=company]").fill("Ещё одна компания")
        form.locator("[name=name]").fill("Анна")
        form.locator("[name=email]").fill(site.email)
        form.locator("[name=password]").fill("correct horse 1")
        form.locator("button[type=submit]").click()
        expect(page.locator("#signup-form .has-error, #signup-form [role=alert]").first
               ).to_be_visible()
    page.wait_for_load_state("networkidle")


def axe_violations(page: Page) -> list[str]:
    # The page's CSP allows no inline script, so axe goes in through the DevTools protocol.
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    return page.evaluate(AXE_RUN)


@pytest.mark.parametrize(("name", "viewport", "lang"), list(cases()))
def test_screen(pages: dict[tuple[str, str], Page], site: Site, name: str, viewport: str, lang: str) -> None:
    page = pages[PAGES[name][0], lang]
    width, height = VIEWPORTS[viewport]
    page.set_viewport_size({"width": width, "height": height})
    open_page(page, name, site)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{viewport}-{lang}.png"), full_page=True)
    found: list[str] = []
    scroll = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if scroll[0] > scroll[1] + 1:
        found.append(f"scrolls sideways: {scroll[0]} px wide in {scroll[1]} ({'; '.join(page.evaluate(WIDEST))})")
    found += [f"button outside the viewport: {b}" for b in page.evaluate(BUTTONS_OUTSIDE)]
    if lang == "ru":  # axe's rules do not depend on the language: once per page and viewport is enough
        found += problems(page.content(), quoting_file=name.startswith("import-"), data=site.typed)
        found += [f"axe {v}" for v in axe_violations(page)]
    assert not found, f"{name} at {width}×{height} ({lang}):\n" + "\n".join(found)


def test_console_figures_update_while_the_list_is_open(pages: dict[tuple[str, str], Page], site: Site,
                                                        db_url: str) -> None:
    """Figures never measured: the list shows "—", queues a measurement and swaps the new figures in
    (tiles and rows) by itself, without a reload."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(sql, db_url, "UPDATE shared.tenants SET stats = '{}', stats_at = NULL WHERE id = :i",
                    {"i": site.tenant}).result()
    page = pages["user", "en"]
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"/admin/tenants?q={site.slug}")
    row = page.locator("#tenant-rows tbody tr").first
    expect(row.locator("td[data-label=Clients]")).to_have_text("—")
    expect(page.locator("[data-usage]")).to_have_attribute("data-usage", "updating")
    expect(row.locator("td[data-label=Clients]")).to_have_text("150", timeout=30000)
    expect(page.locator("[data-usage]")).to_have_attribute("data-usage", "current")
    expect(page.locator(".usage-age")).to_contain_text("Figures updated")
    assert page.url.endswith(f"/admin/tenants?q={site.slug}")  # polled in place, not navigated
