"""Imports end to end through the real queue and worker: files the tests write, checked in the DB."""
from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from sqlalchemy import text

from saas.core.db import Database
from testkit import company_with_api, tenant_schema
from tests.integration.processes import wait_for


@pytest.fixture(scope="module")
def tenant(base_url: str, worker):
    with company_with_api(base_url, "Import Co", "imp") as t:
        yield t


def sql(db_url: str, slug: str, query: str, **params):
    async def go():
        db = Database(db_url, pool_size=1)
        try:
            schema = await tenant_schema(db, slug)
            async with db.session(schema) as s:
                return (await s.execute(text(query), params)).all()
        finally:
            await db.dispose()

    return asyncio.run(go())


def upload(api: httpx.Client, content: bytes, name: str, kind: str = "clients", **form) -> dict:
    r = api.post("/api/v1/imports", files={"file": (name, content)}, data={"kind": kind, **form})
    assert r.status_code == 202, r.text
    return r.json()


def wait(api: httpx.Client, import_id: int, timeout: float = 60) -> dict:
    def finished() -> dict | None:
        body = api.get(f"/api/v1/imports/{import_id}").json()
        return body if body["status"] in ("done", "failed") else None

    return wait_for(finished, timeout, f"import {import_id} to finish", every=0.3)


def test_cp1251_semicolon_file_with_full_name_column(tenant, db_url) -> None:
    _b, slug, api = tenant
    content = ("ФИО;Телефон;Эл. почта;Дата рождения;Теги\r\n"
               "Соколов Андрей Викторович;8 (916) 555-01-01;sokolov@example.com;01.02.1980;опт\r\n"
               "Белова Ирина;+7 916 555-01-02;;15.07.1992;\r\n").encode("cp1251")
    body = wait(api, upload(api, content, "clients-1c.csv")["id"])
    assert body["status"] == "done" and body["created"] == 2 and body["rejected"] == 0
    rows = sql(db_url, slug, "SELECT last_name, first_name, middle_name, phone, birth_date::text, tags "
                             "FROM clients WHERE import_id = :i ORDER BY last_name", i=body["id"])
    assert rows == [("Белова", "Ирина", "", "+79165550102", "1992-07-15", []),
                    ("Соколов", "Андрей", "Викторович", "+79165550101", "1980-02-01", ["опт"])]


def test_utf8_bom_comma_file_updates_matches_by_phone(tenant, db_url) -> None:
    _b, slug, api = tenant
    content = "\ufeffLast name,First name,Phone,Email\nСоколов,Андрей,+79165550101,new@example.com\n".encode()
    body = wait(api, upload(api, content, "export.csv", on_match="update")["id"])
    assert body["status"] == "done" and (body["created"], body["updated"]) == (0, 1)
    assert sql(db_url, slug, "SELECT email FROM clients WHERE phone = '+79165550101'") == [("new@example.com",)]


def test_xlsx_file(tenant, db_url) -> None:
    from openpyxl import Workbook

    _b, slug, api = tenant
    wb = Workbook()
    ws = wb.active
    ws.append(["Фамилия", "Имя", "Отчество", "Телефон", "Дата рождения"])
    ws.append(["Орлова", "Вера", "Павловна", 79165550303, None])
    buf = io.BytesIO()
    wb.save(buf)
    body = wait(api, upload(api, buf.getvalue(), "clients.xlsx")["id"])
    assert body["status"] == "done" and body["created"] == 1
    assert sql(db_url, slug, "SELECT middle_name, phone FROM clients WHERE last_name = 'Орлова'") == \
        [("Павловна", "+79165550303")]


