"""The client list and card fit a 1366×900 window and a 390×844 phone: no sideways scrolling of the
page; a client's name, status and debt, an operation's payment state, its Edit and Delete buttons and
the inline edit's Save inside the window; every field of the operation forms labelled; the list's
column choice kept (in a cookie, and with a saved view). Screenshots in English and Russian go to
test-artifacts/layout-*.png."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from e2e.test_clients import ARTIFACTS, shot
from e2e.test_csrf import sql  # testkit.sql off Playwright's thread
from e2e.test_foundation import signup
from saas.core import clock

VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LONG_LAST = "Константинопольская-Преображенская"


def seed(db_url: str, slug: str) -> int:
    """Clients as a real base has them (long names and e-mails, tags, debts, scores) and, for the
    first one, operations with long product-group, direction and note texts. Returns that client's id."""
    schema, = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0]
    today = clock.today()
    group, = sql(db_url, f"""INSERT INTO "{schema}".product_groups (name)
        VALUES ('Строительные материалы и инструменты') RETURNING id""")[0]
    direction, = sql(db_url, f"""INSERT INTO "{schema}".directions (name) VALUES ('Оптовые продажи регионам')
        RETURNING id""")[0]
    ids = [row[0] for row in sql(db_url, f"""INSERT INTO "{schema}".clients
        (last_name, first_name, middle_name, phone, email, tags, revenue_total, unpaid_total, operations_count,
         last_operation_on)
        SELECT CASE WHEN g = 1 THEN '{LONG_LAST}' ELSE 'Клиентова-' || g END, 'Александра', 'Вячеславовна',
               '+7916' || lpad(g::text, 7, '0'), 'aleksandra.konstantinopolskaya' || g || '@example-company.ru',
               ARRAY['постоянный', 'оптовик', 'vip'], 12345678.90 + g, 987654.32, 27, :last
        FROM generate_series(1, 6) g ORDER BY g RETURNING id""", {"last": today - timedelta(days=40)})]
    sql(db_url, f"""INSERT INTO "{schema}".client_scores (client_id, status, p_alive, expected_purchases,
        expected_spend, clv, r_score, f_score, m_score, segment, risk_score, risk_group, risk_factors, method)
        SELECT id, 'at_risk', 0.42, 1.3, 45678.9, 2345678.9, 3, 4, 5, 'potential_loyalists', 81, 'risk',
               '{{}}'::jsonb, 'rules' FROM "{schema}".clients""")
    first = ids[0]
    note = "Поставка по договору № 2024-117 от 12 марта, частичная отгрузка со склада в Подольске"
    for kind, days, amount, due, paid in (("sale", 30, 987654.32, 10, None), ("service", 20, 15000, None, 18),
                                          ("return", 5, 2500, None, None), ("sale", 3, 1200, -20, None)):
        sql(db_url, f"""INSERT INTO "{schema}".operations (client_id, kind, occurred_on, amount, product_group_id,
            direction_id, due_on, paid_on, note) VALUES (:c, :k, :on, :a, :g, :d, :due, :paid, :note)""",
            {"c": first, "k": kind, "on": today - timedelta(days=days), "a": amount, "g": group, "d": direction,
             "due": None if due is None else today - timedelta(days=due),
             "paid": None if paid is None else today - timedelta(days=paid), "note": note})
    return first


def start(page: Page, db_url: str, viewport: str) -> tuple[str, int]:
    page.set_viewport_size(VIEWPORTS[viewport])
    account = signup(page)
    return f"/t/{account.slug}", seed(db_url, account.slug)


def set_language(page: Page, lang: str) -> None:
    if page.locator("html").get_attribute("lang") != lang:
        page.locator(f"form.lang button[value={lang}]").click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
    page.wait_for_load_state("networkidle")


def expect_no_sideways_scroll(page: Page, where: str) -> None:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{where}: the page is {scroll} px wide in a {inner} px window"


def expect_inside(page: Page, locator: Locator, what: str) -> None:
    """Inside the window and not cut off by a box that scrolls or clips (a table's scroll box):
    measured where it is, without scrolling anything sideways."""
    expect(locator).to_be_visible()
    found = locator.evaluate("""el => {
        const r = el.getBoundingClientRect(), clipped = [];
        for (let a = el.parentElement; a; a = a.parentElement) {
            if (getComputedStyle(a).overflowX === 'visible') continue;
            const b = a.getBoundingClientRect();
            const out = r.left < b.left - 0.5 || r.right > b.right + 0.5 || a.scrollLeft;
            if (out) clipped.push(a.className || a.tagName);
        }
        return {left: r.left, right: r.right, width: window.innerWidth, clipped};
    }""")
    assert found["left"] >= 0 and found["right"] <= found["width"] + 0.5, f"{what}: {found}"
    assert not found["clipped"], f"{what}: cut off by {found['clipped']} ({found})"


