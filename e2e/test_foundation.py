"""The foundation in a real browser: signup, tenant isolation, login, invitations, password reset
and the language switch."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from playwright.sync_api import BrowserContext, Page, expect

PASSWORD = "correct horse 1"
NewContext = Callable[..., BrowserContext]  # pytest-playwright's new_context fixture
WORKSPACE_URL = re.compile(r"/t/([a-z0-9-]+)/$")  # no named group: expect() hands it to JavaScript


@dataclass
class Account:
    company: str
    email: str
    password: str
    slug: str


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def unique_company(prefix: str = "Company") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def slug_of(page: Page) -> str:
    match = WORKSPACE_URL.search(page.url)
    assert match, f"not in a workspace: {page.url}"
    return match[1]


def visit(page: Page, path: str, status: int = 200) -> None:
    """Open a page by its address and check it arrives as an HTML page with the expected status."""
    response = page.goto(path)
    assert response is not None, path
    assert response.status == status, f"GET {path}: {response.status}, expected {status}"
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("text/html"), f"GET {path}: Content-Type {content_type!r}, expected text/html"


def signup(page: Page, company: str | None = None, email: str | None = None, password: str = PASSWORD) -> Account:
    """Sign up from the landing page and land in the new company's workspace."""
    company = company or unique_company()
    email = email or unique_email("owner")
    visit(page, "/")
    form = page.locator("form[action='/signup']")
    form.locator("[name=company]").fill(company)
    form.locator("[name=name]").fill("Test Owner")
    form.locator("[name=email]").fill(email)
    form.locator("[name=password]").fill(password)
    form.get_by_role("button", name="Create the workspace").click()
    expect(page).to_have_url(WORKSPACE_URL)
    expect(page.locator("h1")).to_have_text(company)
    return Account(company=company, email=email, password=password, slug=slug_of(page))


def fill_login(page: Page, email: str, password: str, path: str = "/login") -> None:
    visit(page, path)
    form = page.locator("form[action='/login']")
    form.locator("[name=email]").fill(email)
    form.locator("[name=password]").fill(password)
    form.get_by_role("button", name="Log in", exact=True).click()


def login(page: Page, account: Account) -> None:
    fill_login(page, account.email, account.password)
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(account.slug)}/$"))
    expect(page.locator("h1")).to_have_text(account.company)


def logout(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    expect(page.locator("header.topbar").get_by_role("link", name="Log in")).to_be_visible()


def mail_link(page: Page, base_url: str, recipient: str, subject: str, path: str) -> str:
    """The link in the newest outbox mail to `recipient` with `subject`, pointing under `path`."""
    visit(page, "/dev/outbox")
    expect(page.locator("h1")).to_have_text("Development outbox")
    mail = page.locator("article.mail").filter(has_text=recipient).filter(has_text=subject).first
    expect(mail).to_be_visible()
    body = mail.locator(".mail-body").inner_text()
    match = re.search(rf"{re.escape(base_url)}{re.escape(path)}[A-Za-z0-9_-]+", body)
    assert match, f"no {path} link in the mail:\n{body}"
    return match[0]


# ---- tests -------------------------------------------------------------------------------------


def test_signup_two_companies_are_isolated(page: Page, new_context: NewContext) -> None:
    first = signup(page, unique_company("Alpha"))
    expect(page.locator(".page-head .badge")).to_have_text("owner")

    other = new_context().new_page()
    second = signup(other, unique_company("Beta"))
    assert second.slug != first.slug

    switcher = other.locator("details.switcher")
    switcher.locator("summary").click()
    menu = switcher.locator(".menu")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitem", name=re.compile(re.escape(second.company)))).to_be_visible()
    expect(menu).not_to_contain_text(first.company)
    expect(menu.locator(f"a[href='/t/{first.slug}/']")).to_have_count(0)

    visit(other, f"/t/{first.slug}/", status=404)
    expect(other.locator("h1")).to_have_text("Page not found.")
    expect(other.locator("body")).not_to_contain_text(first.company)

    # The first company's owner still sees only their own company.
    page.reload()
    expect(page.locator("details.switcher .menu")).not_to_contain_text(second.company)


def test_logout_and_login_again(page: Page) -> None:
    account = signup(page)
    logout(page)

    # Logged out, the workspace sends to the login page.
    visit(page, f"/t/{account.slug}/")
    expect(page).to_have_url(re.compile(r"/login\?next=/t/"))
    expect(page.locator("h1")).to_have_text("Log in")

    login(page, account)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.locator("header .who")).to_have_text("Test Owner")


