"""CSRF in a real browser (issue 16, item 9): a form posted into a workspace without the token is
refused, also in a company whose address is `api` (registered before route words were reserved):
the CSRF exclusion `/api/` used to match anywhere in the path and switch the check off for /t/api/...
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Page

import testkit
from e2e.test_foundation import signup, visit

EVIL = "http://evil.test"


def sql(db_url: str, query: str, params: dict | None = None) -> list[tuple]:
    """testkit.sql off Playwright's thread (its event loop runs there)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(testkit.sql, db_url, query, params).result()


def forged(db_url: str) -> int:
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = 'api'")[0][0]
    return sql(db_url, f"SELECT count(*) FROM \"{schema}\".clients WHERE last_name = 'Forged'")[0][0]


def test_a_form_post_without_the_token_is_refused_in_every_workspace(page: Page, base_url: str,
                                                                     db_url: str) -> None:
    account = signup(page)
    sql(db_url, "UPDATE shared.tenants SET slug = 'api' WHERE slug = :s", {"s": account.slug})
    try:
        visit(page, "/t/api/clients")  # signed in, the company's list under its old address

        # Another site's page posts a form into the workspace, as a CSRF attack does.
        page.route(f"{EVIL}/**", lambda route: route.fulfill(content_type="text/html", body=f"""
            <form id="f" method="post" action="{base_url}/t/api/clients">
              <input name="last_name" value="Forged"><input name="first_name" value="Cross-site">
            </form><script>document.getElementById("f").submit()</script>"""))
        with page.expect_response(lambda r: r.url == f"{base_url}/t/api/clients"
                                  and r.request.method == "POST") as answer:
            page.goto(f"{EVIL}/")
        assert answer.value.status == 403

        # The same form from the workspace's own page (Origin matches), without the token: only the
        # token check stands in the way, and it must.
        visit(page, "/t/api/clients")
        with page.expect_response(lambda r: r.url == f"{base_url}/t/api/clients"
                                  and r.request.method == "POST") as answer:
            page.evaluate("""() => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = "/t/api/clients";
                for (const [name, value] of [["last_name", "Forged"], ["first_name", "Same-site"]]) {
                    const input = document.createElement("input");
                    input.name = name;
                    input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""")
        assert answer.value.status == 403
        assert answer.value.request.headers.get("origin") == base_url  # it was same-origin indeed
        assert forged(db_url) == 0

        # With the token (the page's own form), the workspace works under that address.
        visit(page, "/t/api/clients/new")
        page.locator("[name=last_name]").fill("Genuine")
        page.locator("[name=first_name]").fill("Client")
        page.locator("form.client-form").get_by_role("button", name="Save").click()
        page.wait_for_url(f"{base_url}/t/api/clients/*")
    finally:
        sql(db_url, "UPDATE shared.tenants SET slug = :s WHERE slug = 'api'", {"s": account.slug})