def test_bad_rows_are_reported_and_good_rows_kept(tenant, db_url, http) -> None:
    b, slug, api = tenant
    content = ("ФИО;Телефон;Email\n"
               "Гусев Павел;+79165550404;gusev@example.com\n"
               ";+79165550405;\n"
               "Лосев Илья;12;bad-email\n").encode()
    body = wait(api, upload(api, content, "bad.csv")["id"])
    assert body["status"] == "done" and body["created"] == 1 and body["rejected"] == 2
    assert sorted(r["line"] for r in body["rejected_rows"]) == [3, 4]
    assert any("phone" in r["reason"].lower() for r in body["rejected_rows"])
    report = b.get(f"/t/{slug}/imports/{body['id']}/rejected.csv")
    assert report.status_code == 200 and report.text.count("\n") == 3
    assert sql(db_url, slug, "SELECT count(*) FROM clients WHERE import_id = :i", i=body["id"]) == [(1,)]


def test_all_or_nothing_leaves_the_database_as_it_was(tenant, db_url) -> None:
    _b, slug, api = tenant
    before = sql(db_url, slug, "SELECT count(*) FROM clients")
    content = "ФИО;Телефон\nЗайцев Олег;+79165550505\nБез Телефона;oops\n".encode()
    body = wait(api, upload(api, content, "strict.csv", mode="all")["id"])
    assert body["status"] == "failed" and "nothing was imported" in body["error"]
    assert body["rejected"] == 1
    assert sql(db_url, slug, "SELECT count(*) FROM clients") == before


def test_operations_import_keeps_metrics_right_and_undo_reverts(tenant, db_url) -> None:
    b, slug, api = tenant
    content = ("Телефон;Дата;Сумма;Тип;Группа товаров;Срок оплаты;Дата оплаты\n"
               "+79165550404;01.03.2024;1 000,50;продажа;Мебель;;\n"
               "+79165550404;05.03.2024;200;возврат;Мебель;;\n"
               "+79160000000;05.03.2024;200;продажа;;;\n").encode()
    body = wait(api, upload(api, content, "ops.csv", kind="operations")["id"])
    assert body["status"] == "done" and body["created"] == 2 and body["rejected"] == 1
    metrics = sql(db_url, slug, "SELECT operations_count, revenue_total::text, unpaid_total::text, "
                                "last_operation_on::text FROM clients WHERE phone = '+79165550404'")
    assert metrics == [(1, "800.50", "1000.50", "2024-03-05")]
    assert sql(db_url, slug, "SELECT name FROM product_groups") == [("Мебель",)]
    # the import queued a score refresh: every client gets scores without anyone pressing a button
    wait_for(lambda: sql(db_url, slug, "SELECT (SELECT count(*) FROM client_scores) = (SELECT count(*) "
                                       "FROM clients WHERE erased_at IS NULL)")[0][0] is True,
             60, "a score refresh after the import", every=0.5)
    r = b.form(f"/t/{slug}/imports/{body['id']}/undo")
    assert r.status_code == 303
    assert sql(db_url, slug, "SELECT operations_count, revenue_total::text FROM clients "
                             "WHERE phone = '+79165550404'") == [(0, "0.00")]
    assert api.get(f"/api/v1/imports/{body['id']}").json()["status"] == "undone"


def test_undo_of_a_client_import_removes_new_and_restores_updated(tenant, db_url) -> None:
    b, slug, api = tenant
    content = "ФИО;Телефон;Email\nСоколов Андрей;+79165550101;changed@example.com\nНовый Клиент;+79165550606;\n"
    body = wait(api, upload(api, content.encode(), "again.csv")["id"])
    assert (body["created"], body["updated"]) == (1, 1)
    b.form(f"/t/{slug}/imports/{body['id']}/undo")
    assert sql(db_url, slug, "SELECT email FROM clients WHERE phone = '+79165550101'") == [("new@example.com",)]
    assert sql(db_url, slug, "SELECT count(*) FROM clients WHERE phone = '+79165550606'") == [(0,)]


@pytest.mark.parametrize("content, name, message", [
    (b"\x00\x01\x02binary\x00" * 100, "x.csv", "not a text table"),
    (b"", "empty.csv", "empty"),
    (b"PK\x03\x04broken", "x.xlsx", "damaged"),
])
def test_bad_files_are_refused_with_a_clear_message(tenant, content, name, message) -> None:
    _b, _slug, api = tenant
    r = api.post("/api/v1/imports", files={"file": (name, content)}, data={"kind": "clients"})
    assert r.status_code == 422
    assert message in r.json()["fields"]["file"].lower()


