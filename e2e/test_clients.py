"""The client card index in a real browser: a client with a passport, operations and live metrics
on the card, active search on the list, an import through the mapping screen with its progress
bar, the CSV export, and undoing an import."""
from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Dialog, Locator, Page, Response, expect

from e2e.test_foundation import signup, visit
from saas.core import clock

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CLIENT_URL = re.compile(r"/t/[a-z0-9-]+/clients/\d+$")
IMPORT_URL = re.compile(r"/t/[a-z0-9-]+/imports/\d+$")
MARKER = 42


@dataclass
class Person:
    last: str
    first: str
    middle: str
    phone: str  # as typed
    e164: str  # as stored (and dialled: the tel: link)
    email: str

    @property
    def full_name(self) -> str:
        return f"{self.last} {self.first} {self.middle}"

    @property
    def shown(self) -> str:  # the card and the list show a phone as people read it
        d = self.e164
        return f"{d[:2]} {d[2:5]} {d[5:8]}-{d[8:10]}-{d[10:]}"


ANNA = Person("Кузнецова", "Анна", "Петровна", "8 916 555 12 34", "+79165551234", "anna.k@example.com")
OLEG = Person("Смирнов", "Олег", "Иванович", "+7 903 222-33-44", "+79032223344", "oleg.s@example.com")


