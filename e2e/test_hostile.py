"""Hostile input in a real browser (issue 7): formula payloads, HTML and script in every text field.

A company imports a file (named like a payload) whose text fields all carry the payloads of the
bad-files corpus, and types the same payloads into the new-client form. Then every page that shows
them (list, live search, card, duplicates, audit log, import result) is checked in Chromium:
- no dialog fired;
- no injected element exists. The check is on the DOM, not only on dialogs, because the CSP would
  block an injected inline script silently: the element would be there, the alert would not fire;
- the payload is shown literally.
The CSV export from the list must neutralise the formula cells (formula_safe's apostrophe) and keep
the HTML text as it is.
"""
from __future__ import annotations

import csv
import io
import re
import subprocess
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from e2e.test_clients import (
    ARTIFACTS, CLIENT_URL, open_clients, open_imports, search_for, start_import_and_watch, upload_to_mapping,
)
from e2e.test_foundation import signup, visit
from saas.clients.contacts import normalise_email
from saas.core.values import formula_safe
from tests.integration.test_bad_files import PAYLOADS, TEXT_COLUMNS

SCRIPT, IMG = "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'
assert SCRIPT in PAYLOADS and IMG in PAYLOADS  # the corpus must keep the two HTML payloads checked below
STORED = [p.strip() for p in PAYLOADS]  # imported cells are trimmed ("\t=1+1" is kept as "=1+1")
FORMULAS = [s for s in STORED if s[0] in "=+-@"]
BIRTH = "1980-01-01"  # the same for all: equal names and birth date make a duplicates group
FILE_NAME = "<img src=x onerror=alert(1)>.csv"
# What an injection would leave in the DOM, whether or not the CSP let it run.
INJECTED_JS = """() => ({
  img: document.querySelectorAll("img[src='x'], img[src$='/x']").length,
  onerror: document.querySelectorAll("[onerror]").length,
  scripts: [...document.scripts].filter(s => s.textContent.includes("alert(")).length,
})"""


def phone(i: int) -> str:
    return f"+7916400{i:04d}"


def email_for(stored: str) -> str:
    """The payload as the e-mail's local part, where that is a valid address (=1+2@… is; <script>@… is not)."""
    try:
        return normalise_email(f"{stored}@example.com")
    except ValueError:
        return ""


def write_hostile_csv(path: Path) -> int:
    """One row per payload in every text column, plus a second card named like the <img> row (a duplicate)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([*TEXT_COLUMNS, "Телефон", "Email", "Дата рождения"])
    for i, payload in enumerate(PAYLOADS):
        writer.writerow([payload] * len(TEXT_COLUMNS) + [phone(i), email_for(payload.strip()), BIRTH])
    writer.writerow([IMG] * len(TEXT_COLUMNS) + [phone(99), "", BIRTH])
    path.write_bytes(out.getvalue().encode())
    return len(PAYLOADS) + 1


class Watch:
    """Every dialog and every CSP refusal on the page, from the first request on."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.csp: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)

    def check(self, page: Page, where: str) -> None:
        page.wait_for_load_state("load")
        found = page.evaluate(INJECTED_JS)
        assert found == {"img": 0, "onerror": 0, "scripts": 0}, (where, found)
        assert not self.dialogs, (where, self.dialogs)
        assert not self.csp, (where, self.csp)


def upload_hostile(page: Page, csv_path: Path, rows: int) -> None:
    upload_to_mapping(page, csv_path, rows, title=FILE_NAME)
    mapping = page.locator("form#mapping")
    # The headers were matched to the fields they name; the dry run shows the payloads as text.
    for i, field in enumerate([*TEXT_COLUMNS.values(), "phone", "email", "birth_date"]):
        expect(mapping.locator(f"select[name=col_{i}]")).to_have_value(field)
    preview = mapping.locator("table.preview")
    expect(preview.locator("tbody tr.row-bad")).to_have_count(0)
    expect(preview.locator("tbody td", has_text=SCRIPT).first).to_have_text(SCRIPT)


