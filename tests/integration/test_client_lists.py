"""Client lists read as plain rows: what the list, search, card and API show, and the count:
exact up to 10,000 matches, past that the planner's estimate, shown as "about 12,000" on the page
and as `total` + `total_is_estimate` in the API (with ?count=true)."""
from __future__ import annotations

import re
import secrets

import httpx
import pytest

from testkit import Browser, cli, sql

MANY = 12_000


def schema_of(db_url: str, slug: str) -> str:
    return sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]


def api(base_url: str, slug: str) -> httpx.Client:
    r = cli("tokens", "create", "--tenant", slug, "--role", "admin", "--name", f"lists-{secrets.token_hex(3)}")
    assert r.returncode == 0, r.stderr
    return httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {r.stdout.strip()}"},
                        timeout=30)


def count_badge(html: str) -> str:
    match = re.search(r'<span class="badge" id="count"[^>]*>([^<]*)</span>', html)
    assert match, html[:2000]
    return match.group(1)


@pytest.fixture(scope="module")
def big(base_url: str, db_url: str) -> tuple[Browser, str, str]:
    """A company of 12,000 clients: 70 named Petrov (more than a page, fewer than the cap), 3 with
    revenue over a million; the rest plain. ANALYZEd, as autovacuum would leave it."""
    http = Browser(base_url)
    slug = http.signup(f"Lists {secrets.token_hex(2)}")
    schema = schema_of(db_url, slug)
    sql(db_url, f"""INSERT INTO "{schema}".clients (last_name, first_name, phone, revenue_total, operations_count)
        SELECT CASE WHEN g <= 70 THEN 'Петров' ELSE 'Клиент' || g END, 'Имя' || g, '+7916' || lpad(g::text, 7, '0'),
               CASE WHEN g > {MANY} - 3 THEN 2000000 + g ELSE g END, g % 7
        FROM generate_series(1, {MANY}) g""")
    sql(db_url, f'ANALYZE "{schema}".clients')
    yield http, slug, schema
    http.close()


def test_past_ten_thousand_the_page_says_about(big) -> None:
    http, slug, _schema = big
    html = http.get(f"/t/{slug}/clients").text
    badge = count_badge(html)
    assert badge.startswith("about "), badge
    estimate = int(re.sub(r"\D", "", badge))
    assert 10_000 <= estimate <= 20_000 and estimate % 100 == 0, badge  # two significant figures
    assert html.count('class="client-name"') == 50


def test_russian_page_says_okolo(big) -> None:
    http, slug, _schema = big
    assert http.form("/lang", {"lang": "ru", "next": f"/t/{slug}/clients"}).status_code == 303
    try:
        badge = count_badge(http.get(f"/t/{slug}/clients").text)
        assert badge.startswith("около ") and int(re.sub(r"\D", "", badge)) >= 10_000, badge
    finally:
        http.form("/lang", {"lang": "en", "next": "/"})


def test_below_the_cap_the_count_is_exact(big) -> None:
    http, slug, _schema = big
    search = http.get(f"/t/{slug}/clients", params={"q": "Петров"}).text
    assert count_badge(search) == "70"  # more than a page: counted
    assert search.count('class="client-name"') == 50
    few = http.get(f"/t/{slug}/clients", params={"revenue_min": "1000000"}).text
    assert count_badge(few) == "3"  # the whole result on page 1: its own count
    assert few.count('class="client-name"') == 3


def test_list_rows_show_the_columns(big, db_url: str) -> None:
    http, slug, schema = big
    cid, = sql(db_url, f"""SELECT id FROM "{schema}".clients WHERE last_name = 'Клиент12000'""")[0]
    sql(db_url, f"""UPDATE "{schema}".clients SET tags = ARRAY['vip'], email = 'top@example.com',
                    unpaid_total = 15.5 WHERE id = {cid}""")
    html = http.get(f"/t/{slug}/clients", params={"q": "Клиент12000"}).text
    assert f'/clients/{cid}"' in html and "top@example.com" in html and ">vip<" in html
    assert "2,012,000.00" in html and "15.50" in html  # revenue and unpaid, formatted (English page)


def test_api_total_is_opt_in_and_flags_the_estimate(big, base_url: str) -> None:
    _http, slug, _schema = big
    with api(base_url, slug) as client:
        plain = client.get("/clients", params={"limit": 5}).json()
        assert plain["total"] is None and plain["total_is_estimate"] is None and len(plain["items"]) == 5
        counted = client.get("/clients", params={"limit": 5, "count": "true"}).json()
        assert counted["total_is_estimate"] is True and 10_000 <= counted["total"] <= 20_000
        assert [c["id"] for c in counted["items"]] == [c["id"] for c in plain["items"]]
        exact = client.get("/clients", params={"q": "Петров", "count": "true"}).json()
        assert exact["total"] == 70 and exact["total_is_estimate"] is False and len(exact["items"]) == 50
        page2 = client.get("/clients", params={"q": "Петров", "count": "true",
                                               "after": exact["next_cursor"]}).json()
        assert page2["total"] == 70 and len(page2["items"]) == 20 and page2["next_cursor"] is None
        one = exact["items"][0]
        assert client.get(f"/clients/{one['id']}").json() == one  # the card and the list agree


@pytest.mark.parametrize("sort", ["name", "recent", "revenue", "new"])
def test_a_search_pages_through_its_matches_in_order(big, base_url: str, sort: str) -> None:
    """A search with few matches is sorted apart from the sort's index (list_clients): the pages
    still give every match once, in the sort's order, whatever the sort."""
    _http, slug, _schema = big
    with api(base_url, slug) as client:
        seen, after = [], None
        while True:
            page = client.get("/clients", params={"q": "Петров", "sort": sort, "limit": 30,
                                                  **({"after": after} if after else {})}).json()
            seen += page["items"]
            after = page["next_cursor"]
            if not after:
                break
    assert len(seen) == 70 and len({c["id"] for c in seen}) == 70
    keys = {"name": lambda c: (c["last_name"].lower(), c["first_name"].lower(), c["id"]),
            "recent": lambda c: (c["metrics"]["last_operation_on"] or "", c["id"]),
            "revenue": lambda c: (float(c["metrics"]["revenue_total"]), c["id"]), "new": lambda c: c["id"]}
    expected = sorted(seen, key=keys[sort], reverse=sort != "name")
    assert [c["id"] for c in seen] == [c["id"] for c in expected]


@pytest.mark.parametrize("sort", ["name", "revenue"])
def test_a_search_past_the_cap_walks_the_index(big, base_url: str, db_url: str, sort: str) -> None:
    """The first page of a search reads its matches once, counted and sorted together; with more than
    10,000 matches that read is cut short, so the page comes from the sort's index instead: still the
    first matches in order, and a count flagged as an estimate."""
    _http, slug, schema = big
    with api(base_url, slug) as client:
        page = client.get("/clients", params={"q": "клиент", "sort": sort, "limit": 25, "count": "true"}).json()
    order = "lower(last_name), lower(first_name), id" if sort == "name" else "revenue_total DESC, id DESC"
    expected = sql(db_url, f"""SELECT id FROM "{schema}".clients WHERE last_name LIKE 'Клиент%'
                               ORDER BY {order} LIMIT 25""")
    assert [c["id"] for c in page["items"]] == [r[0] for r in expected]
    assert page["total_is_estimate"] is True and page["total"] >= 10_000 and page["next_cursor"]