def shot(page: Page, name: str) -> None:
    """A screenshot of an intermediate state (the autouse fixture takes the final one)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def norm(text: str) -> str:
    """Whitespace normalised: Russian formatting uses non-breaking spaces."""
    return re.sub(r"\s+", " ", text.replace("\xa0", " ").replace("\u202f", " ")).strip()


def set_marker(page: Page) -> None:
    page.evaluate(f"window.__marker = {MARKER}")


def assert_no_reload(page: Page) -> None:
    assert page.evaluate("window.__marker") == MARKER, "the page was reloaded (the window marker is gone)"


def open_clients(page: Page) -> None:
    page.locator("nav.mainnav").get_by_role("link", name="Clients", exact=True).click()
    expect(page).to_have_url(re.compile(r"/t/[a-z0-9-]+/clients$"))
    expect(page.locator("h1")).to_have_text("Clients")


def open_imports(page: Page) -> None:
    page.locator("nav.mainnav").get_by_role("link", name="Imports", exact=True).click()
    expect(page).to_have_url(re.compile(r"/t/[a-z0-9-]+/imports$"))
    expect(page.locator("h1")).to_have_text("Imports")


def fill_name_and_contacts(page: Page, person: Person) -> None:
    name = page.get_by_role("group", name="Name")
    name.get_by_label("Last name").fill(person.last)
    name.get_by_label("First name").fill(person.first)
    name.get_by_label("Patronymic").fill(person.middle)
    contacts = page.get_by_role("group", name="Contacts")
    contacts.get_by_label("Phone").fill(person.phone)
    contacts.get_by_label("Email").fill(person.email)


def create_client(page: Page, person: Person) -> None:
    """From anywhere in the workspace: Clients → + New client → name and contacts → Save."""
    open_clients(page)
    page.get_by_role("link", name="+ New client").click()
    expect(page.locator("h1")).to_have_text("New client")
    fill_name_and_contacts(page, person)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(CLIENT_URL)
    expect(page.locator("h1")).to_have_text(person.full_name)


def metric(page: Page, name: str) -> Locator:
    return page.locator(f"dl#metrics [data-metric={name}]")


def money_digits(amount: int) -> str:
    return f"{amount:,}.00"


def expect_metrics(page: Page, *, deals: int, revenue: int, unpaid: int, overdue: int) -> None:
    expect(metric(page, "deals")).to_have_text(str(deals))
    for name, value in (("revenue", revenue), ("unpaid", unpaid), ("overdue", overdue)):
        expect(metric(page, name)).to_have_text(re.compile(rf"^\s*RUB\s?{re.escape(money_digits(value))}\s*$"))


def add_operation(page: Page, kind: str, occurred_on: date, amount: str, *, due_on: date | None = None,
                  paid_on: date | None = None) -> None:
    form = page.locator("#operations form.op-form").first
    form.get_by_label("Kind").select_option(kind)
    form.locator("input[name=occurred_on]").fill(occurred_on.isoformat())
    form.get_by_label("Amount").fill(amount)
    form.locator("input[name=due_on]").fill(due_on.isoformat() if due_on else "")
    form.locator("input[name=paid_on]").fill(paid_on.isoformat() if paid_on else "")
    form.get_by_role("button", name="Add", exact=True).click()


def write_clients_csv(path: Path, rows: int, phone_base: int) -> list[str]:
    """A cp1251, ';'-separated client file as Excel would save it; returns the phones (E.164)."""
    surnames = ["Смирнов", "Иванов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
                "Новиков", "Фёдоров"]
    names = ["Иван", "Пётр", "Сергей", "Андрей", "Алексей", "Дмитрий", "Николай", "Михаил", "Олег", "Юрий"]
    patronymics = ["Иванович", "Петрович", "Сергеевич"]
    phones = [f"+7916{phone_base + i:07d}" for i in range(rows)]
    lines = ["ФИО;Телефон;Email"]
    for i, phone in enumerate(phones):
        full = f"{surnames[i % 10]} {names[i // 10 % 10]} {patronymics[i // 100 % 3]}"
        lines.append(f"{full};{phone};client{phone_base + i}@example.com")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))
    return phones


@contextmanager
def held(worker: subprocess.Popen) -> Iterator[None]:
    """Hold the queue worker still, so the 'waiting' state of an import is seen for sure."""
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(worker.pid, signal.SIGCONT)


def upload_to_mapping(page: Page, csv_path: Path, rows: int, title: str | None = None) -> None:
    """Imports → file → Clients → Upload and map columns: lands on the mapping screen of the file."""
    open_imports(page)
    form = page.locator("form[enctype='multipart/form-data']")
    form.get_by_label("File").set_input_files(str(csv_path))
    form.get_by_role("group", name="The file holds").get_by_label("Clients").check()
    form.get_by_role("button", name="Upload and map columns").click()
    expect(page).to_have_url(IMPORT_URL)
    expect(page.locator("h1")).to_have_text(title or csv_path.name)
    # A worker reads the upload (the request parses nothing); the page follows it, then shows the mapping.
    expect(page.locator("form#mapping")).to_be_visible(timeout=30_000)
    expect(page.locator(".page-head")).to_contain_text(f"{rows} rows")


def upload(page: Page, csv_path: Path, rows: int) -> None:
    upload_to_mapping(page, csv_path, rows)
    expect(page.locator(".page-head")).to_contain_text("· cp1251 · «;»")
    expect(page.locator(".page-head .badge")).to_have_text("waiting for mapping")
    expect(page.locator("form#mapping table.mapping-table thead th")).to_have_text(["ФИО", "Телефон", "Email"])


def expect_dry_run(page: Page, phone_base: int) -> None:
    preview = page.locator("form#mapping table.preview")
    # The full name is shown split, as it will be stored.
    expect(preview.locator("thead th")).to_have_text(
        ["Line", "Last name", "First name", "Patronymic", "Phone", "Email", "Check"])
    body_rows = preview.locator("tbody tr")
    expect(body_rows).to_have_count(10)
    expect(body_rows.first.locator("td")).to_have_text(
        ["2", "Смирнов", "Иван", "Иванович", f"+7916{phone_base:07d}", f"client{phone_base}@example.com", "OK"])
    expect(preview.locator("tbody tr.row-bad")).to_have_count(0)


def expect_mapping_selects(page: Page) -> None:
    """Each column's select shows the field it was matched to."""
    mapping = page.locator("form#mapping")
    expect(mapping.locator("select[name^=col_]")).to_have_count(3)
    for header, value, label in EXPECTED_MAPPING:
        select = mapping.get_by_label(f"Field for column {header}")
        expect(select.locator("option:checked")).to_have_text(label)
        expect(select).to_have_value(value)