def expect_card(page: Page, *, name: str, address: str, note: str, tags: list[str], groups: list[str]) -> None:
    expect(page).to_have_url(CLIENT_URL)
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator(".page-head .badge-info")).to_have_text(tags)
    facts = page.locator("dl.facts")
    expect(facts.locator("dt:text-is('Address') + dd")).to_have_text(address)
    expect(facts.locator("dt:text-is('Note') + dd")).to_have_text(note)
    expect(facts.locator("dt:text-is('Interests') + dd .badge-info")).to_have_text(groups)


def open_card(page: Page, name: str) -> None:
    open_clients(page)
    page.locator("tbody#rows a.client-name").filter(has_text=re.compile("^" + re.escape(name) + "$")).first.click()


def add_client_by_form(page: Page) -> dict[str, str]:
    """Clients → + New client, every text field typed with a payload."""
    typed = {"last": IMG, "first": IMG, "middle": SCRIPT, "address": "@SUM(A1)", "email": "=form@example.com",
             "tags": f"=1+2, {SCRIPT}, {IMG}", "note": "\n".join(STORED)}
    open_clients(page)
    page.get_by_role("link", name="+ New client").click()
    name = page.get_by_role("group", name="Name")
    name.get_by_label("Last name").fill(typed["last"])
    name.get_by_label("First name").fill(typed["first"])
    name.get_by_label("Patronymic").fill(typed["middle"])
    contacts = page.get_by_role("group", name="Contacts")
    contacts.get_by_label("Phone").fill("+7 916 400 99 98")
    contacts.get_by_label("Email").fill(typed["email"])
    contacts.get_by_label("Birth date").fill(BIRTH)
    contacts.get_by_label("Address").fill(typed["address"])
    for group in (SCRIPT, "-2+3"):  # product groups the import created from payloads, as checkboxes
        page.locator("label.check", has=page.locator("input[name=product_group_ids]")).filter(
            has_text=re.compile("^\\s*" + re.escape(group) + "\\s*$")).locator("input").check()
    tags_and_note = page.get_by_role("group", name="Tags and note")
    tags_and_note.get_by_label("Tags").fill(typed["tags"])
    tags_and_note.get_by_label("Note").fill(typed["note"])
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("Client saved.")
    return typed


def export_rows(page: Page) -> dict[str, dict[str, str]]:
    """Export list: CSV from the list page, rows keyed by the phone's digits."""
    open_clients(page)
    with page.expect_download(timeout=15_000) as info:
        page.get_by_role("link", name="Export list: CSV").click()
    text = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    return {re.sub(r"\D", "", r["Phone"]): r for r in csv.DictReader(io.StringIO(text), delimiter=";")}


