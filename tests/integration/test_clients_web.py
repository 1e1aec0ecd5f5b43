"""The client card index in the browser: forms, the card, passport reveal, operations via htmx,
archive, erase, data requests, exports, bulk actions and private caching."""
from __future__ import annotations

import csv
import io
import json
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest

from saas.core import clock
from testkit import Browser, audit_count, sql

TODAY = clock.today()
PRIVATE = "private, no-store"
HX = {"HX-Request": "true"}


# ---- helpers -------------------------------------------------------------------------------


def schema_of(db_url: str, slug: str) -> str:
    return sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]


def client_row(db_url: str, schema: str, cid: int) -> dict[str, Any]:
    result = sql(db_url, f'SELECT row_to_json(c)::text FROM "{schema}".clients c WHERE id = :i', {"i": cid})
    assert result, cid
    return json.loads(result[0][0])


FORM = {
    "last_name": "Смирнова", "first_name": "Анна", "middle_name": "Игоревна", "birth_date": "1990-04-12",
    "phone": "8 (916) 555-12-34", "email": "Anna.Smirnova@Example.com", "address": "Казань, ул. Баумана, 5",
    "note": "Любит скидки", "passport_series": "4510", "passport_number": "123456",
    "passport_issued_by": "ОУФМС по г. Казани", "passport_issued_on": "2010-05-20",
    "passport_division_code": "160-005", "consent_email": "1", "tags": "a, b",
}


def create_client(http: Browser, slug: str, **overrides: Any) -> int:
    r = http.form(f"/t/{slug}/clients", {**FORM, **overrides})
    assert r.status_code == 303, r.text
    match = re.fullmatch(rf"/t/{slug}/clients/(\d+)", r.headers["location"])
    assert match, r.headers["location"]
    return int(match.group(1))


def latest_mail_body(db_url: str, to: str) -> str:
    rows = sql(db_url, "SELECT body FROM shared.outbox WHERE recipient = :r ORDER BY id DESC LIMIT 1",
               {"r": to})
    assert rows, to
    return rows[0][0]


def member(http: Browser, make_http, db_url: str, slug: str, role: str) -> Browser:
    """Invite a member with a role and accept the invitation in a fresh browser."""
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    r = http.form(f"/t/{slug}/team/invite", {"email": email, "role": role})
    assert r.status_code == 303, r.text
    match = re.search(r"https?://[^/\s]+(/invite/[\w-]+)", latest_mail_body(db_url, email))
    assert match
    browser = make_http()
    r = browser.form(match.group(1), {"name": f"A {role}", "password": "member pass 123"})
    assert r.status_code == 303, r.text
    return browser


def metric(html: str, name: str) -> str:
    """The digits of a metric in the operations fragment (locale-independent)."""
    match = re.search(rf'data-metric="{name}"[^>]*>([^<]*)<', html)
    assert match, html[:2000]
    return re.sub(r"\D", "", match.group(1))


@pytest.fixture
def tenant(http: Browser, db_url: str) -> tuple[str, str]:
    slug = http.signup(f"Web Clients {secrets.token_hex(2)}")
    return slug, schema_of(db_url, slug)


# ---- create, card, reveal ------------------------------------------------------------------


def test_create_through_the_form_and_see_the_masked_card(http: Browser, tenant: tuple[str, str],
                                                          db_url: str) -> None:
    slug, schema = tenant
    new = http.get(f"/t/{slug}/clients/new")
    assert new.status_code == 200 and new.headers["cache-control"] == PRIVATE
    cid = create_client(http, slug)
    row = client_row(db_url, schema, cid)
    assert (row["last_name"], row["first_name"], row["middle_name"]) == ("Смирнова", "Анна", "Игоревна")
    assert row["phone"] == "+79165551234" and row["email"] == "anna.smirnova@example.com"
    assert row["birth_date"] == "1990-04-12" and row["address"] == "Казань, ул. Баумана, 5"
    assert row["tags"] == ["a", "b"] and row["note"] == "Любит скидки"
    assert set(row["consent"]) == {"email"} and row["consent"]["email"]["source"] == "form"
    assert row["passport_enc"] and re.fullmatch(r"[0-9a-f]{64}", row["passport_bidx"])

    card = http.get(f"/t/{slug}/clients/{cid}")
    assert card.status_code == 200
    assert card.headers["cache-control"] == PRIVATE
    assert "Смирнова" in card.text and "+79165551234" in card.text
    assert row["passport_mask"] in card.text and row["passport_mask"].endswith("56")
    assert "123456" not in card.text
    assert f"/t/{slug}/clients/{cid}/passport" in card.text  # the owner gets the "Show" button


