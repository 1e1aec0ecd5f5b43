"""The client list's column chooser without JavaScript: a plain GET form (`col` checkboxes and an
empty marker). The choice is shown, remembered in a per-company cookie for the next bare visit,
saved with a view and kept across search and paging; name, status and debt cannot be hidden; the
page's query reads only the columns shown."""
from __future__ import annotations

import re
import secrets

import pytest

from saas.clients.models import Client, ClientScore
from saas.clients.queries import list_columns_for
from testkit import Browser, sql


def header_keys(html: str) -> list[str]:
    head = re.search(r'<table class="table clients-table">\s*<thead>(.*?)</thead>', html, re.S)
    assert head, html[:2000]
    return [k for k in re.findall(r'<th class="col-([a-z0-9_]+)', head.group(1)) if k != "select"]


def first_row_cells(html: str) -> int:
    body = re.search(r'<tbody id="rows">(.*?)</tr>', html, re.S)
    assert body, html[:2000]
    return body.group(1).count("<td")


@pytest.fixture
def company(base_url: str, db_url: str) -> tuple[Browser, str]:
    http = Browser(base_url)
    slug = http.signup(f"Columns {secrets.token_hex(2)}")
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]
    sql(db_url, f"""INSERT INTO "{schema}".clients (last_name, first_name, phone, email, revenue_total, unpaid_total)
        SELECT 'Колонкин' || g, 'Иван', '+7916' || lpad(g::text, 7, '0'), 'c' || g || '@example.com', g * 100, 5
        FROM generate_series(1, 60) g""")
    yield http, f"/t/{slug}"
    http.close()


def test_the_default_columns_fit_and_always_hold_name_status_and_debt(company) -> None:
    http, base = company
    html = http.get(f"{base}/clients").text
    keys = header_keys(html)
    assert keys == ["name", "status", "phone", "email", "last_purchase", "deals", "revenue", "unpaid", "tags"], keys
    assert first_row_cells(html) == len(keys) + 1  # the row's cells follow the header (plus the checkbox)
    for key in ("name", "status", "unpaid"):  # offered ticked and locked in the chooser
        assert re.search(rf'name="col" value="{key}" checked disabled', html), key


def test_a_choice_without_javascript_is_shown_remembered_and_kept(company) -> None:
    http, base = company
    r = http.get(f"{base}/clients", params=[("sort", "revenue"), ("col", ""), ("col", "clv"), ("col", "phone"),
                                           ("col", "name"), ("col", "bogus")])
    assert r.status_code == 200
    assert header_keys(r.text) == ["name", "status", "phone", "unpaid", "clv"]  # table order; always-shown kept
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("list_columns=name.status.phone.unpaid.clv;"), cookie
    assert f"Path={base}/clients" in cookie and "HttpOnly" in cookie
    assert 'value="revenue" selected' in r.text  # the filters and the sort stay as they were

    bare = http.get(f"{base}/clients").text  # the cookie brings the choice back
    assert header_keys(bare) == ["name", "status", "phone", "unpaid", "clv"]
    assert "set-cookie" not in http.get(f"{base}/clients").headers  # remembered once, not on every visit

    # search (the rows alone) and the next page carry the columns
    rows = http.get(f"{base}/clients", params={"q": "Колонкин1", "columns": "name,status,unpaid,email"},
                    headers={"HX-Request": "true", "HX-Target": "rows"}).text
    assert "<thead>" not in rows and rows.count("<tr>") == 11 and rows.split("</tr>")[0].count("<td") == 5
    assert "c1@example.com" in rows and "+7 916" not in rows
    page1 = http.get(f"{base}/clients").text
    more = re.search(r'<tr id="more" hx-get="([^"]+)"', page1)
    assert more and "columns=name%2Cstatus%2Cphone%2Cunpaid%2Cclv" in more.group(1)

    none = http.get(f"{base}/clients", params=[("col", "")]).text  # nothing ticked: the three that stay
    assert header_keys(none) == ["name", "status", "unpaid"]


def test_the_columns_are_saved_with_a_view(company) -> None:
    http, base = company
    r = http.form(f"{base}/views", {"name": "Долги", "query": "debt=unpaid&columns=name,status,email,unpaid,p_alive"})
    assert r.status_code == 303
    view_url = r.headers["location"]
    http.get(f"{base}/clients", params=[("col", ""), ("col", "phone")])  # another choice remembered meanwhile
    assert header_keys(http.get(view_url).text) == ["name", "status", "email", "unpaid", "p_alive"]
    assert header_keys(http.get(f"{base}/clients").text) == ["name", "status", "phone", "unpaid"]
    # the chooser on the view's page keeps the view, and its choice applies on top of the view's
    page = http.get(view_url).text
    assert re.search(r'<input type="hidden" name="view" value="\d+">', page)
    view_id = re.search(r"view=(\d+)", view_url).group(1)  # type: ignore[union-attr]
    chosen = http.get(f"{base}/clients", params=[("view", view_id), ("col", ""), ("col", "clv")]).text
    assert header_keys(chosen) == ["name", "status", "unpaid", "clv"]
    # saving the page as a view stores the columns shown
    hidden = re.search(r'<input type="hidden" name="query" value="([^"]*)">', chosen)
    assert hidden and "columns=name%2Cstatus%2Cunpaid%2Cclv" in hidden.group(1).replace("&amp;", "&")


def test_unknown_columns_fall_back_to_the_default(company) -> None:
    http, base = company
    http.cookies.set("list_columns", "nonsense.more", path=f"{base}/clients")
    assert "email" in header_keys(http.get(f"{base}/clients", params={"columns": "x,y"}).text)


def test_the_query_reads_only_the_columns_shown() -> None:
    client_cols, score_cols = list_columns_for({"name", "status", "unpaid"}, "name")
    names = {c.key for c in client_cols}
    assert {"id", "last_name", "unpaid_total", "archived_at"} <= names
    assert not names & {"email", "phone", "tags", "custom", "revenue_total", "last_operation_on"}, names
    assert {c.key for c in score_cols} == {"status", "risk_group", "risk_factors"}
    by_revenue, _ = list_columns_for({"name", "status", "unpaid", "email"}, "revenue")
    assert Client.revenue_total in by_revenue and Client.email in by_revenue  # the sort key's column comes along
    _, with_clv = list_columns_for({"clv", "segment"}, "name")
    assert ClientScore.clv in with_clv and ClientScore.segment in with_clv and ClientScore.p_alive not in with_clv
    custom, _ = list_columns_for({"cf_car"}, "name")
    assert Client.custom in custom