def test_invited_user_joins_with_role(page: Page, new_context: NewContext, base_url: str) -> None:
    owner = signup(page, unique_company("Invite"))
    invitee = unique_email("marketer")

    visit(page, f"/t/{owner.slug}/team")
    expect(page.locator("h1")).to_have_text("Team")
    form = page.locator(f"form[action='/t/{owner.slug}/team/invite']")
    form.locator("[name=email]").fill(invitee)
    form.locator("select[name=role]").select_option("marketer")
    form.get_by_role("button", name="Send the invitation").click()
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(owner.slug)}/team$"))
    expect(page.locator("#flash")).to_contain_text(f"Invitation sent to {invitee}.")
    expect(page.locator("ul.plain")).to_contain_text(invitee)

    link = mail_link(page, base_url, invitee, f"invites you to {owner.company}", "/invite/")

    guest = new_context().new_page()
    visit(guest, link)
    expect(guest.locator("h1")).to_have_text(f"Join {owner.company}")
    expect(guest.get_by_role("button", name="Log out")).to_have_count(0)
    form = guest.locator("form[action^='/invite/']")
    form.locator("[name=name]").fill("Mia Marketer")
    form.locator("[name=password]").fill(PASSWORD)
    form.get_by_role("button", name="Create the account and join").click()

    expect(guest).to_have_url(re.compile(rf"/t/{re.escape(owner.slug)}/$"))
    expect(guest.locator("h1")).to_have_text(owner.company)
    expect(guest.locator(".page-head .badge")).to_have_text("marketer")
    expect(guest.locator("header .who")).to_have_text("Mia Marketer")

    # The owner's team page now lists the new member with their role.
    visit(page, f"/t/{owner.slug}/team")
    row = page.locator("table.table tbody tr").filter(has_text=invitee)
    expect(row).to_contain_text("Mia Marketer")
    expect(row.locator(".badge")).to_have_text("marketer")


def test_password_reset(page: Page, base_url: str) -> None:
    account = signup(page)
    logout(page)

    visit(page, "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(re.compile(r"/forgot$"))
    page.locator("form[action='/forgot'] [name=email]").fill(account.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("#flash")).to_contain_text("we have sent a reset link")

    link = mail_link(page, base_url, account.email, "Reset your Kartoteka password", "/reset/")
    visit(page, link)
    expect(page.locator("h1")).to_have_text("Choose a new password")
    new_password = "battery staple 2"
    page.locator("form[action^='/reset/'] [name=password]").fill(new_password)
    page.get_by_role("button", name="Save the password").click()
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(account.slug)}/$"))
    expect(page.locator("#flash")).to_contain_text("Your password has been changed.")

    # The link works once.
    visit(page, link, status=404)
    expect(page.locator("h1")).to_have_text("This link has expired")

    visit(page, f"/t/{account.slug}/")
    logout(page)
    fill_login(page, account.email, account.password)
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    # The error page replaces the login page; it is not nested inside it.
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("form[action='/login']")).to_have_count(1)

    account.password = new_password
    login(page, account)


def test_switch_language(page: Page) -> None:
    account = signup(page)
    html = page.locator("html")
    lang_form = page.locator("form.lang")
    expect(html).to_have_attribute("lang", "en")
    expect(lang_form.locator("button[value=en]")).to_have_class(re.compile(r"\bactive\b"))

    lang_form.locator("button[value=ru]").click()
    expect(html).to_have_attribute("lang", "ru")
    expect(lang_form.locator("button[value=ru]")).to_have_class(re.compile(r"\bactive\b"))
    expect(lang_form.locator("button[value=en]")).not_to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("form[action='/logout'] button")).to_have_text("Выйти")
    # Back on the page the switch was pressed on.
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(account.slug)}/$"))
    expect(page.locator("h1")).to_have_text(account.company)

    # The choice sticks across pages.
    visit(page, f"/t/{account.slug}/team")
    expect(html).to_have_attribute("lang", "ru")

    lang_form.locator("button[value=en]").click()
    expect(html).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(account.slug)}/team$"))
    expect(lang_form.locator("button[value=en]")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