def test_web_upload_mapping_and_progress(tenant, db_url) -> None:
    b, slug, _api = tenant
    content = "Клиент;Мобильный телефон\nФедоров Семён;+79165550707\n".encode()
    r = b.post(f"/t/{slug}/imports", data={"kind": "clients", "_csrf_token": b.csrf()},
               files={"file": ("web.csv", content)})
    assert r.status_code == 303
    page_url = r.headers["location"]
    # A worker reads the upload (the request parses nothing); the page then shows the mapping.
    page = wait_for(lambda: 'id="mapping"' in (text := b.get(page_url).text) and text, 60, "the file to be read",
                    every=0.3)
    assert "Федоров" in page and 'value="full_name" selected' in page  # the dry run shows the first rows
    r = b.form(page_url + "/start", {"col_0": "full_name", "col_1": "phone", "match_by": "phone",
                                     "on_match": "skip", "mode": "accepted"})
    assert r.status_code == 303
    # The poll also updates the status badge in the page head (out of band), not only the bar.
    fragment = b.get(page_url + "/progress", headers={"HX-Request": "true"}).text
    assert 'id="import-status" hx-swap-oob="true"' in fragment
    assert any(f">{label}</span>" in fragment for label in ("queued", "running", "done"))
    wait_for(lambda: "data-count=\"created\">1<" in b.get(page_url).text, 60, "the import to finish", every=0.3)
    assert sql(db_url, slug, "SELECT first_name FROM clients WHERE phone = '+79165550707'") == [("Семён",)]


def test_rows_over_the_plan_limit_are_rejected_with_the_reason(tenant, db_url) -> None:
    b, slug, api = tenant
    used = sql(db_url, slug, "SELECT count(*) FROM clients")[0][0]
    async def set_limit() -> None:
        db = Database(db_url, pool_size=1)
        async with db.session() as s:
            await s.execute(text("UPDATE shared.tenants SET limits = jsonb_build_object('clients', CAST(:n AS int)) "
                                 "WHERE slug = :s"), {"n": used + 1, "s": slug})
        await db.dispose()

    asyncio.run(set_limit())
    try:
        content = "ФИО;Телефон\nЛимит Один;+79165558801\nЛимит Два;+79165558802\nЛимит Три;+79165558803\n".encode()
        r = b.post(f"/t/{slug}/imports", data={"kind": "clients", "_csrf_token": b.csrf()},
                   files={"file": ("limit.csv", content)})
        page = wait_for(lambda: 'id="mapping"' in (text := b.get(r.headers["location"]).text) and text, 60,
                        "the file to be read", every=0.3)  # said on the mapping screen, before anything is imported
        assert 'id="plan-room"' in page and "at most 1 new clients" in page
        body = wait(api, upload(api, content, "limit.csv")["id"])
        assert body["status"] == "done" and body["rejected"] == 2 and body["created"] == 1  # the first one fits
        assert [r["line"] for r in body["rejected_rows"]] == [3, 4]
        assert str(used + 1) in body["rejected_rows"][0]["reason"]  # the limit, in the tenant's language
        assert sql(db_url, slug, "SELECT first_name FROM clients WHERE phone = '+79165558801'") == [("Один",)]
    finally:
        async def reset() -> None:
            db = Database(db_url, pool_size=1)
            async with db.session() as s:
                await s.execute(text("UPDATE shared.tenants SET limits = '{}'::jsonb WHERE slug = :s"), {"s": slug})
            await db.dispose()

        asyncio.run(reset())