EXPECTED_MAPPING = (("ФИО", "full_name", "Full name (one column)"), ("Телефон", "phone", "Phone"),
                    ("Email", "email", "Email"))


def work_around_mapping_selects(page: Page) -> None:
    """WORKAROUND for the mapping-select bug (templates/clients/import.html:54, the inner loop's
    `loop.index0` marks "Full name" in every select): put the values the server matched back into
    the selects without a change event (a change re-renders them wrong again), so that pressing
    "Import" submits the right mapping. Used only where the import is a step, not the subject;
    test_import_mapping_screen checks the selects themselves."""
    for header, value, _label in EXPECTED_MAPPING:
        page.locator("form#mapping").get_by_label(f"Field for column {header}").evaluate(
            "(el, v) => { el.value = v; }", value)


def start_import_and_watch(page: Page, worker: subprocess.Popen, rows: int) -> None:
    """Press Import, see the progress bar poll while the worker is held, end on the report."""
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/progress") else None)

    with held(worker):
        page.get_by_role("button", name=f"Import {rows} rows").click()
        expect(page).to_have_url(IMPORT_URL)
        expect(page.locator(".page-head .badge")).to_have_text("queued")
        box = page.locator("#import-progress")
        progress = box.locator("progress")
        expect(progress).to_be_visible()
        expect(progress).to_have_attribute("max", str(rows))
        expect(box).to_contain_text(f"In the queue… 0 / {rows}")
        # The bar polls for its own updates while it waits (every 0.7 s).
        page.wait_for_timeout(1800)
        assert len(polls) >= 2, f"the progress box did not poll itself: {polls}"
        expect(progress).to_be_visible()
        shot(page, "clients-import-progress")

    # Once the worker is done, the page refreshes itself into the report.
    report = page.locator("section.report")
    expect(report.get_by_role("heading", name="Result")).to_be_visible(timeout=60_000)
    expect(page.locator("progress")).to_have_count(0)
    expect(page.locator(".page-head .badge")).to_have_text("done")
    expect(report.locator("[data-count=created]")).to_have_text(f"{rows:,}")
    expect(report.locator("[data-count=updated]")).to_have_text("0")
    expect(report.locator("[data-count=rejected]")).to_have_text("0")
    expect(page.locator("form#mapping")).to_have_count(0)


def import_clients(page: Page, worker: subprocess.Popen, csv_path: Path, rows: int) -> None:
    """An import as a step of another flow (see work_around_mapping_selects)."""
    upload(page, csv_path, rows)
    work_around_mapping_selects(page)
    start_import_and_watch(page, worker, rows)


