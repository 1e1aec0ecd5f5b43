"""Redirects stay on our origin in a real browser (issue 16, item 6).

The login form is htmx-boosted, so its redirect is an HX-Redirect header that the browser's URL
parser reads: it drops a tab and turns `/\\t/evil.example` into `//evil.example`. Any request
that would leave for evil.example is recorded and aborted, so the test needs no network.
"""
from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from e2e.test_foundation import fill_login, logout, signup, visit


def test_login_with_a_hostile_next_stays_on_our_origin(page: Page, base_url: str) -> None:
    left: list[str] = []

    def refuse(route: Route) -> None:
        left.append(route.request.url)
        route.abort()

    page.context.route(re.compile(r"^https?://evil\.example"), refuse)
    owner = signup(page)
    logout(page)

    fill_login(page, owner.email, owner.password, path="/login?next=/%09/evil.example/phish")
    expect(page).to_have_url(f"{base_url}/t/{owner.slug}/")
    expect(page.locator("h1")).to_have_text(owner.company)
    assert left == []

    # The language switch with a backslash target (as a crafted form would send it).
    page.locator("form[action='/lang'] input[name=next]").evaluate("el => el.value = '/\\\\evil.example'")
    page.locator("form[action='/lang'] button[value=ru]").click()
    expect(page).to_have_url(f"{base_url}/")
    assert left == []


def test_account_page_lists_sessions_and_ends_the_other_one(page: Page, new_context, base_url: str) -> None:
    """Sign-in and sessions in the browser: the account page shows where you are signed in, and
    ending the other browser's session signs that browser out on its next click."""
    owner = signup(page)
    other = new_context().new_page()
    fill_login(other, owner.email, owner.password)
    expect(other).to_have_url(f"{base_url}/t/{owner.slug}/")

    page.locator("header a.who").click()
    expect(page).to_have_url(f"{base_url}/account")
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="this browser")).to_have_count(1)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Sign out everywhere else").click()
    expect(page.locator("#flash")).to_contain_text("1 other session ended.")
    expect(rows).to_have_count(1)

    visit(other, f"/t/{owner.slug}/clients")
    expect(other).to_have_url(re.compile(r"/login\?next="))
