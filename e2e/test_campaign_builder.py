"""The campaign builder in a browser (issue 19): the live count follows the criteria from the first
change, before any name is typed (the name is required only to save); and a refused sign-up keeps
the landing page. Screenshots in Russian and English at 1366×900 and 390×844 go to test-artifacts/."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ARTIFACTS
from e2e.test_foundation import signup, slug_of, unique_email, visit
import testkit

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def sql(db_url: str, query: str, params: dict | None = None) -> list[tuple]:
    """testkit.sql off Playwright's thread (its event loop runs there)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(testkit.sql, db_url, query, params).result()


def seed_clients(db_url: str, slug: str) -> None:
    """Five clients who may be e-mailed, with revenue 100, 200 … 500."""
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]
    sql(db_url, f"""INSERT INTO "{schema}".clients (last_name, first_name, email, consent, revenue_total)
        SELECT 'Builder', 'Client ' || n, 'b' || n || '@example.com',
               '{{"email": {{"at": "2026-01-01", "source": "test"}}}}'::jsonb, n * 100
        FROM generate_series(1, 5) AS n RETURNING 1""")


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def test_the_count_follows_the_criteria_before_a_name_is_typed(page: Page, db_url: str) -> None:
    signup(page)
    slug = slug_of(page)
    seed_clients(db_url, slug)
    visit(page, f"/t/{slug}/campaigns/new")
    count = page.locator("[data-count=eligible]")
    expect(count).to_have_text("5")
    name = page.locator("input[name=name]")
    expect(name).to_have_value("")

    page.locator("input[name=g0_revenue_min]").fill("250")  # typed, nothing else touched
    expect(count).to_have_text("3")
    page.locator("input[name=g0_revenue_max]").fill("400")
    expect(count).to_have_text("2")
    expect(name).to_have_value("")  # still no name, and the count moved twice

    # segments are checkboxes with their names; these clients have no scores yet, so none match
    segment = page.locator("input[type=checkbox][name=g0_segments]").first
    segment.check()
    expect(count).to_have_text("0")
    segment.uncheck()
    expect(count).to_have_text("2")

    # a control share above 50 % is said in the count box in words; saving needs the name
    page.locator("input[name=control_share_pct]").fill("60")
    expect(page.locator("#preview .alert-error")).to_contain_text("The control group share must be from 0 to 50 %.")
    page.locator("input[name=control_share_pct]").fill("20")
    expect(count).to_have_text("2")
    page.get_by_role("button", name="Save", exact=True).click()
    assert name.evaluate("el => el.validity.valueMissing")  # the browser asks for the name only now
    name.fill("Mid spenders")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/t/{slug}/campaigns/\d+$"))
    expect(page.locator("input[name=control_share_pct]")).to_have_value("20")
    expect(page.locator("[data-count=eligible]")).to_have_text("2")


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_builder_and_signup_error_screenshots(page: Page, db_url: str, lang: str) -> None:
    """The builder and a refused sign-up, as a new user sees them, at both sizes and without
    sideways scrolling; kept under test-artifacts/ for looking at."""
    ARTIFACTS.mkdir(exist_ok=True)
    signup(page)
    slug = slug_of(page)
    seed_clients(db_url, slug)
    with page.expect_navigation():  # the switch reloads the page, even in the same language
        page.locator(f"button[name=lang][value={lang}]").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        visit(page, f"/t/{slug}/campaigns/new")
        expect(page.locator("[data-count=eligible]")).to_have_text("5")
        page.locator("input[name=g0_revenue_min]").fill("250")
        expect(page.locator("[data-count=eligible]")).to_have_text("3")
        no_sideways_scroll(page)
        page.screenshot(path=str(ARTIFACTS / f"campaign-builder-{lang}-{size}.png"), full_page=True)
        # as seen while scrolling through the conditions: the count stays in sight
        page.locator("select[name=g0_birthday_from_month]").scroll_into_view_if_needed()
        expect(page.locator("[data-count=eligible]")).to_be_in_viewport()
        page.screenshot(path=str(ARTIFACTS / f"campaign-builder-{lang}-{size}-scrolled.png"))

    page.context.clear_cookies()  # a visitor: the landing page with its sign-up form, in the chosen language
    visit(page, "/")
    with page.expect_navigation():
        page.locator(f"button[name=lang][value={lang}]").click()
    hero = {"en": "Know every client. Keep the good ones.", "ru": "Знайте каждого клиента. Удерживайте лучших."}
    short = {"en": "The password must be at least 8 characters.", "ru": "Пароль должен быть не короче 8 символов."}
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        visit(page, "/")
        form = page.locator("#signup-form")
        form.locator("[name=company]").fill("Short Password Co")
        form.locator("[name=name]").fill("Owner")
        form.locator("[name=email]").fill(unique_email("short"))
        form.locator("[name=password]").fill("short")
        form.locator("button[type=submit]").click()
        expect(page.locator("#signup-form #e-password")).to_have_text(short[lang])
        expect(page.locator(".hero h1")).to_have_text(hero[lang])  # still the landing page around the form
        expect(page.locator("header.topbar")).to_be_visible()
        no_sideways_scroll(page)
        page.screenshot(path=str(ARTIFACTS / f"signup-error-{lang}-{size}.png"), full_page=True)


def test_the_import_dry_run_shows_the_rejected_rows_and_follows_a_new_mapping(page: Page, worker,
                                                                                tmp_path) -> None:
    """Upload a file whose bad row is past the rows shown; the box says so, in Russian; skipping the
    bad column starts a new check whose box follows itself to the new counts."""
    signup(page)
    slug = slug_of(page)
    with page.expect_navigation():
        page.locator("button[name=lang][value=ru]").click()
    rows = ["ФИО;Телефон"] + [f"Проверкин Клиент{n};{'12345' if n == 13 else f'+7916888{n:04d}'}" for n in range(2, 16)]
    path = tmp_path / "клиенты.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    visit(page, f"/t/{slug}/imports")
    page.locator("input[type=file]").set_input_files(str(path))
    page.locator("form[enctype] button.btn-primary").click()
    rejected = page.locator("[data-check=rejected]")
    expect(rejected).to_have_text("1", timeout=60000)
    expect(page.locator("[data-check=created]")).to_have_text("13")
    expect(page.locator(".check-reasons td").first).to_have_text("13")
    page.set_viewport_size(SIZES["desktop"])
    page.screenshot(path=str(ARTIFACTS / "import-dry-run-ru-desktop.png"), full_page=True)
    page.locator("select[name=col_1]").select_option("")  # the phone column skipped: a new check follows
    expect(rejected).to_have_text("0", timeout=60000)
    expect(page.locator("[data-check=created]")).to_have_text("14")
    page.set_viewport_size(SIZES["phone"])
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "import-dry-run-ru-phone.png"), full_page=True)
