"""The list and the card read what they show beside their rows (custom fields, saved views, product
groups and directions, the card's operations) in one statement with their own: counted here on the
live server's engine, with the furniture checked on the page (its rows decoded from JSON: amounts
exact, dates as dates)."""
from __future__ import annotations

import re

import pytest

from testkit import Browser, statements_sent
from tests.integration.test_clients_web import create_client

ROWS = {"HX-Request": "true", "HX-Target": "rows"}


@pytest.fixture
def company(http: Browser) -> tuple[str, int, int]:
    """A company with a field, a view, two product groups and a direction; a client with a sale."""
    slug = http.signup("Furniture Co")
    assert http.form(f"/t/{slug}/fields", {"label_ru": "Модель", "label_en": "Car model", "type": "text"}
                     ).status_code == 303
    for kind, name in (("product_groups", "Sofas"), ("product_groups", "armchairs"), ("directions", "Wholesale")):
        assert http.form(f"/t/{slug}/dictionaries/{kind}", {"name": name}).status_code in (200, 303)
    view = http.form(f"/t/{slug}/views", {"name": "Big spenders", "query": "sort=revenue"})
    view_id = int(view.headers["location"].rsplit("=", 1)[1])
    cid = create_client(http, slug)
    card = http.get(f"/t/{slug}/clients/{cid}").text
    sofas = re.search(r'<option value="(\d+)"[^>]*>Sofas</option>', card).group(1)
    r = http.form(f"/t/{slug}/clients/{cid}/operations", {"kind": "sale", "occurred_on": "2024-03-01",
                                                          "amount": "1234.50", "product_group_id": sofas})
    assert r.status_code == 303, r.text
    return slug, cid, view_id


def tenant_statements(live_server, http: Browser, path: str, headers: dict | None = None) -> tuple[str, list[str]]:
    """The page and the statements its request ran on the company's tables (the membership check
    and the schema binding, on shared tables, are the front door's, not the page's)."""
    with statements_sent(live_server.server.config.app.state.db.engine.sync_engine) as seen:
        page = http.get(path, headers=headers)
    assert page.status_code == 200, page.text[:500]
    return page.text, [s for s, _auto in seen if "shared." not in s and "set_config" not in s]


def test_the_list_reads_its_furniture_with_its_rows(company, http: Browser, live_server) -> None:
    slug, cid, view_id = company
    for path in (f"/t/{slug}/clients", f"/t/{slug}/clients?sort=name", f"/t/{slug}/clients?view={view_id}"):
        page, statements = tenant_statements(live_server, http, path)
        # one for the fields, views and dictionaries; one for the page of rows (it holds the count)
        assert len(statements) == 2, statements
        assert "«Car model»" in page and "Big spenders" in page  # the sort menu, the views bar
        assert ">armchairs</option>" in page and ">Sofas</option>" in page and ">Wholesale</option>" in page
        assert page.index(">armchairs</option>") < page.index(">Sofas</option>")  # by name, case aside
        assert f"/t/{slug}/clients/{cid}" in page
    # the last, the saved view: its sort applied
    assert f'name="view" value="{view_id}"' in page and '<option value="revenue" selected' in page
    # filtered and sorted by the custom field: its definition read once, not again for the page
    _page, statements = tenant_statements(live_server, http, f"/t/{slug}/clients?cf_car_model=Lada&sort=cf_car_model")
    assert len(statements) == 2, statements

    http.get(f"/t/{slug}/clients?q=Смирн", headers=ROWS)  # once: name_search checks the collation first
    rows, statements = tenant_statements(live_server, http, f"/t/{slug}/clients?q=Смирн", ROWS)
    assert len(statements) == 2, statements  # the fields (the columns), the rows
    assert f"/t/{slug}/clients/{cid}" in rows and "Big spenders" not in rows
    assert http.get(f"/t/{slug}/clients?view=99999", headers=ROWS).status_code == 404  # not one of the user's


def test_the_card_is_one_statement_with_its_operations_and_furniture(company, http: Browser, live_server) -> None:
    slug, cid, _view_id = company
    card, statements = tenant_statements(live_server, http, f"/t/{slug}/clients/{cid}")
    assert len(statements) == 1, statements
    assert "<dt>Car model</dt>" in card  # the custom field
    assert ">Sofas</option>" in card and ">Wholesale</option>" in card  # the add-operation form's menus
    assert '<td class="op-interest" data-label="Product group · Direction"><span>Sofas</span></td>' in card
    assert "1,234.50" in card and "Mar 1, 2024" in card
    op_id = re.search(rf"/clients/{cid}/operations/(\d+)/edit", card).group(1)
    # after a write's path (the operations read again, with the dictionaries): the same values
    edit, _statements = tenant_statements(live_server, http, f"/t/{slug}/clients/{cid}/operations/{op_id}/edit",
                                          {"HX-Request": "true"})
    assert 'value="1234.50"' in edit and 'value="2024-03-01"' in edit
    assert re.search(r'<option value="\d+" selected>Sofas</option>', edit)