def test_rejected_reasons_are_stored_in_the_company_language(tenant, db_url) -> None:
    _b, slug, api = tenant
    before = sql(db_url, slug, "SELECT locale FROM shared.tenants WHERE slug = :s", s=slug)[0][0]
    sql(db_url, slug, "UPDATE shared.tenants SET locale = 'ru' WHERE slug = :s RETURNING 1", s=slug)
    try:
        content = "ФИО;Телефон;Дата рождения\nЯзыков Пётр;12345;31.02.1990\n".encode()
        body = wait(api, upload(api, content, "ru.csv")["id"])
        assert body["rejected_rows"][0]["reason"] == ("Неверный номер телефона; "  # no ".;"
                                                      "Неверная дата: используйте ДД.ММ.ГГГГ или ГГГГ-ММ-ДД.")
    finally:
        sql(db_url, slug, "UPDATE shared.tenants SET locale = :l WHERE slug = :s RETURNING 1", s=slug, l=before)


def test_operations_found_by_name_once_each_and_ambiguous_names_rejected(tenant, db_url) -> None:
    _b, slug, api = tenant
    for last, first in (("Именной", "Олег"), ("Двойник", "Пётр"), ("Двойник", "Пётр")):
        assert api.post("/api/v1/clients", json={"last_name": last, "first_name": first}).status_code == 201
    content = ("Клиент;Дата;Сумма\nИменной Олег;01.03.2024;100\nименной олег;02.03.2024;200\n"
               "Двойник Пётр;03.03.2024;300\nНикто Такой;04.03.2024;400\nИменной Олег;05.03.2024;50\n").encode()
    body = wait(api, upload(api, content, "by-name.csv", kind="operations")["id"])
    assert (body["created"], body["rejected"]) == (3, 2)
    assert [r["line"] for r in body["rejected_rows"]] == [4, 5]  # the namesakes and the unknown name
    assert sql(db_url, slug, "SELECT operations_count, revenue_total::text FROM clients "
                             "WHERE last_name = 'Именной'") == [(3, "350.00")]


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_future_dated_operations_are_rejected_with_the_date_in_the_company_language(tenant, db_url,
                                                                                     locale) -> None:
    """A row dated after today would push every forecast into the future: it is rejected, the reason
    names the bad date and today's, in the company's language; the other rows go in."""
    from datetime import timedelta

    from saas.core import clock

    _b, slug, api = tenant
    today = clock.today()
    tomorrow, later = (today + timedelta(days=1)).strftime("%d.%m.%Y"), (today + timedelta(days=800)).isoformat()
    phone = f"+7916777{'01' if locale == 'ru' else '02'}{'00' if locale == 'ru' else '11'}"
    assert api.post("/api/v1/clients", json={"last_name": "Будущев", "phone": phone}).status_code == 201
    due = (today + timedelta(days=30)).strftime("%d.%m.%Y")  # a due date may be in the future
    content = (f"Телефон;Дата;Сумма;Срок оплаты\n{phone};{today:%d.%m.%Y};100;{due}\n{phone};{tomorrow};200;\n"
               f"{phone};{later};300;\n").encode()
    before = sql(db_url, slug, "SELECT locale FROM shared.tenants WHERE slug = :s", s=slug)[0][0]
    sql(db_url, slug, "UPDATE shared.tenants SET locale = :l WHERE slug = :s RETURNING 1", s=slug, l=locale)
    try:
        body = wait(api, upload(api, content, f"future-{locale}.csv", kind="operations")["id"])
    finally:
        sql(db_url, slug, "UPDATE shared.tenants SET locale = :l WHERE slug = :s RETURNING 1", s=slug, l=before)
    assert (body["status"], body["created"], body["rejected"]) == ("done", 1, 2)
    reasons = {r["line"]: r["reason"] for r in body["rejected_rows"]}
    expected = {"ru": "Дата операции {} позже сегодняшнего дня ({}).",
                "en": "The operation date {} is after today ({})."}[locale]
    assert reasons == {3: expected.format(tomorrow, today.isoformat()), 4: expected.format(later, today.isoformat())}
    assert sql(db_url, slug, "SELECT o.occurred_on, o.due_on, o.amount::text FROM operations o "
                             "JOIN clients c ON c.id = o.client_id WHERE c.phone = :p", p=phone) == \
        [(today, today + timedelta(days=30), "100.00")]
