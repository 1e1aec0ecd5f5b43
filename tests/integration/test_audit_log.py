"""The company audit log filters by person, kind of action and date, as a plain GET form and as
htmx rows; paging keeps the filters."""
from __future__ import annotations

import re
from datetime import timedelta

from saas.core import clock
from testkit import Browser, sql
from tests.integration.test_account import user_id
from tests.integration.test_clients_web import member, schema_of

SETTINGS = {"name": "Audit Filter Co", "currency": "RUB", "timezone": "Europe/Moscow", "locale": "en"}


def actions(html: str) -> list[str]:
    return re.findall(r'<td data-action="([\w.]+)">', html)


def test_filters_by_person_action_and_date(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Audit Filter Co")
    schema = schema_of(db_url, slug)
    owner = user_id(db_url, http.email)
    admin = member(http, make_http, db_url, slug, "admin")
    admin_id = sql(db_url, "SELECT m.user_id FROM shared.memberships m JOIN shared.tenants t ON t.id = m.tenant_id "
                           "WHERE t.slug = :s AND m.role = 'admin'", {"s": slug})[0][0]
    assert http.form(f"/t/{slug}/settings", {**SETTINGS, "name": "Audit Filter Co 2"}).status_code == 303
    assert admin.form(f"/t/{slug}/tokens", {"name": "shop", "role": "viewer"}).status_code == 201
    old = clock.today() - timedelta(days=10)
    sql(db_url, f"""INSERT INTO "{schema}".audit_events (actor, action, created_at)
                    VALUES ('job:7', 'import.finished', now()),
                           ('user:{owner}', 'client.archived', CAST(:d AS date) + time '12:00')""", {"d": old})
    base = f"/t/{slug}/audit"

    everything = actions(http.get(base).text)
    assert {"company.updated", "token.created", "import.finished", "client.archived"} <= set(everything)
    by_owner = actions(http.get(base, params={"person": owner}).text)
    assert "company.updated" in by_owner and "client.archived" in by_owner and "token.created" not in by_owner
    by_admin = actions(http.get(base, params={"person": admin_id}).text)
    assert "token.created" in by_admin and "company.updated" not in by_admin
    assert actions(http.get(base, params={"person": "system"}).text) == ["import.finished"]
    assert set(actions(http.get(base, params={"action": "token."}).text)) == {"token.created"}
    # Dates are whole days, either end alone or both.
    assert actions(http.get(base, params={"since": old.isoformat(), "until": old.isoformat()}).text) == [
        "client.archived"]
    after = (old + timedelta(days=1)).isoformat()
    assert "client.archived" not in actions(http.get(base, params={"since": after}).text)
    assert actions(http.get(base, params={"until": (old - timedelta(days=1)).isoformat()}).text) == []
    # Filters combine; nonsense values are ignored rather than failing.
    assert actions(http.get(base, params={"person": owner, "action": "token."}).text) == []
    assert http.get(base, params={"person": "x';--", "since": "not a date"}).status_code == 200

    # htmx gets the rows only; the page keeps the choices selected.
    rows = http.get(base, params={"action": "company."}, headers={"HX-Request": "true"})
    assert rows.status_code == 200 and 'id="audit-rows"' in rows.text and "<html" not in rows.text
    assert actions(rows.text) == ["company.updated"]
    page = http.get(base, params={"person": admin_id}).text
    assert f'<option value="{admin_id}" selected>' in page

    # A marketer may not read it.
    marketer = member(http, make_http, db_url, slug, "marketer")
    assert marketer.get(base).status_code == 403


def test_older_pages_keep_the_filters(http: Browser, db_url: str) -> None:
    slug = http.signup("Audit Paging Co")
    schema = schema_of(db_url, slug)
    sql(db_url, f"""INSERT INTO "{schema}".audit_events (actor, action)
                    SELECT 'job:1', 'import.row' FROM generate_series(1, 130)""")
    first = http.get(f"/t/{slug}/audit", params={"action": "import.", "person": "system"}).text
    assert actions(first) == ["import.row"] * 100
    link = re.search(r'href="([^"]*before=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    assert "action=import." in link and "person=system" in link
    assert actions(http.get(link).text) == ["import.row"] * 30