def unlabelled(form: Locator) -> list[str]:
    """The names of the form's fields that have neither a <label> nor an aria-label."""
    return form.evaluate("""f => [...f.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)""")


def header_keys(page: Page) -> list[str]:
    classes: list[Any] = page.locator("table.clients-table thead th").evaluate_all(
        "ths => ths.map(th => th.className)")
    return [m[1] for c in classes if (m := re.search(r"\bcol-([a-z0-9_]+)", c)) and m[1] != "select"]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_list_fits_with_name_status_and_debt_in_view(page: Page, db_url: str, viewport: str) -> None:
    base, _first = start(page, db_url, viewport)
    page.goto(f"{base}/clients")
    for lang in ("en", "ru"):
        set_language(page, lang)
        expect(page.locator("tbody#rows tr")).to_have_count(6)
        row = page.locator("tbody#rows tr").filter(has_text=LONG_LAST)
        expect(row.locator(".col-debt .badge-bad")).to_be_visible()  # the overdue amount, the widest debt
        expect_no_sideways_scroll(page, f"list {viewport} {lang}")
        for cell in ("col-name", "col-status", "col-debt"):
            expect_inside(page, row.locator(f"td.{cell}"), f"{cell} ({viewport}, {lang})")
        expect_inside(page, row.get_by_role("link", name=re.compile(LONG_LAST)), f"the name link ({viewport})")
        if viewport == "desktop":  # the default columns fit the table's box: nothing hidden to its right
            box = page.locator("#bulk .table-scroll").evaluate("e => [e.scrollWidth, e.clientWidth]")
            assert box[0] <= box[1], f"the table is {box[0]} px wide in its {box[1]} px box ({lang})"
        search = page.locator("#q")
        assert search.bounding_box()["width"] >= 250, "the search box is squeezed"  # type: ignore[index]
        row.screenshot(path=str(ARTIFACTS / f"layout-list-row-{viewport}-{lang}.png"))
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, f"layout-list-{viewport}-{lang}")
        page.screenshot(path=str(ARTIFACTS / f"layout-list-top-{viewport}-{lang}.png"))
        page.locator("#columns-chooser > summary").click()
        expect(page.locator("#columns-chooser form")).to_be_visible()
        expect_no_sideways_scroll(page, f"list with the column chooser open, {viewport} {lang}")
        expect_inside(page, page.locator("#columns-chooser button[type=submit]"), "the chooser's button")
        shot(page, f"layout-list-columns-{viewport}-{lang}")
        page.locator("#columns-chooser > summary").click()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_card_and_the_inline_operation_edit_fit(page: Page, db_url: str, viewport: str) -> None:
    base, first = start(page, db_url, viewport)
    page.goto(f"{base}/clients/{first}")
    for lang in ("en", "ru"):
        set_language(page, lang)
        ops = page.locator("#operations table.ops-table tbody tr")
        expect(ops).to_have_count(4)
        expect_no_sideways_scroll(page, f"card {viewport} {lang}")
        for actions in (page.locator(".page-head .actions .btn"),):
            for i in range(actions.count()):
                expect_inside(page, actions.nth(i), f"the card's button {i} ({viewport}, {lang})")
        more = page.locator("details.more-actions")  # the owner's menu: the data download and the erasure
        more.locator("summary").click()
        expect_inside(page, more.locator(".menu a"), f"the data download ({viewport}, {lang})")
        expect_inside(page, more.locator(".menu button"), f"the erasure button ({viewport}, {lang})")
        expect_no_sideways_scroll(page, f"card with its menu open {viewport} {lang}")
        more.locator("summary").click()
        payments = page.locator("#operations tr:not(.op-return) td.op-payment")  # a return has nothing to pay
        expect(payments).to_have_count(3)
        for i in range(3):
            expect_inside(page, payments.nth(i), f"payment of operation {i} ({viewport}, {lang})")
        for i in range(4):
            expect_inside(page, ops.nth(i).locator("td.row-actions a"), f"Edit of operation {i} ({viewport})")
            expect_inside(page, ops.nth(i).locator("td.row-actions button"), f"Delete of operation {i} ({viewport})")
        expect(payments.locator(".badge-bad")).to_have_count(1)  # the sale past its due date
        expect(payments.locator(".badge-warn")).to_have_count(1)  # the sale due in 20 days
        add_form = page.locator("#operations form.op-form")
        assert unlabelled(add_form) == []
        expect_inside(page, add_form.locator("button[type=submit]"), f"Add ({viewport}, {lang})")
        page.locator("#operations").screenshot(path=str(ARTIFACTS / f"layout-card-operations-{viewport}-{lang}.png"))
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, f"layout-card-{viewport}-{lang}")
        page.screenshot(path=str(ARTIFACTS / f"layout-card-top-{viewport}-{lang}.png"))

        overdue_sale = page.locator("#operations tr.op-sale").last  # the oldest: newest first
        overdue_sale.locator("td.row-actions a").click()  # Edit, in place
        editing = page.locator("#operations tr.editing form")
        expect(editing).to_be_visible()
        assert unlabelled(editing) == []
        labels = editing.locator("label").all_inner_texts()
        assert len(labels) == 8, labels
        if lang == "ru":  # the labels speak the reader's language
            assert all(re.search("[А-Яа-яЁё]", t) for t in labels), labels
        expect_no_sideways_scroll(page, f"inline edit {viewport} {lang}")
        save = editing.get_by_role("button", name="Сохранить" if lang == "ru" else "Save")
        expect_inside(page, save, f"Save ({viewport}, {lang})")
        expect_inside(page, editing.locator("input[name=paid_on]"), f"the Paid field ({viewport})")
        editing.screenshot(path=str(ARTIFACTS / f"layout-operation-edit-{viewport}-{lang}.png"))
        editing.locator("input[name=paid_on]").fill(clock.today().isoformat())
        save.click()
        expect(page.locator("#operations tr.editing")).to_have_count(0)
        expect(payments.locator(".badge-bad")).to_have_count(0)  # paid now
        # put it back unpaid for the other language's round
        overdue_sale.locator("td.row-actions a").click()
        page.locator("#operations tr.editing input[name=paid_on]").fill("")
        page.locator("#operations tr.editing button.btn-primary").click()
        expect(page.locator("#operations tr.editing")).to_have_count(0)
        expect(payments.locator(".badge-bad")).to_have_count(1)

    page.goto(f"{base}/clients/{first}/edit")  # the card's edit form (in the last language, Russian)
    expect_no_sideways_scroll(page, f"client form {viewport}")
    form = page.locator("form.client-form")
    assert unlabelled(form) == []
    expect_inside(page, form.get_by_role("button", name="Сохранить"), f"the form's Save ({viewport})")
    shot(page, f"layout-client-form-{viewport}-ru")


