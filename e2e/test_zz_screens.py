import re, secrets
from testkit import cli
from tests.integration.test_clients_web import create_client

def cookies_to(page, browser, base_url):
    page.context.clear_cookies()
    page.context.add_cookies([{"name": k, "value": v, "url": base_url} for k, v in browser.cookies.items()])

def test_screens(page, make_http, base_url):
    email = f"root-{secrets.token_hex(3)}@example.com"
    cli("admin", "create", "--email", email, input="console pass 123\n")
    owner = make_http()
    slug = owner.signup("Screens Co")
    create_client(owner, slug)
    admin = make_http()
    admin.form("/login", {"email": email, "password": "console pass 123"})
    cookies_to(page, admin, base_url)
    page.goto("/admin/tenants")
    page.fill("[name=password]", "console pass 123"); page.click("button:has-text('Open the console')")
    page.wait_for_selector("h1:has-text('Companies')")
    page.screenshot(path="/tmp/shot-admin-tenants.png", full_page=True)
    page.click(f"a:has-text('Screens Co')"); page.wait_for_selector("h1:has-text('Screens Co')")
    page.fill("[name=reason]", "unpaid invoice"); page.click("button:has-text('Suspend')"); page.wait_for_selector("button:has-text('Resume')")
    page.screenshot(path="/tmp/shot-admin-tenant.png", full_page=True)
    for path in ("health", "audit"):
        page.goto(f"/admin/{path}")
        page.screenshot(path=f"/tmp/shot-admin-{path}.png", full_page=True)
    page.goto("/admin/tenants/1/delete")
    page.screenshot(path="/tmp/shot-admin-delete.png", full_page=True)
    cookies_to(page, owner, base_url)
    page.goto(f"/t/{slug}/")
    page.screenshot(path="/tmp/shot-suspended.png", full_page=True)
    cli("tenants", "resume", slug)
    owner.form(f"/t/{slug}/team/invite", {"email": "pending@example.com", "role": "viewer"})
    page.goto(f"/t/{slug}/team")
    page.screenshot(path=f"/tmp/shot-team.png", full_page=True)
    page.goto(f"/t/{slug}/settings")
    page.screenshot(path=f"/tmp/shot-settings.png", full_page=True)
    page.goto(f"/t/{slug}/tokens")
    page.fill("form[action$='/tokens'] [name=name]", "website"); page.click("button:has-text('Create the token')"); page.wait_for_selector("[data-token]")
    page.screenshot(path="/tmp/shot-token-created.png", full_page=True)