def test_invalid_form_is_422_with_the_message_and_saves_nothing(http: Browser, tenant: tuple[str, str],
                                                                 db_url: str) -> None:
    slug, schema = tenant
    r = http.form(f"/t/{slug}/clients", {**FORM, "passport_series": "45", "email": "bad"})
    assert r.status_code == 422
    assert "The passport series must be 4 digits." in r.text
    assert "Not a valid email address." in r.text
    assert sql(db_url, f'SELECT count(*) FROM "{schema}".clients')[0][0] == 0


def test_owner_reveals_the_passport_and_it_is_audited(http: Browser, tenant: tuple[str, str],
                                                      db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    assert audit_count(db_url, schema, "passport.revealed", cid) == 0
    r = http.get(f"/t/{slug}/clients/{cid}/passport", headers=HX)
    assert r.status_code == 200
    assert "4510 123456" in r.text
    assert "ОУФМС по г. Казани" in r.text and "160-005" in r.text
    assert r.headers["cache-control"] == PRIVATE
    assert audit_count(db_url, schema, "passport.revealed", cid) == 1
    actor = sql(db_url, f'SELECT actor FROM "{schema}".audit_events WHERE action = \'passport.revealed\'')[0][0]
    assert actor.startswith("user:")


@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_weaker_members_cannot_reveal_or_erase(role: str, http: Browser, make_http, tenant: tuple[str, str],
                                               db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    other = member(http, make_http, db_url, slug, role)
    card = other.get(f"/t/{slug}/clients/{cid}")
    assert card.status_code == 200 and "123456" not in card.text
    assert f"/clients/{cid}/passport" not in card.text  # no "Show" button
    r = other.get(f"/t/{slug}/clients/{cid}/passport", headers=HX)
    assert r.status_code == 403 and "123456" not in r.text
    assert other.get(f"/t/{slug}/clients/{cid}/data.json").status_code == 403
    assert other.form(f"/t/{slug}/clients/{cid}/erase").status_code == 403
    assert audit_count(db_url, schema, "passport.revealed", cid) == 0
    assert audit_count(db_url, schema, "client.data_exported", cid) == 0
    assert client_row(db_url, schema, cid)["erased_at"] is None


def test_viewer_cannot_create_or_change(http: Browser, make_http, tenant: tuple[str, str], db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    viewer = member(http, make_http, db_url, slug, "viewer")
    assert viewer.form(f"/t/{slug}/clients", {**FORM, "last_name": "Viewer"}).status_code == 403
    assert viewer.form(f"/t/{slug}/clients/{cid}", {**FORM, "note": "by viewer"}).status_code == 403
    assert viewer.form(f"/t/{slug}/clients/{cid}/operations",
                       {"kind": "sale", "occurred_on": TODAY.isoformat(), "amount": "5"}).status_code == 403
    assert viewer.form(f"/t/{slug}/clients/{cid}/archive").status_code == 403
    assert sql(db_url, f'SELECT count(*) FROM "{schema}".clients')[0][0] == 1
    row = client_row(db_url, schema, cid)
    assert row["note"] == "Любит скидки" and row["archived_at"] is None and row["operations_count"] == 0


def test_edit_with_empty_passport_fields_keeps_the_passport(http: Browser, tenant: tuple[str, str],
                                                            db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    before = client_row(db_url, schema, cid)
    edit = http.get(f"/t/{slug}/clients/{cid}/edit")
    assert edit.status_code == 200 and edit.headers["cache-control"] == PRIVATE
    assert "123456" not in edit.text
    empty_passport = {k: "" for k in FORM if k.startswith("passport_")}
    r = http.form(f"/t/{slug}/clients/{cid}", {**FORM, **empty_passport, "note": "Новая заметка",
                                               "phone": "+7 903 111-22-33"})
    assert r.status_code == 303, r.text
    after = client_row(db_url, schema, cid)
    assert after["note"] == "Новая заметка" and after["phone"] == "+79031112233"
    assert after["passport_bidx"] == before["passport_bidx"]
    assert after["passport_enc"] == before["passport_enc"]
    assert after["passport_mask"] == before["passport_mask"]
    shown = http.get(f"/t/{slug}/clients/{cid}/passport")
    assert "4510 123456" in shown.text and "160-005" in shown.text

    # The "remove the passport" box does remove it.
    r = http.form(f"/t/{slug}/clients/{cid}", {**FORM, **empty_passport, "passport_clear": "1"})
    assert r.status_code == 303
    gone = client_row(db_url, schema, cid)
    assert gone["passport_enc"] is None and gone["passport_bidx"] is None and gone["passport_mask"] is None


# ---- operations through htmx ---------------------------------------------------------------


def test_add_operation_with_htmx_returns_the_fragment(http: Browser, tenant: tuple[str, str],
                                                      db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    r = http.form(f"/t/{slug}/clients/{cid}/operations",
                  {"kind": "sale", "occurred_on": (TODAY - timedelta(days=3)).isoformat(), "amount": "1234.50",
                   "due_on": (TODAY - timedelta(days=1)).isoformat(), "note": "first"}, headers=HX)
    assert r.status_code == 200, r.text
    assert 'id="operations"' in r.text
    assert "<html" not in r.text.lower()  # a fragment, not the page
    assert metric(r.text, "revenue") == "123450"
    assert metric(r.text, "deals") == "1"
    assert metric(r.text, "unpaid") == "123450"
    assert metric(r.text, "overdue") == "123450"

    r = http.form(f"/t/{slug}/clients/{cid}/operations",
                  {"kind": "return", "occurred_on": TODAY.isoformat(), "amount": "234,50"}, headers=HX)
    assert r.status_code == 200
    assert metric(r.text, "revenue") == "100000" and metric(r.text, "deals") == "1"

    bad = http.form(f"/t/{slug}/clients/{cid}/operations",
                    {"kind": "sale", "occurred_on": TODAY.isoformat(), "amount": "abc"}, headers=HX)
    assert bad.status_code == 422
    assert 'id="operations"' in bad.text
    assert "Not a number: abc" in bad.text
    assert metric(bad.text, "revenue") == "100000"
    zero = http.form(f"/t/{slug}/clients/{cid}/operations",
                     {"kind": "sale", "occurred_on": TODAY.isoformat(), "amount": "0"}, headers=HX)
    assert zero.status_code == 422 and "positive" in zero.text
    row = client_row(db_url, schema, cid)
    assert row["operations_count"] == 1 and float(row["revenue_total"]) == 1000.0
    assert sql(db_url, f'SELECT count(*) FROM "{schema}".operations WHERE client_id = :c', {"c": cid})[0][0] == 2


def test_edit_and_delete_operation_with_htmx(http: Browser, tenant: tuple[str, str], db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    http.form(f"/t/{slug}/clients/{cid}/operations",
              {"kind": "sale", "occurred_on": TODAY.isoformat(), "amount": "100"}, headers=HX)
    op_id = sql(db_url, f'SELECT id FROM "{schema}".operations WHERE client_id = :c', {"c": cid})[0][0]
    r = http.form(f"/t/{slug}/clients/{cid}/operations/{op_id}",
                  {"kind": "service", "occurred_on": TODAY.isoformat(), "amount": "250"}, headers=HX)
    assert r.status_code == 200 and metric(r.text, "revenue") == "25000"
    r = http.form(f"/t/{slug}/clients/{cid}/operations/{op_id}/delete", headers=HX)
    assert r.status_code == 200 and metric(r.text, "revenue") == "000" and metric(r.text, "deals") == "0"
    assert client_row(db_url, schema, cid)["operations_count"] == 0


# ---- archive, erase, data request ----------------------------------------------------------


def test_archive_and_restore_toggle(http: Browser, tenant: tuple[str, str], db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    r = http.form(f"/t/{slug}/clients/{cid}/archive")
    assert r.status_code == 303
    assert client_row(db_url, schema, cid)["archived_at"] is not None
    assert f"/clients/{cid}\"" not in http.get(f"/t/{slug}/clients").text
    assert f"/clients/{cid}\"" in http.get(f"/t/{slug}/clients", params={"archived": "yes"}).text
    assert http.form(f"/t/{slug}/clients/{cid}/archive").status_code == 303
    assert client_row(db_url, schema, cid)["archived_at"] is None
    assert f"/clients/{cid}\"" in http.get(f"/t/{slug}/clients").text
    assert audit_count(db_url, schema, "client.archived", cid) == 1
    assert audit_count(db_url, schema, "client.restored", cid) == 1


def test_erase_anonymises_and_keeps_the_amounts(http: Browser, tenant: tuple[str, str], db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    for amount in ("100.10", "200.20"):
        http.form(f"/t/{slug}/clients/{cid}/operations",
                  {"kind": "sale", "occurred_on": TODAY.isoformat(), "amount": amount, "note": "Анна звонила"})
    r = http.form(f"/t/{slug}/clients/{cid}/erase")
    assert r.status_code == 303
    row = client_row(db_url, schema, cid)
    for column in ("phone", "email", "address", "birth_date", "note", "passport_enc", "passport_bidx",
                   "passport_mask", "passport_key_id"):
        assert row[column] is None, column
    assert row["last_name"] != "Смирнова" and row["first_name"] != "Анна" and row["middle_name"] == ""
    assert row["tags"] == [] and row["consent"] == {}
    assert row["erased_at"] is not None
    assert float(row["revenue_total"]) == 300.30 and row["operations_count"] == 2
    ops = sql(db_url, f'SELECT amount::text, note FROM "{schema}".operations WHERE client_id = :c ORDER BY id',
              {"c": cid})
    assert ops == [("100.10", None), ("200.20", None)]
    assert audit_count(db_url, schema, "client.erased", cid) == 1
    # Nothing of the person is left in the row, and the card is gone.
    dump = json.dumps(row, ensure_ascii=False)
    for needle in ("Смирнова", "Анна", "Игоревна", "5551234", "smirnova", "Баумана", "123456"):
        assert needle not in dump
    assert http.get(f"/t/{slug}/clients/{cid}").status_code == 404


def test_data_request_returns_everything_and_is_audited(http: Browser, tenant: tuple[str, str],
                                                        db_url: str) -> None:
    slug, schema = tenant
    cid = create_client(http, slug)
    http.form(f"/t/{slug}/clients/{cid}/operations",
              {"kind": "service", "occurred_on": TODAY.isoformat(), "amount": "99.90", "note": "стрижка"})
    r = http.get(f"/t/{slug}/clients/{cid}/data.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "no-store" in r.headers["cache-control"]
    assert "attachment" in r.headers.get("content-disposition", "")
    data = r.json()
    assert data["id"] == cid and data["last_name"] == "Смирнова" and data["phone"] == "+79165551234"
    assert data["passport"]["series"] == "4510" and data["passport"]["number"] == "123456"
    assert data["passport"]["division_code"] == "160-005"
    assert [(o["kind"], o["amount"], o["note"]) for o in data["operations"]] == [("service", "99.90", "стрижка")]
    assert audit_count(db_url, schema, "client.data_exported", cid) == 1


# ---- export --------------------------------------------------------------------------------


def _read_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def test_csv_export_is_masked_and_formula_safe(http: Browser, tenant: tuple[str, str], db_url: str) -> None:
    slug, schema = tenant
    plain = create_client(http, slug)
    risky = create_client(http, slug, last_name="=cmd|' /C calc'!A0", first_name="@Sum", middle_name="-2+3",
                          note='=HYPERLINK("http://x")', tags="+tag", phone="", passport_series="",
                          passport_number="", passport_issued_by="", passport_issued_on="",
                          passport_division_code="")
    r = http.get(f"/t/{slug}/clients/export", params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "no-store" in r.headers["cache-control"]
    body = r.content
    assert body.startswith(b"\xef\xbb\xbf")
    first_line = body[3:].split(b"\r\n", 1)[0].decode()
    assert ";" in first_line and "," not in first_line
    rows = _read_csv(body)
    header, data = rows[0], rows[1:]
    assert header[0] == "ID" and len(header) > 10
    by_id = {int(row[0]): dict(zip(header, row, strict=True)) for row in data}
    assert set(by_id) == {plain, risky}
    mask = client_row(db_url, schema, plain)["passport_mask"]
    assert mask in by_id[plain].values()
    assert "123456" not in body.decode("utf-8-sig")
    assert "4510" not in body.decode("utf-8-sig")
    cells = list(by_id[risky].values())
    assert "'=HYPERLINK(\"http://x\")" in cells
    assert "'=cmd|' /C calc'!A0" in cells
    assert "'@Sum" in cells
    assert "'-2+3" in cells
    for row in data:
        for cell in row:  # a sign may lead only a plain number (a phone, a negative amount)
            assert not cell or cell[0] not in "=@\t\r", (cell, row)
            assert cell[:1] not in ("+", "-") or re.fullmatch(r"[+-]\d+(?:[.,]\d+)?", cell), (cell, row)
    assert audit_count(db_url, schema, "clients.exported") == 1
    details = sql(db_url, f'SELECT details::text FROM "{schema}".audit_events WHERE action = \'clients.exported\'')
    assert '"rows": 2' in details[0][0] and "masked" in details[0][0]


def test_xlsx_export_has_the_same_columns(http: Browser, tenant: tuple[str, str], db_url: str) -> None:
    from openpyxl import load_workbook

    slug, schema = tenant
    create_client(http, slug)
    risky = create_client(http, slug, note='=HYPERLINK("http://x")', passport_series="", passport_number="",
                          passport_issued_by="", passport_issued_on="", passport_division_code="")
    header = _read_csv(http.get(f"/t/{slug}/clients/export", params={"format": "csv"}).content)[0]
    r = http.get(f"/t/{slug}/clients/export", params={"format": "xlsx"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert r.content[:4] == b"PK\x03\x04"
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows())
    assert [c.value for c in rows[0]] == header
    assert len(rows) == 3
    for row in rows:
        for cell in row:
            assert cell.data_type != "f", cell.value
    risky_row = next(row for row in rows[1:] if row[0].value == risky)
    # a text cell, shown as typed and never run: no apostrophe in a typed XLSX cell
    assert ('=HYPERLINK("http://x")', "s") in [(c.value, c.data_type) for c in risky_row]
    assert "123456" not in str([[c.value for c in row] for row in rows])
    assert audit_count(db_url, schema, "clients.exported") == 2


def test_export_follows_the_filter_and_full_passport_needs_admin(http: Browser, make_http,
                                                                 tenant: tuple[str, str], db_url: str) -> None:
    slug, schema = tenant
    wanted = create_client(http, slug, tags="export-me")
    create_client(http, slug, last_name="Другая", tags="other")
    rows = _read_csv(http.get(f"/t/{slug}/clients/export", params={"format": "csv", "tag": "export-me"}).content)
    assert [int(r[0]) for r in rows[1:]] == [wanted]

    full = http.get(f"/t/{slug}/clients/export", params={"format": "csv", "passport": "full"})
    text_full = full.content.decode("utf-8-sig")
    assert "123456" in text_full and "4510" in text_full  # the owner asked for it
    details = sql(db_url, f'SELECT details::text FROM "{schema}".audit_events '
                          "WHERE action = 'clients.exported' ORDER BY id DESC LIMIT 1")[0][0]
    assert '"full"' in details

    marketer = member(http, make_http, db_url, slug, "marketer")
    masked = marketer.get(f"/t/{slug}/clients/export", params={"format": "csv", "passport": "full"})
    assert masked.status_code == 200
    assert "123456" not in masked.content.decode("utf-8-sig")


# ---- bulk ----------------------------------------------------------------------------------


def test_bulk_tag_and_archive(http: Browser, tenant: tuple[str, str], db_url: str) -> None:
    slug, schema = tenant
    a, b, c = (create_client(http, slug, last_name=name) for name in ("Первый", "Второй", "Третий"))
    r = http.form(f"/t/{slug}/clients/bulk", {"action": "tag", "value": "promo", "ids": [str(a), str(b)]})
    assert r.status_code == 303, r.text
    assert client_row(db_url, schema, a)["tags"] == ["a", "b", "promo"]
    assert client_row(db_url, schema, b)["tags"] == ["a", "b", "promo"]
    assert client_row(db_url, schema, c)["tags"] == ["a", "b"]
    # Tagging again does not duplicate the tag.
    http.form(f"/t/{slug}/clients/bulk", {"action": "tag", "value": "promo", "ids": [str(a)]})
    assert client_row(db_url, schema, a)["tags"] == ["a", "b", "promo"]

    r = http.form(f"/t/{slug}/clients/bulk", {"action": "archive", "ids": [str(a), str(c)]})
    assert r.status_code == 303
    assert client_row(db_url, schema, a)["archived_at"] is not None
    assert client_row(db_url, schema, b)["archived_at"] is None
    assert client_row(db_url, schema, c)["archived_at"] is not None
    listed = http.get(f"/t/{slug}/clients").text
    assert f"/clients/{b}\"" in listed and f"/clients/{a}\"" not in listed and f"/clients/{c}\"" not in listed

    r = http.form(f"/t/{slug}/clients/bulk", {"action": "restore", "ids": [str(a)]})
    assert r.status_code == 303
    assert client_row(db_url, schema, a)["archived_at"] is None
    assert client_row(db_url, schema, c)["archived_at"] is not None


def test_bulk_cannot_touch_another_tenants_clients(http: Browser, make_http, tenant: tuple[str, str],
                                                   db_url: str) -> None:
    slug, schema = tenant
    victim = create_client(http, slug)
    intruder = make_http()
    other = intruder.signup("Intruder Clients Co")
    r = intruder.form(f"/t/{other}/clients/bulk", {"action": "archive", "ids": [str(victim)]})
    assert r.status_code == 303
    assert client_row(db_url, schema, victim)["archived_at"] is None
    assert intruder.get(f"/t/{slug}/clients/{victim}").status_code == 404
    assert intruder.get(f"/t/{other}/clients/{victim}").status_code == 404


# ---- caching -------------------------------------------------------------------------------


def test_pages_are_private(http: Browser, tenant: tuple[str, str]) -> None:
    slug, _schema = tenant
    cid = create_client(http, slug)
    for path in ("/clients", "/clients?q=Смир", f"/clients/{cid}", f"/clients/{cid}/edit", "/clients/new"):
        r = http.get(f"/t/{slug}{path}")
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == PRIVATE, path
    fragment = http.get(f"/t/{slug}/clients", headers={**HX, "HX-Target": "rows"})
    assert fragment.status_code == 200 and fragment.headers["cache-control"] == PRIVATE


def test_the_new_operation_date_starts_at_today_in_the_company_time_zone(make_http) -> None:
    from zoneinfo import ZoneInfo

    owner = make_http()
    slug = owner.signup("Today Co")
    cid = create_client(owner, slug)
    card = owner.get(f"/t/{slug}/clients/{cid}").text
    today = clock.now().astimezone(ZoneInfo("Europe/Moscow")).date().isoformat()  # a new company's zone
    assert re.search(rf'name="occurred_on" value="{today}"', card), re.findall(r'name="occurred_on"[^>]*', card)


# ---- search typed --------------------------------------------------------------------------


def test_a_typed_search_brings_its_count_with_the_rows(make_http) -> None:
    """Typing replaces the rows (htmx, target "rows"); the count badge above comes along out of band
    (in a <template>, the way htmx takes it from a table response), so it says what the rows show.
    Scrolling for more rows sends no count."""
    http = make_http()
    slug = http.signup("Typed Search")
    for last_name in ("Смирнова", "Смирнов", "Кузнецова"):
        create_client(http, slug, last_name=last_name, phone="", email="", passport_number="", passport_series="")
    typed = http.get(f"/t/{slug}/clients", params={"q": "Смирн"}, headers={**HX, "HX-Target": "rows"}).text
    badge = re.search(r'<template><span class="badge" id="count" hx-swap-oob="true"[^>]*>([^<]*)</span></template>',
                      typed)
    assert badge and badge.group(1) == "2", typed[-600:]
    assert typed.count('class="client-name"') == 2
    page = http.get(f"/t/{slug}/clients", params={"q": "Смирн"}).text
    assert re.search(r'<span class="badge" id="count">2</span>', page)  # the full page: no oob attribute
    more = http.get(f"/t/{slug}/clients", headers={**HX, "HX-Target": "more"}).text
    assert 'id="count"' not in more