def answer_next_dialog(page: Page, *, accept: bool) -> list[str]:
    """Accept or dismiss the next confirm(); its message lands in the returned list, for the test to check."""
    dialogs: list[str] = []

    def answer(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", answer)
    return dialogs


def search_for(page: Page, text: str, *, typed: bool = False) -> None:
    """Put `text` in the search box (no Enter) and wait for htmx to bring the rows for it."""
    def is_search(response: Response) -> bool:
        query = parse_qs(urlsplit(response.url).query)
        return (urlsplit(response.url).path.endswith("/clients") and query.get("q") == [text]
                and response.request.headers.get("hx-request") == "true")

    box = page.locator("#q")
    with page.expect_response(is_search) as info:
        if typed:
            box.press_sequentially(text, delay=60)
        else:
            box.fill(text)
    assert info.value.status == 200


# ---- tests -------------------------------------------------------------------------------------


def test_create_client_with_passport(page: Page) -> None:
    signup(page)
    open_clients(page)
    expect(page.locator("#count")).to_have_text("0")
    page.get_by_role("link", name="+ New client").click()
    expect(page).to_have_url(re.compile(r"/clients/new$"))
    expect(page.locator("h1")).to_have_text("New client")

    fill_name_and_contacts(page, ANNA)
    page.get_by_role("group", name="Contacts").get_by_label("Birth date").fill("1988-04-17")
    passport = page.get_by_role("group", name="Passport")
    passport.get_by_label("Series").fill("4510")
    passport.get_by_label("Number").fill("123456")
    passport.get_by_label("Issued by").fill("ОВД Тверского района г. Москвы")
    passport.get_by_label("Date of issue").fill("2010-05-20")
    passport.get_by_label("Division code").fill("770-001")
    page.get_by_role("group", name="Marketing consent").get_by_label("Email").check()
    page.get_by_role("group", name="Tags and note").get_by_label("Tags").fill("vip")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(CLIENT_URL)
    expect(page.locator("#flash")).to_contain_text("Client saved.")
    expect(page.locator("h1")).to_have_text(ANNA.full_name)
    expect(page.locator(".page-head .badge-info")).to_have_text(["vip"])
    facts = page.locator("dl.facts")
    expect(facts.get_by_role("link", name=ANNA.shown)).to_have_attribute("href", f"tel:{ANNA.e164}")
    expect(facts.get_by_role("link", name=ANNA.email)).to_be_visible()
    expect(facts).to_contain_text("Apr 17, 1988")
    expect(facts.locator(".badge-ok")).to_have_text(["✓ email"])

    passport_dd = page.locator("dd#passport")
    expect(passport_dd).to_contain_text("••")
    expect(passport_dd).not_to_contain_text("123456")
    expect(page.locator("body")).not_to_contain_text("123456")

    # The owner may reveal it in place: an htmx swap, no navigation.
    card_url = page.url
    set_marker(page)
    passport_dd.get_by_role("button", name="Show").click()
    expect(passport_dd.locator(".mono")).to_have_text("4510 123456")
    expect(passport_dd).to_contain_text("ОВД Тверского района г. Москвы")
    expect(passport_dd).to_contain_text("770-001")
    expect(passport_dd).to_contain_text("This view was recorded in the audit log.")
    expect(passport_dd.get_by_role("button", name="Show")).to_have_count(0)
    assert page.url == card_url
    assert_no_reload(page)

    # The list now holds the client.
    open_clients(page)
    expect(page.locator("#count")).to_have_text("1")
    row = page.locator("tbody#rows tr").filter(has_text=ANNA.last)
    expect(row.get_by_role("link", name=ANNA.full_name)).to_be_visible()
    expect(row).to_contain_text(ANNA.shown)
    expect(row.locator(".badge")).to_have_text(["vip"])


def test_operations_update_metrics_without_reload(page: Page) -> None:
    signup(page)
    create_client(page, ANNA)
    expect_metrics(page, deals=0, revenue=0, unpaid=0, overdue=0)
    expect(page.locator("#operations tbody")).to_contain_text("No operations yet.")
    card_url = page.url
    set_marker(page)
    today = clock.today()
    ops = page.locator("#operations table.ops-table tbody tr")

    add_operation(page, "sale", today - timedelta(days=10), "1000", paid_on=today - timedelta(days=10))
    expect(page.locator("#operations tr.op-sale")).to_have_count(1)
    expect_metrics(page, deals=1, revenue=1000, unpaid=0, overdue=0)

    add_operation(page, "service", today - timedelta(days=5), "500", due_on=today - timedelta(days=3))
    service = page.locator("#operations tr.op-service")
    expect(service).to_have_count(1)
    expect(service.locator(".badge-bad")).to_have_text("overdue")
    expect_metrics(page, deals=2, revenue=1500, unpaid=500, overdue=500)

    add_operation(page, "return", today - timedelta(days=2), "200")
    ret = page.locator("#operations tr.op-return")
    expect(ret).to_have_count(1)
    expect(ret.locator("td.num")).to_have_text(re.compile(r"^−RUB200\.00$"))
    expect(ops).to_have_count(3)
    expect_metrics(page, deals=2, revenue=1300, unpaid=500, overdue=500)
    # Checked on the digits too, whatever the spaces of the locale.
    assert re.sub(r"\D", "", metric(page, "revenue").inner_text()) == "130000"
    shot(page, "clients-card-three-operations")

    # The form is ready for the next one (emptied by the swap).
    expect(page.locator("#operations form.op-form").first.get_by_label("Amount")).to_have_value("")

    # Edit the service in place: paid now, and 750 instead of 500.
    service.get_by_role("link", name="Edit").click()
    editing = page.locator("#operations tr.editing")
    expect(editing).to_have_count(1)
    expect(editing.locator("input[name=amount]")).to_have_value("500.00")
    expect(page.locator("#operations tr.op-service")).to_have_count(0)
    editing.locator("input[name=amount]").fill("750")
    editing.locator("input[name=paid_on]").fill((today - timedelta(days=1)).isoformat())
    editing.get_by_role("button", name="Save").click()
    expect(page.locator("#operations tr.editing")).to_have_count(0)
    expect(service).to_have_count(1)
    expect(service.locator("td.num")).to_have_text(re.compile(r"^RUB750\.00$"))
    expect(service.locator(".badge-bad")).to_have_count(0)
    expect_metrics(page, deals=2, revenue=1550, unpaid=0, overdue=0)

    # Deleting asks first; dismissing keeps the operation.
    dialogs = answer_next_dialog(page, accept=False)
    ret.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(500)
    assert dialogs == ["Delete this operation?"], dialogs
    expect(ret).to_have_count(1)
    expect_metrics(page, deals=2, revenue=1550, unpaid=0, overdue=0)

    page.once("dialog", lambda d: d.accept())
    ret.get_by_role("button", name="Delete").click()
    expect(ret).to_have_count(0)
    expect(ops).to_have_count(2)
    expect_metrics(page, deals=2, revenue=1750, unpaid=0, overdue=0)

    assert page.url == card_url
    assert_no_reload(page)

    # The numbers are kept: a fresh load of the card shows the same, and so does the list.
    page.reload()
    expect_metrics(page, deals=2, revenue=1750, unpaid=0, overdue=0)
    expect(ops).to_have_count(2)
    open_clients(page)
    row = page.locator("tbody#rows tr").filter(has_text=ANNA.last)
    expect(row.locator("td.num").nth(0)).to_have_text("2")
    expect(row.locator("td.num").nth(1)).to_have_text("RUB1,750.00")

    # In Russian the same amount is written the Russian way.
    row.get_by_role("link", name=ANNA.full_name).click()
    expect(page).to_have_url(CLIENT_URL)
    page.locator("form.lang button[value=ru]").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(metric(page, "revenue")).to_have_text(re.compile(r"1[\s\u00a0\u202f]750,00[\s\u00a0\u202f]₽"))
    assert norm(metric(page, "revenue").inner_text()) == "1 750,00 ₽"


def test_active_search_on_the_list(page: Page) -> None:
    signup(page)
    create_client(page, ANNA)
    create_client(page, OLEG)
    open_clients(page)
    expect(page.locator("#count")).to_have_text("2")
    rows = page.locator("tbody#rows tr")
    expect(rows).to_have_count(2)
    list_url = page.url
    set_marker(page)

    # Part of the surname, typed: the rows follow without Enter.
    search_for(page, "кузне", typed=True)
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("link", name=ANNA.full_name)).to_be_visible()
    expect(page.locator("#count")).to_have_text("1")  # the count follows the rows
    expect(page.locator("tbody#rows")).not_to_contain_text(OLEG.last)
    expect(page).to_have_url(re.compile(r"[?&]q=(%D0%BA%D1%83%D0%B7%D0%BD%D0%B5|кузне)"))

    # Nonsense: the empty-result row.
    search_for(page, "qzxwvjk")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_text("No clients match.")
    expect(page.locator("#count")).to_have_text("0")

    # The other client's first name.
    search_for(page, "Олег")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(OLEG.full_name)

    # A phone prefix in international form.
    search_for(page, "+7 916 555")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ANNA.full_name)

    assert page.url != list_url  # the search is in the address (hx-push-url) ...
    assert_no_reload(page)  # ... but the page was never reloaded

    # A phone prefix as Russians type it, with the trunk 8 (the card was saved from "8 916 555 12 34").
    search_for(page, "8916555")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ANNA.full_name)
    expect(rows.first).to_contain_text(ANNA.shown)
    assert_no_reload(page)


