"""Running the service in a real browser: a platform admin suspends a company and reactivates it;
an owner creates an API token (shown once) and revokes it; a marketer cannot open the team page;
an owner exports everything with a progress bar and downloads the ZIP."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect

from e2e.conftest import ARTIFACTS
from e2e.test_foundation import (
    PASSWORD, NewContext, fill_login, logout, mail_link, signup, unique_company, unique_email, visit,
)
from testkit import platform_admin

ADMIN_PASSWORD = "platform admin pass 1"


@pytest.fixture(scope="module")
def admin_email() -> str:
    return platform_admin(ADMIN_PASSWORD)


def accept_dialogs(page: Page) -> None:
    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)


def open_console(page: Page, email: str) -> None:
    """Log in, then confirm the password once more: the console has its own guard."""
    fill_login(page, email, ADMIN_PASSWORD)
    expect(page).not_to_have_url(re.compile(r"/login$"))
    visit(page, "/admin/tenants")
    expect(page.locator("h1")).to_have_text("Platform console")
    page.locator("form[action='/admin/login'] [name=password]").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Open the console").click()
    expect(page).to_have_url(re.compile(r"/admin/tenants$"))


def test_admin_suspends_and_reactivates_a_company(page: Page, new_context: NewContext, admin_email: str) -> None:
    owner = signup(page, unique_company("Suspend"))

    admin = new_context().new_page()
    open_console(admin, admin_email)
    admin.locator("input[name=q]").fill(owner.slug)
    admin.locator("input[name=q]").press("Enter")
    admin.get_by_role("link", name=owner.company).click()
    expect(admin.locator("h1")).to_have_text(owner.company)
    admin.locator("[name=reason]").fill("Unpaid invoice")
    asked: list[str] = []
    admin.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    admin.get_by_role("button", name="Suspend").click()  # asks first: suspending signs everyone out
    expect(admin.locator(".page-head .badge")).to_have_text("suspended")
    assert asked and asked[0].startswith(f"Suspend {owner.company}?")

    # The company's user, already in, and after logging in again, sees the suspension page.
    response = page.goto(f"/t/{owner.slug}/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text(f"The workspace of {owner.company} is suspended")
    expect(page.locator("main")).to_contain_text("Your data is kept.")
    logout(page)  # waits for the logout to land before the next page.goto (else ERR_ABORTED)
    fill_login(page, owner.email, owner.password)
    expect(page).not_to_have_url(re.compile(r"/login$"))
    visit(page, f"/t/{owner.slug}/", status=403)
    expect(page.locator("h1")).to_contain_text("is suspended")

    admin.get_by_role("button", name="Resume").click()
    expect(admin.locator(".page-head .badge")).to_have_text("active")
    visit(page, f"/t/{owner.slug}/")
    expect(page.locator("h1")).to_have_text(owner.company)


def test_owner_creates_a_token_once_and_revokes_it(page: Page) -> None:
    owner = signup(page, unique_company("Tokens"))
    accept_dialogs(page)
    visit(page, f"/t/{owner.slug}/tokens")
    form = page.locator(f"form[action='/t/{owner.slug}/tokens']")
    form.locator("[name=name]").fill("website orders")
    form.locator("select[name=role]").select_option("viewer")
    form.get_by_role("button", name="Create the token").click()
    shown = page.locator(".token-once input[data-token]")
    expect(shown).to_be_visible()
    secret = shown.input_value()
    assert len(secret) > 20
    api = page.request.get("/api/v1/clients", headers={"Authorization": f"Bearer {secret}"})
    assert api.status == 200

    # Shown once: the list has its prefix only, and the secret is nowhere on the page again.
    visit(page, f"/t/{owner.slug}/tokens")
    expect(page.locator(".token-once")).to_have_count(0)
    assert secret not in page.content()
    row = page.locator("table.table tbody tr").filter(has_text="website orders")
    expect(row).not_to_contain_text("never")  # it was used a moment ago: "last used" shows when
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#flash")).to_contain_text("The token “website orders” has been revoked.")
    expect(page.locator("table.table tbody tr").filter(has_text="website orders").locator(".badge-bad")).to_have_text(
        "revoked")
    assert page.request.get("/api/v1/clients", headers={"Authorization": f"Bearer {secret}"}).status == 401


def test_marketer_cannot_open_the_team_page(page: Page, new_context: NewContext, base_url: str) -> None:
    owner = signup(page, unique_company("Roles"))
    invitee = unique_email("marketer")
    visit(page, f"/t/{owner.slug}/team")
    form = page.locator(f"form[action='/t/{owner.slug}/team/invite']")
    form.locator("[name=email]").fill(invitee)
    form.locator("select[name=role]").select_option("marketer")
    form.get_by_role("button", name="Send the invitation").click()
    expect(page.locator("#flash")).to_contain_text(f"Invitation sent to {invitee}.")
    link = mail_link(page, base_url, invitee, f"invites you to {owner.company}", "/invite/")

    guest = new_context().new_page()
    visit(guest, link)
    form = guest.locator("form[action^='/invite/']")
    form.locator("[name=name]").fill("Mia Marketer")
    form.locator("[name=password]").fill(PASSWORD)
    form.get_by_role("button", name="Create the account and join").click()
    expect(guest.locator("h1")).to_have_text(owner.company)
    expect(guest.locator(f"nav a[href='/t/{owner.slug}/settings']")).to_have_count(0)  # not offered
    for path in ("team", "tokens", "export", "audit"):
        visit(guest, f"/t/{owner.slug}/{path}", status=403)
        expect(guest.locator("main")).to_contain_text("Your role does not allow this.")


def test_owner_exports_everything_with_progress_and_downloads(page: Page, worker, tmp_path: Path) -> None:
    owner = signup(page, unique_company("Export"))
    visit(page, f"/t/{owner.slug}/clients/new")
    page.locator("[name=last_name]").fill("Кузнецова")
    page.locator("[name=first_name]").fill("Анна")
    page.locator("[name=phone]").fill("8 916 555 12 34")
    page.get_by_role("button", name=re.compile("Save|Create")).first.click()
    expect(page.locator("h1")).to_contain_text("Кузнецова")

    visit(page, f"/t/{owner.slug}/settings")
    page.locator("nav.tabs").get_by_role("link", name="Export").click()
    expect(page.locator("h1")).to_have_text("Export everything")
    page.get_by_role("button", name="Build the export").click()
    expect(page.locator("#flash")).to_contain_text("The export is being built.")
    download_link = page.get_by_role("link", name="Download the ZIP")
    expect(download_link).to_be_visible(timeout=30_000)  # the htmx poll swaps the bar for the link
    expect(page.locator(".export-job").first).to_contain_text("Clients: 1, operations: 0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-page.png"), full_page=True)
    with page.expect_download() as info:
        download_link.click()
    path = tmp_path / "export.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        assert "Кузнецова" in zf.read("clients.csv").decode("utf-8-sig")

    visit(page, f"/t/{owner.slug}/audit?action=export.")
    expect(page.locator('#audit-rows [data-action="export.downloaded"]')).to_have_text("Export downloaded")
