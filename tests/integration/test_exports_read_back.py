"""Exports other systems accept, read back as they would read them (openpyxl, the csv module):
a phone keeps its plus and no apostrophe, a negative amount stays a number, '=1+1' is never a
formula; the campaign list is numbered 1…n without the control group; the rejected-rows file
gives back the file's own columns."""
from __future__ import annotations

import csv
import io
import secrets

import httpx
import pytest
from openpyxl import load_workbook

from testkit import Browser, cli, sql
from tests.integration.processes import wait_for

PHONE, RISKY, N = "+79424474797", "=1+1", 30


@pytest.fixture(scope="module")
def company(base_url: str, db_url: str, worker):
    b = Browser(base_url)
    slug = b.signup(f"Exports {secrets.token_hex(2)}")
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]
    consent = '{"sms": {"at": "2024-01-01", "source": "test"}}'
    # Client 1: the risky name and the phone of the issue; every client has a purchase, and
    # client 1 a bigger return, so its revenue is negative.
    sql(db_url, f"""INSERT INTO "{schema}".clients (last_name, first_name, phone, consent)
        SELECT CASE WHEN g = 1 THEN '{RISKY}' ELSE 'Клиент' END, g::text,
               CASE WHEN g = 1 THEN '{PHONE}' ELSE '+7916' || lpad(g::text, 7, '0') END, '{consent}'::jsonb
        FROM generate_series(1, {N}) g""")
    sql(db_url, f"""INSERT INTO "{schema}".operations (client_id, kind, occurred_on, amount)
        SELECT id, 'sale', current_date - 10, 100 + id FROM "{schema}".clients""")
    sql(db_url, f"""INSERT INTO "{schema}".operations (client_id, kind, occurred_on, amount)
        SELECT id, 'return', current_date - 5, 1000 FROM "{schema}".clients WHERE last_name = '{RISKY}'""")
    sql(db_url, f"""UPDATE "{schema}".clients c SET operations_count = 1,
        revenue_total = (SELECT sum(CASE WHEN kind = 'return' THEN -amount ELSE amount END)
                         FROM "{schema}".operations o WHERE o.client_id = c.id)""")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "x").stdout.strip()
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield b, slug, api
    api.close()
    b.close()


def _csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def _xlsx(body: bytes) -> list[list]:
    ws = load_workbook(io.BytesIO(body)).active
    return [[(cell.value, cell.data_type) for cell in row] for row in ws.iter_rows()]


def test_client_export_in_both_formats(company) -> None:
    b, slug, _api = company
    rows = _csv(b.get(f"/t/{slug}/clients/export", params={"format": "csv"}).content)
    header, risky = rows[0], next(r for r in rows[1:] if PHONE in r)
    cell = dict(zip(header, risky, strict=True))
    assert cell["Phone"] == PHONE  # no apostrophe: an SMS gateway takes it
    assert cell["Last name"] == "'" + RISKY  # a spreadsheet would run it: neutralised
    assert cell["Revenue"] == "-899.00"  # a negative amount stays a number
    assert all(not c or c[0] not in "=@" for r in rows for c in r)

    sheet = _xlsx(b.get(f"/t/{slug}/clients/export", params={"format": "xlsx"}).content)
    names = [value for value, _t in sheet[0]]
    risky_x = next(r for r in sheet[1:] if (PHONE, "s") in r)
    by_name = dict(zip(names, risky_x, strict=False))
    assert by_name["Phone"] == (PHONE, "s")  # a text cell, as it is
    assert by_name["Last name"] == (RISKY, "s")  # shown as text, never a formula, no apostrophe
    assert by_name["Revenue"] == (-899, "n")
    assert all(t != "f" for r in sheet for _v, t in r)


def _build(api: httpx.Client, **campaign) -> dict:
    cid = api.post("/api/v1/campaigns", json={"name": "Список", "criteria": {}, **campaign}).json()["id"]
    assert api.post(f"/api/v1/campaigns/{cid}/build").status_code == 202

    def built() -> dict | None:
        body = api.get(f"/api/v1/campaigns/{cid}").json()
        return body if body["status"] in ("ready", "failed") else None

    return wait_for(built, 60, f"campaign {cid}", every=0.3)


def test_campaign_export_numbers_the_sent_list_and_keeps_phones(company) -> None:
    b, slug, api = company
    built = _build(api, channel="sms", ranking="revenue", control_share=0.3)
    assert built["status"] == "ready" and built["members"] == N and 0 < built["control"] < N
    sent = N - built["control"]

    rows = _csv(b.get(f"/t/{slug}/campaigns/{built['id']}/export", params={"format": "csv"}).content)[1:]
    assert [int(r[0]) for r in rows] == list(range(1, sent + 1))  # 1…n, no gaps where the control was
    phones = {r[4] for r in rows}
    assert all(p.startswith("+7") for p in phones)
    sheet = _xlsx(b.get(f"/t/{slug}/campaigns/{built['id']}/export", params={"format": "xlsx"}).content)[1:]
    assert [r[0] for r in sheet] == [(i, "n") for i in range(1, sent + 1)]
    assert {r[4] for r in sheet} == {(p, "s") for p in phones}
    if any(r[1] == "'" + RISKY for r in rows):  # client 1 may be in the control group
        assert any(r[1] == (RISKY, "s") for r in sheet)

    # The page numbers each group from 1: the sent list 1…n, the control 1…m.
    page = b.get(f"/t/{slug}/campaigns/{built['id']}/members", headers={"Accept-Language": "en"}).text
    import re

    places = re.findall(r'<tr><td class="num">(\d+)</td>.*?<span class="badge[^"]*">(\w+)</span>', page, re.S)
    target = [int(p) for p, group in places if group == "target"]
    control = [int(p) for p, group in places if group == "control"]
    assert target == list(range(1, sent + 1)) and control == list(range(1, built["control"] + 1)), places


def test_rejected_rows_come_back_in_the_files_own_columns(company) -> None:
    b, slug, api = company
    content = ("Телефон;ФИО;Комментарий;Email\n"
               "+79165550404;Гусев Павел;ок;gusev@example.com\n"
               "12;Лосев Илья;плохой телефон;bad-email\n").encode()
    r = api.post("/api/v1/imports", files={"file": ("bad.csv", content)})
    assert r.status_code in (201, 202), r.text
    iid = r.json()["id"]

    def done() -> dict | None:
        body = api.get(f"/api/v1/imports/{iid}").json()
        return body if body["status"] in ("done", "failed") else None

    body = wait_for(done, 60, "import", every=0.3)
    assert body["rejected"] == 1, body
    rows = _csv(b.get(f"/t/{slug}/imports/{iid}/rejected.csv").content)
    header, row = rows[0], rows[1]
    mapped = [h for h in ("Телефон", "ФИО", "Комментарий", "Email") if h in header]
    assert header[:len(mapped)] == mapped and mapped[:2] == ["Телефон", "ФИО"]  # the file's order and names
    assert header[len(mapped):] == ["Line", "Reason"]
    assert row[:2] == ["12", "Лосев Илья"] and row[len(mapped)] == "3" and row[-1]