def test_import_mapping_screen(page: Page, worker: subprocess.Popen, tmp_path: Path) -> None:
    signup(page)
    csv_path = tmp_path / "clients-cp1251.csv"
    write_clients_csv(csv_path, 300, phone_base=1000000)
    upload(page, csv_path, 300)
    expect_dry_run(page, 1000000)
    shot(page, "clients-import-mapping")
    expect_mapping_selects(page)
    start_import_and_watch(page, worker, 300)


def test_import_progress_until_result(page: Page, worker: subprocess.Popen, tmp_path: Path) -> None:
    signup(page)
    csv_path = tmp_path / "clients-progress.csv"
    phones = write_clients_csv(csv_path, 300, phone_base=1000000)
    upload(page, csv_path, 300)
    expect_dry_run(page, 1000000)
    work_around_mapping_selects(page)
    start_import_and_watch(page, worker, 300)

    # The import is in the history, and the clients are on the list.
    open_imports(page)
    history = page.locator("table.table tbody tr").filter(has_text=csv_path.name)
    expect(history.locator(".badge")).to_have_text("done")
    expect(history.locator("td.num")).to_have_text("300")
    open_clients(page)
    expect(page.locator("#count")).to_have_text("300")
    search_for(page, phones[123])
    expect(page.locator("tbody#rows tr")).to_have_count(1)
    p = phones[123]  # shown as people read it
    expect(page.locator("tbody#rows tr").first).to_contain_text(f"{p[:2]} {p[2:5]} {p[5:8]}-{p[8:10]}-{p[10:]}")


