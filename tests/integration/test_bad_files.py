"""A corpus of bad import files, written by the tests, through the API and the web upload.

Each file gets a clear rejection (the message is checked) or a safe import (the values are checked in
the database, literally). After every attempt the tenant's clients, imports and jobs are counted:
a rejected file leaves nothing behind. The number of bad inputs tried is printed at the end.
"""
from __future__ import annotations

import csv
import html
import io
import random
import zipfile

import httpx
import openpyxl
import pytest

from testkit import Browser, cli, sql
from tests.integration.processes import wait_for

TRIED: list[str] = []
PAYLOADS = ["=1+2", "+SUM(A1:A2)", "-2+3", "@SUM(A1)", "\t=1+1", "\r=2+2", "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>']
TEXT_COLUMNS = {"Фамилия": "last_name", "Имя": "first_name", "Отчество": "middle_name", "Адрес": "address",
                "Теги": "tags", "Комментарий": "note", "Группы товаров": "product_groups",
                "Направления": "directions", "Кем выдан": "passport_issued_by"}


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["ФИО", "Телефон"])
    book.active.append(["Иванов Иван", "+79161234567"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _zip_bomb() -> bytes:
    """30 MB of sheet XML that packs into a few kilobytes: refused before anything unpacks it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<row/>" * 5_000_000)
    return out.getvalue()


def hostile_csv(phones: list[str]) -> bytes:
    """Every free-text field of a client holds one payload; a unique phone tells the rows apart."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_ALL)  # as Excel writes
    writer.writerow([*TEXT_COLUMNS, "Телефон"])
    for payload, phone in zip(PAYLOADS, phones, strict=True):
        writer.writerow([payload] * len(TEXT_COLUMNS) + [phone])
    return out.getvalue().encode()


REJECTED = [  # (case, file name, content, words of the message)
    ("utf-16 without a BOM", "u16.csv", "ФИО;Телефон\nИванов Иван;+79161234567\n".encode("utf-16-le"),
     "not a text table"),
    ("random bytes", "random.csv", random.Random(7).randbytes(50_000), "not a text table"),
    ("utf-8 and cp1251 mixed", "mixed.csv",
     "ФИО;Телефон\nИванов Иван;+79161234567\n".encode() + "Петров Пётр;+79161234568\n".encode("cp1251") * 3,
     "mixes text encodings"),
    ("truncated xlsx", "cut.xlsx", _xlsx()[:3000], "damaged or truncated"),
    ("zip bomb xlsx", "bomb.xlsx", _zip_bomb(), "zip bomb"),
    ("10,000 columns", "wide.csv", (";".join(f"c{i}" for i in range(10_000)) + "\n1\n").encode(),
     "10,000 columns; the limit is 500"),
    ("1 MB cell", "cell.csv", b"Name;Note\nIvan;" + b"x" * 1_000_000 + b"\n", "longer than 10,000 characters"),
    ("binary (png)", "photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40, "not a text table"),
    ("empty", "empty.csv", b"", "The file is empty."),
    ("header only", "header.csv", "ФИО;Телефон\n".encode(), "header but no rows"),
    ("old xls", "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000), "Old .xls"),
    ("html saved as xls", "crm.xls", b"<html><body><table><tr><td>x</td></tr></table></body></html>", "web page"),
    ("unclosed quote", "quote.csv", b'Name;Note\nIvan;"never closed\n', "never closed"),
]


@pytest.fixture(scope="module")
def tenant(base_url: str, worker, db_url: str):
    b = Browser(base_url)
    slug = b.signup("Bad Files Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "bad").stdout.strip()
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                       timeout=60)
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]
    yield b, slug, api, schema
    api.close()
    b.close()


def counts(db_url: str, schema: str) -> tuple:
    return sql(db_url, f'SELECT (SELECT count(*) FROM "{schema}".clients), (SELECT count(*) FROM "{schema}".imports),'
                       f' (SELECT count(*) FROM "{schema}".jobs), (SELECT count(*) FROM "{schema}".product_groups)')[0]


@pytest.mark.parametrize("case, name, content, message", REJECTED, ids=[r[0] for r in REJECTED])
def test_a_bad_file_is_refused_clearly_and_leaves_nothing(tenant, db_url, case, name, content, message) -> None:
    b, slug, api, schema = tenant
    before = counts(db_url, schema)
    r = api.post("/api/v1/imports", files={"file": (name, content)}, data={"kind": "clients"})
    assert r.status_code == 422, (case, r.status_code, r.text[:300])
    assert message in r.json()["fields"]["file"], (case, r.json())
    assert counts(db_url, schema) == before, case
    # The pages store the upload and a worker reads it (the request parses nothing): the import
    # fails there with the same sentence, keeps no file, and adds no client.
    page = b.post(f"/t/{slug}/imports", data={"kind": "clients", "_csrf_token": b.csrf()},
                  files={"file": (name, content)})
    if not content:  # what needs no reading is still refused at once
        assert page.status_code == 422 and message in html.unescape(page.text), (case, page.status_code)
    else:
        assert page.status_code == 303, (case, page.status_code)
        url = page.headers["location"]
        shown = wait_for(lambda: "badge-bad" in (text := b.get(url).text) and text, 60, f"{case} to fail", every=0.3)
        assert message in html.unescape(shown), case
        assert 'id="mapping"' not in shown, case
        import_id = int(url.rsplit("/", 1)[1])
        assert sql(db_url, f'SELECT status, payload IS NULL FROM "{schema}".imports WHERE id = :i',
                   {"i": import_id}) == [("failed", True)], case
    assert counts(db_url, schema)[0::3] == before[0::3], case  # no client, no product group
    TRIED.extend([f"api: {case}", f"web: {case}"])


def test_a_bad_mapping_after_a_good_upload_leaves_no_import_behind(tenant, db_url) -> None:
    """The API checks the file (and writes the import row), then the mapping: the row must go too."""
    _b, _slug, api, schema = tenant
    before = counts(db_url, schema)
    for mapping, words in (("not json", "JSON object"), ('{"No such column": "phone"}', "No such column"),
                           ('{"0": "full_name", "1": "salary"}', "unknown column or field")):
        r = api.post("/api/v1/imports", files={"file": ("ok.csv", "ФИО;Телефон\nИванов Иван;+79161234567\n".encode())},
                     data={"kind": "clients", "mapping": mapping})
        assert r.status_code == 422 and words in r.json()["fields"]["mapping"], r.text
        TRIED.append(f"api: mapping {mapping}")
    assert counts(db_url, schema) == before


def wait(api: httpx.Client, import_id: int) -> dict:
    def finished() -> dict | None:
        body = api.get(f"/api/v1/imports/{import_id}").json()
        return body if body["status"] in ("done", "failed") else None

    return wait_for(finished, 60, f"import {import_id} to finish", every=0.3)


@pytest.mark.parametrize("name, content, expected", [
    ("latin1.csv", "Name;City\nMüller Jürgen;Köln\n".encode("latin-1"), ("Müller", "Jürgen")),
    ("utf16.csv", "ФИО;Телефон\nЁлкина Дарья;+79160001122\n".encode("utf-16"), ("Ёлкина", "Дарья")),
    ("cp1251.csv", "ФИО;Телефон\nЩукин Фёдор;+79160001133\n".encode("cp1251"), ("Щукин", "Фёдор")),
])
def test_other_encodings_import_with_the_right_letters(tenant, db_url, name, content, expected) -> None:
    _b, _slug, api, schema = tenant
    r = api.post("/api/v1/imports", files={"file": (name, content)}, data={"kind": "clients"})
    assert r.status_code == 202, r.text
    assert wait(api, r.json()["id"])["created"] == 1
    assert sql(db_url, f'SELECT last_name, first_name FROM "{schema}".clients WHERE last_name = :l',
               {"l": expected[0]}) == [expected]
    TRIED.append(f"api: {name}")


def _check_literal(db_url: str, schema: str, phones: list[str]) -> None:
    rows = sql(db_url, f'SELECT phone, last_name, first_name, middle_name, address, note, tags, passport_mask '
                       f'FROM "{schema}".clients WHERE phone = ANY(:p) ORDER BY phone', {"p": phones})
    assert len(rows) == len(PAYLOADS)
    by_phone = {r[0]: r for r in rows}
    for payload, phone in zip(PAYLOADS, phones, strict=True):
        stored = payload.strip()  # cells are trimmed, like every imported value
        _phone, last, first, middle, address, note, tags, _mask = by_phone[phone]
        assert (last, first, middle, address, note, tags) == (stored, stored, stored, stored, stored, [stored])


def test_formula_and_script_payloads_import_literally_through_the_api(tenant, db_url) -> None:
    _b, _slug, api, schema = tenant
    phones = [f"+7916100{i:04d}" for i in range(len(PAYLOADS))]
    r = api.post("/api/v1/imports", files={"file": ("hostile.csv", hostile_csv(phones))}, data={"kind": "clients"})
    assert r.status_code == 202, r.text
    body = wait(api, r.json()["id"])
    assert (body["status"], body["created"], body["rejected"]) == ("done", len(PAYLOADS), 0), body
    _check_literal(db_url, schema, phones)
    TRIED.append("api: formula and script payloads in every text field")


def test_formula_and_script_payloads_through_the_web_upload_are_shown_escaped(tenant, db_url) -> None:
    b, slug, api, schema = tenant
    phones = [f"+7916200{i:04d}" for i in range(len(PAYLOADS))]
    r = b.post(f"/t/{slug}/imports", data={"kind": "clients", "_csrf_token": b.csrf()},
               files={"file": ("hostile.csv", hostile_csv(phones))})
    assert r.status_code == 303, r.text[:300]
    page = wait_for(lambda: 'id="mapping"' in (text := b.get(r.headers["location"]).text) and text, 60,
                    "the file to be read", every=0.3)  # the mapping screen previews the first rows
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    fields = [*TEXT_COLUMNS.values(), "phone"]
    start = b.form(r.headers["location"] + "/start",
                   {**{f"col_{i}": f for i, f in enumerate(fields)}, "on_match": "update", "mode": "accepted"})
    assert start.status_code == 303
    import_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert wait(api, import_id)["created"] == len(PAYLOADS)
    _check_literal(db_url, schema, phones)
    card_list = b.get(f"/t/{slug}/clients", params={"q": "img"}).text
    assert "<img src=x onerror" not in card_list and "&lt;img src=x onerror=alert(1)&gt;" in card_list
    TRIED.append("web: formula and script payloads in every text field")


def test_report_the_number_of_bad_inputs(capsys: pytest.CaptureFixture) -> None:
    with capsys.disabled():
        print(f"\nbad import inputs tried: {len(TRIED)} ({len(REJECTED)} rejected files x 2 ways, "
              f"mappings, encodings, payload files)")
    assert len(TRIED) >= 2 * len(REJECTED) + 6