def test_payloads_are_shown_escaped_everywhere_and_exported_neutralised(
        page: Page, worker: subprocess.Popen, tmp_path: Path) -> None:
    watch = Watch(page)
    signup(page)
    csv_path = tmp_path / FILE_NAME
    rows = write_hostile_csv(csv_path)

    # 1. The import, through the upload and mapping screens, with the worker running.
    upload_hostile(page, csv_path, rows)
    watch.check(page, "mapping screen")
    start_import_and_watch(page, worker, rows)
    import_url = page.url
    watch.check(page, "import result")
    open_imports(page)
    expect(page.locator("table.table tbody tr").filter(has_text=FILE_NAME).first).to_be_visible()
    watch.check(page, "import history")

    # 2. The list: every payload name is on it, literally.
    open_clients(page)
    expect(page.locator("#count")).to_have_text(str(rows))
    names = page.locator("tbody#rows a.client-name")
    for stored in STORED:
        expect(names.filter(has_text=re.compile("^" + re.escape(f"{stored} {stored} {stored}") + "$"))).to_have_count(
            2 if stored == IMG else 1)
    watch.check(page, "client list")

    # Live search with part of a payload, typed.
    search_for(page, "<img src", typed=True)
    expect(page.locator("tbody#rows tr")).to_have_count(2)
    expect(names).to_have_text([f"{IMG} {IMG} {IMG}"] * 2)
    watch.check(page, "live search <img")
    page.locator("#q").select_text()  # the next keystrokes replace the first search
    # (A name "<script>…</script>" cannot be searched for: PostgreSQL's text parser drops the whole tag.)
    search_for(page, "SUM(A1", typed=True)
    expect(names).to_have_count(2)
    for stored in ("+SUM(A1:A2)", "@SUM(A1)"):
        row = page.locator("tbody#rows tr").filter(has=page.locator("a.client-name", has_text=stored))
        expect(row.locator("a.client-name")).to_have_text(f"{stored} {stored} {stored}")
        expect(row.locator("td").last.locator(".badge")).to_have_text([stored])  # the tags column
    watch.check(page, "live search SUM(A1")
    page.wait_for_load_state("networkidle")  # no search request still in flight to push its URL after we leave

    # 3. The cards of the imported payload rows.
    for stored in (SCRIPT, IMG, "=1+2", "@SUM(A1)"):
        open_card(page, f"{stored} {stored} {stored}")
        expect_card(page, name=f"{stored} {stored} {stored}", address=stored, note=stored, tags=[stored],
                    groups=[stored])
        expect(page.locator("dl.facts dt:text-is('Interests') + dd .badge:not(.badge-info)")).to_have_text([stored])
        watch.check(page, f"card of {stored!r}")
        if email_for(stored):
            expect(page.locator("dl.facts").get_by_role("link", name=email_for(stored))).to_have_attribute(
                "href", f"mailto:{email_for(stored)}")

    # 4. A client typed into the form with the payloads: its card, and its edit form round-trips them.
    typed = add_client_by_form(page)
    expect_card(page, name=f"{IMG} {IMG} {SCRIPT}", address=typed["address"], note=typed["note"],
                tags=["=1+2", SCRIPT, IMG], groups=["-2+3", SCRIPT])  # dictionary order
    expect(page.locator("dl.facts").get_by_role("link", name=typed["email"])).to_be_visible()
    watch.check(page, "card of the typed client")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hostile-card.png"), full_page=True)
    page.get_by_role("link", name="Edit", exact=True).click()
    for label, key in (("Last name", "last"), ("Patronymic", "middle"), ("Address", "address"), ("Note", "note")):
        expect(page.get_by_label(label, exact=True)).to_have_value(typed[key].replace("\r", ""))
    watch.check(page, "edit form")

    # 5. Duplicates (three cards named like the <img> payload, same birth date), audit log, import result.
    slug = re.search(r"/t/([a-z0-9-]+)/", page.url)[1]
    visit(page, f"/t/{slug}/clients/duplicates")
    group = page.locator("section.dup-group").filter(has_text="same name and birth date")
    expect(group.locator("tbody a")).to_have_text([f"{IMG} {IMG} {IMG}"] * 2 + [f"{IMG} {IMG} {SCRIPT}"])
    watch.check(page, "duplicates")
    visit(page, f"/t/{slug}/audit")
    expect(page.locator("#audit-rows tbody tr").first).not_to_have_class("empty")
    watch.check(page, "audit log")
    visit(page, import_url)
    expect(page.locator("h1")).to_have_text(FILE_NAME)
    expect(page.locator("section.report [data-count=created]")).to_have_text(str(rows))
    watch.check(page, "import result, reopened")

    # 6. The CSV export: formula cells get formula_safe's apostrophe, HTML is kept as text.
    exported = export_rows(page)
    assert len(exported) == rows + 1, sorted(exported)
    for i, stored in enumerate(STORED):
        row = exported[phone(i)[1:]]
        for column in ("Last name", "First name", "Patronymic", "Address", "Note", "Tags", "Product groups",
                       "Directions"):
            assert row[column] == formula_safe(stored), (column, stored, row[column])
            assert row[column] == ("'" + stored if stored in FORMULAS else stored), (column, row[column])
        assert row["Email"] == ("'" + email_for(stored) if email_for(stored) else ""), row["Email"]
    typed_row = exported["79164009998"]
    assert (typed_row["Last name"], typed_row["Patronymic"]) == (IMG, SCRIPT)
    assert (typed_row["Address"], typed_row["Email"]) == ("'@SUM(A1)", "'=form@example.com")
    assert typed_row["Tags"] == f"'=1+2, {SCRIPT}, {IMG}", typed_row["Tags"]
    assert typed_row["Product groups"] == f"'-2+3, {SCRIPT}", typed_row["Product groups"]  # as on the card
    watch.check(page, "after the export")