def test_export_list_csv(page: Page, worker: subprocess.Popen, tmp_path: Path) -> None:
    signup(page)
    csv_path = tmp_path / "export-source.csv"
    phones = write_clients_csv(csv_path, 300, phone_base=2000000)
    import_clients(page, worker, csv_path, 300)

    open_clients(page)
    expect(page.locator("#count")).to_have_text("300")
    with page.expect_download(timeout=15_000) as info:
        page.get_by_role("link", name="Export list: CSV").click()
    download = info.value
    assert download.suggested_filename == "clients.csv"
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), data[:20]
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("ID;Last name;First name;Patronymic;"), text.splitlines()[0]
    assert phones[0] in text and phones[-1] in text
    assert len(text.strip().splitlines()) == 301
    # The list page is still there: the download did not replace it.
    expect(page).to_have_url(re.compile(r"/t/[a-z0-9-]+/clients$"))
    expect(page.locator("h1")).to_have_text("Clients")
    expect(page.locator("#count")).to_have_text("300")


def test_undo_import(page: Page, worker: subprocess.Popen, tmp_path: Path) -> None:
    signup(page)
    create_client(page, ANNA)  # typed by hand: the undo must keep it
    csv_path = tmp_path / "to-undo.csv"
    phones = write_clients_csv(csv_path, 300, phone_base=3000000)
    import_clients(page, worker, csv_path, 300)
    import_url = page.url

    open_clients(page)
    expect(page.locator("#count")).to_have_text("301")

    visit(page, import_url)
    dialogs = answer_next_dialog(page, accept=True)
    page.get_by_role("button", name="Undo this import").click()
    expect(page.locator("#flash")).to_contain_text(
        "Import undone: 300 new clients and 0 operations removed, 0 clients restored.")
    assert dialogs and dialogs[0].startswith("Undo the whole import?"), dialogs
    expect(page).to_have_url(import_url)
    expect(page.locator(".page-head .badge")).to_have_text("undone")
    expect(page.get_by_role("button", name="Undo this import")).to_have_count(0)

    open_clients(page)
    expect(page.locator("#count")).to_have_text("1")
    rows = page.locator("tbody#rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ANNA.full_name)
    search_for(page, phones[0])
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_text("No clients match.")