def test_the_column_choice_is_remembered_and_saved_with_a_view(page: Page, db_url: str) -> None:
    base, _first = start(page, db_url, "desktop")
    page.goto(f"{base}/clients")
    default = header_keys(page)
    assert {"name", "status", "unpaid", "email"} <= set(default) and "clv" not in default, default
    chooser = page.locator("#columns-chooser")
    for key in ("name", "status", "unpaid"):  # always shown: ticked, not to be unticked
        expect(chooser.locator(f"input[value={key}]")).to_be_checked()
        expect(chooser.locator(f"input[value={key}]")).to_be_disabled()

    def choose(on: tuple[str, ...], off: tuple[str, ...]) -> None:
        chooser.locator("summary").click()
        for key in on:
            chooser.locator(f"input[value={key}]").check()
        for key in off:
            chooser.locator(f"input[value={key}]").uncheck()
        chooser.locator("button[type=submit]").click()

    choose(("clv", "p_alive"), ("email", "tags"))
    expect(page.locator("thead th.col-clv")).to_be_visible()
    chosen = header_keys(page)
    assert "email" not in chosen and "tags" not in chosen and {"clv", "p_alive"} <= set(chosen), chosen
    expect_no_sideways_scroll(page, "list with CLV and P(alive)")

    page.goto(f"{base}/clients")  # a bare visit: the cookie remembers the choice
    assert header_keys(page) == chosen
    page.locator("#q").fill(LONG_LAST[:8])  # searching keeps the columns (the rows swap alone)
    expect(page.locator("tbody#rows tr")).to_have_count(1)
    assert header_keys(page) == chosen
    expect(page.locator("tbody#rows tr td")).to_have_count(len(chosen) + 1)

    page.locator("#q").fill("")
    expect(page.locator("tbody#rows tr")).to_have_count(6)
    save = page.locator("details.save-view")
    save.locator("summary").click()
    save.locator("input[name=name]").fill("Долги и CLV")
    save.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"[?&]view=\d+"))
    view_url = page.url
    assert header_keys(page) == chosen

    choose(("email",), ("clv", "p_alive"))  # another choice now remembered ...
    expect(page.locator("thead th.col-email")).to_be_visible()
    assert "clv" not in header_keys(page)
    page.goto(f"{base}/clients")
    assert "clv" not in header_keys(page) and "email" in header_keys(page)

    page.get_by_role("link", name="Долги и CLV").click()  # ... but the view reopens with its own
    expect(page.locator("thead th.col-clv")).to_be_visible()
    assert header_keys(page) == chosen
    page.goto(view_url)
    assert header_keys(page) == chosen
