"""Where personal data lives, and that an erasure reaches all of it (issue 16, items 1, 3, 5).

The big test creates people with every field through the form, the API and an import (with a
passport), puts them on a campaign list and into a saved export, erases them, and then reads every
text, JSON, binary and array column of the company's schema (decrypting passports) and every stored
file (import payloads, saved export ZIPs, files under DATA_DIR) for each of their values: none is
found, the operations' amounts are intact, and undoing the import brings nobody back.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from saas.clients.erasure import NOT_PERSONAL, PLACES
from saas.core import clock
from testkit import Browser, cli, sql, with_database
from tests.integration.processes import wait_for
from tests.integration.test_clients_web import member, schema_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

# Three people, each with values found nowhere else (so a hit is theirs, not a coincidence).
FORM_PERSON = {
    "last_name": "Зябликова", "first_name": "Аглая", "middle_name": "Всеволодовна", "birth_date": "1987-03-19",
    "phone": "8 (916) 731-22-18", "email": "Aglaya.Zyablikova@Example.com", "address": "Казань, ул. Щапова, 57",
    "note": "Просит звонить после семи", "passport_series": "4519", "passport_number": "731946",
    "passport_issued_by": "ОУФМС по г. Казани в Вахитовском р-не", "passport_issued_on": "2012-06-14",
    "passport_division_code": "160-021", "consent_email": "1", "tags": "ключевой-зябликова",
    "cf_car": "Лада Веста Зяблик",
}
API_PERSON = {
    "last_name": "Пересветов", "first_name": "Елисей", "middle_name": "Модестович", "birth_date": "1975-11-02",
    "phone": "+7 925 604-38-71", "email": "elisey.peresvetov@example.org", "address": "Тверь, пр. Чайковского, 29",
    "note": "Бронирует столик у окна", "tags": ["пересветов-вип"], "custom": {"car": "Волга Пересвет"},
    "consent": {"sms": True},
    "passport": {"series": "2806", "number": "518273", "issued_by": "ТП УФМС в Заволжском р-не Твери",
                 "issued_on": "2005-02-17", "division_code": "690-004"},
}
IMPORT_HEADER = ("Фамилия;Имя;Отчество;Дата рождения;Телефон;Email;Адрес;Серия паспорта;Номер паспорта;"
                 "Кем выдан;Дата выдачи;Код подразделения;Заметка;Теги")
IMPORT_PERSON = ["Оболенцева", "Милослава", "Ярополковна", "24.08.1993", "+7 (903) 447-90-65",
                 "miloslava.obolentseva@example.net", "Самара, ул. Фрунзе, 141", "3614", "902617",
                 "ГУ МВД по Самарской обл.", "03.09.2013", "630-017", "Заказывает подарочные карты",
                 "оболенцева-опт"]


def needles(person: dict[str, Any] | list[str]) -> list[str]:
    """The values to look for: every field, phones and passports also as bare digits."""
    if isinstance(person, list):
        values = [v for v in person if v]
    else:
        values = []
        for key, value in person.items():
            if key in ("consent", "consent_email"):
                continue
            if isinstance(value, dict):
                values += [str(v) for v in value.values()]
            elif isinstance(value, list):
                values += value
            else:
                values.append(str(value))
    out = set()
    for v in values:
        digits = re.sub(r"\D", "", v)
        if len(digits) >= 10:
            out.add(digits[-10:])  # a phone in any format
        elif not (digits == squeeze(v) and len(digits) < 6):  # a passport series alone is too short to tell
            out.add(v.lower())
    return sorted(out)


def squeeze(text: str) -> str:
    """Lower case, and phone punctuation gone, so '+7 916 731-22-18' and '79167312218' both hold
    the ten digits."""
    return re.sub(r"(?<=\d)[\s\-()]+(?=\d)", "", text.lower())


def company_api(base_url: str, slug: str, role: str = "owner") -> httpx.Client:
    token = cli("tokens", "create", "--tenant", slug, "--role", role, "--name", f"pd-{role}").stdout.strip()
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                        timeout=30)


def q(db_url: str, schema: str, query: str, **params: Any) -> list[tuple]:
    return sql(db_url, query.replace("{s}", f'"{schema}"'), params)


def wait_import(api: httpx.Client, import_id: int) -> dict:
    def finished() -> dict | None:
        body = api.get(f"/api/v1/imports/{import_id}").json()
        return body if body["status"] in ("done", "failed") else None

    return wait_for(finished, 60, f"import {import_id}", every=0.3)


def wait_job(db_url: str, schema: str, job_id: int) -> str:
    def finished() -> str | None:
        status = q(db_url, schema, "SELECT status FROM {s}.jobs WHERE id = :i", i=job_id)[0][0]
        return status if status in ("done", "failed") else None

    return wait_for(finished, 60, f"job {job_id}", every=0.3)


def import_file(api: httpx.Client, rows: list[list[str]], name: str = "people.csv", **form: str) -> dict:
    content = "\n".join([IMPORT_HEADER, *(";".join(r) for r in rows)]).encode()
    r = api.post("/api/v1/imports", files={"file": (name, content)}, data={"kind": "clients", **form})
    assert r.status_code == 202, r.text
    return wait_import(api, r.json()["id"])


def upload_only(owner: Browser, slug: str, rows: list[list[str]]) -> int:
    """A file uploaded through the page and left waiting on the mapping screen."""
    content = "\n".join([IMPORT_HEADER, *(";".join(r) for r in rows)]).encode()
    r = owner.post(f"/t/{slug}/imports", data={"kind": "clients", "_csrf_token": owner.csrf()},
                   files={"file": ("pending.csv", content)})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rstrip("/").split("/")[-1])


def form_client(owner: Browser, slug: str, values: dict[str, str]) -> int:
    r = owner.form(f"/t/{slug}/clients", values)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def scan_schema(db_url: str, schema: str) -> list[str]:
    """Every value of every text-like, JSON, binary and array column of the company, as text;
    passports decrypted; ZIP and other stored files opened."""
    from saas.clients import crypto

    columns = sql(db_url, "SELECT table_name, column_name, data_type, udt_name FROM information_schema.columns "
                          "WHERE table_schema = :s ORDER BY table_name, ordinal_position", {"s": schema})
    hay: list[str] = []
    for table, column, data_type, udt in columns:
        if table == "alembic_version":
            continue
        if udt == "bytea":
            for cid, blob, key_id in sql(db_url, f'SELECT {"id" if table == "clients" else "NULL"}, "{column}", '
                                                 f'{"passport_key_id" if column == "passport_enc" else "NULL"} '
                                                 f'FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'):
                if column == "passport_enc":
                    hay.append(json.dumps(crypto.decrypt(bytes(blob), key_id, company=schema, client_id=cid),
                                          ensure_ascii=False))
                else:
                    hay += stored_file_texts(bytes(blob))
        elif data_type in ("text", "character varying", "jsonb", "json", "tsvector", "ARRAY", "USER-DEFINED",
                           "date"):
            for (value,) in sql(db_url, f'SELECT "{column}"::text FROM "{schema}"."{table}" '
                                        f'WHERE "{column}" IS NOT NULL'):
                hay.append(value)
    for (cid, before) in sql(db_url, f'SELECT client_id, before::text FROM "{schema}".import_undo'):
        snap = json.loads(before)
        if snap.get("passport_enc"):
            hay.append(json.dumps(crypto.decrypt(bytes.fromhex(snap["passport_enc"]), snap["passport_key_id"],
                                                 company=schema, client_id=cid), ensure_ascii=False))
    return hay


def stored_file_texts(data: bytes) -> list[str]:
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [t for name in zf.namelist() for t in stored_file_texts(zf.read(name))]
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            return [data.decode(encoding)]
        except UnicodeDecodeError:
            continue
    return [data.decode("latin-1")]


def scan_data_dir() -> list[str]:
    """Files the application keeps on disk (the embedded database's own files aside)."""
    root = Path(os.environ["DATA_DIR"])
    out = []
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file() and "pg" not in path.relative_to(root).parts[:1]:
            out += stored_file_texts(path.read_bytes())
    return out


def found(hay: list[str], values: list[str]) -> dict[str, str]:
    squeezed = [squeeze(h) for h in hay]
    hits = {}
    for value in values:
        v = squeeze(value)
        for h in squeezed:
            if v in h:
                hits[value] = h[max(0, h.index(v) - 60): h.index(v) + 60]
                break
    return hits


@pytest.fixture
def company(base_url: str, db_url: str, worker):
    owner = Browser(base_url)
    slug = owner.signup(f"Personal Data {secrets.token_hex(2)}")
    schema = schema_of(db_url, slug)
    q(db_url, schema, "INSERT INTO {s}.custom_fields (key, label_ru, label_en, type) "
                      "VALUES ('car', 'Машина', 'Car', 'text')")
    api = company_api(base_url, slug)
    yield owner, slug, schema, api
    api.close()
    owner.close()


# ---- the whole walk ------------------------------------------------------------------------------


def test_an_erased_person_is_nowhere_and_undo_brings_nobody_back(company, db_url, base_url) -> None:
    owner, slug, schema, api = company
    today = clock.today().isoformat()
    # Through the form, the API and an import; plus someone who stays, to prove the scan sees data.
    a = form_client(owner, slug, FORM_PERSON)
    r = api.post("/api/v1/clients", json=API_PERSON)
    assert r.status_code == 201, r.text
    b = r.json()["id"]
    keeper = api.post("/api/v1/clients", json={"last_name": "Остающийся", "first_name": "Кирилл",
                                              "phone": "+7 999 111-00-99"}).json()["id"]
    # The import creates C, updates A (an undo snapshot of A's card), and rejects a row of C's with a
    # bad birth date (its cells are kept for the report).
    rejected_c = [*IMPORT_PERSON[:3], "31.02.1993", *IMPORT_PERSON[4:]]
    update_a = ["Зябликова", "Аглая", "", "", FORM_PERSON["phone"], "new.zyablikova@example.com", "", "", "", "", "",
                "", "", ""]
    imp = import_file(api, [IMPORT_PERSON, update_a, rejected_c])
    assert imp["status"] == "done" and (imp["created"], imp["updated"], imp["rejected"]) == (1, 1, 1), imp
    c = q(db_url, schema, "SELECT id FROM {s}.clients WHERE import_id = :i", i=imp["id"])[0][0]
    assert q(db_url, schema, "SELECT count(*) FROM {s}.import_undo WHERE client_id = :a", a=a) == [(1,)]
    pending = upload_only(owner, slug, [IMPORT_PERSON])
    # Saved searches: two name people, one is a plain filter that must survive.
    for name, query in (("Одна", "q=Зябликова+Аглая&tag=x"), ("Почта", f"q={API_PERSON['email']}"),
                        ("VIP", "q=vip&tag=x")):
        assert owner.form(f"/t/{slug}/views", {"name": name, "query": query}).status_code == 303
    for cid, amount in ((a, "1500.50"), (b, "2500.25"), (c, "3500.75"), (keeper, "99.00")):
        r = api.post(f"/api/v1/clients/{cid}/operations",
                     json={"kind": "sale", "occurred_on": today, "amount": amount, "note": f"заметка {cid}"})
        assert r.status_code == 201, r.text
    # A campaign list with them, and a saved company export with passports in full.
    campaign = api.post("/api/v1/campaigns", json={"name": "Все", "channel": "none", "criteria": {},
                                                   "control_share": 0}).json()["id"]
    assert api.post(f"/api/v1/campaigns/{campaign}/build").status_code == 202
    wait_for(lambda: api.get(f"/api/v1/campaigns/{campaign}").json()["status"] == "ready", 60, "the list")
    assert q(db_url, schema, "SELECT count(*) FROM {s}.campaign_members WHERE campaign_id = :c AND client_id IN "
                             "(:a, :b, :c2)", c=campaign, a=a, b=b, c2=c) == [(3,)]
    assert owner.form(f"/t/{slug}/export", {"passport": "full"}).status_code == 303
    export_job = q(db_url, schema, "SELECT max(id) FROM {s}.jobs WHERE kind = 'export'")[0][0]
    assert wait_job(db_url, schema, export_job) == "done"

    values = needles(FORM_PERSON) + needles(API_PERSON) + needles(IMPORT_PERSON) + ["new.zyablikova@example.com"]
    before = found(scan_schema(db_url, schema), values)
    # The scan sees every one of them before (else "nothing found" would prove nothing).
    assert set(values) - set(before) == set(), set(values) - set(before)
    amounts = q(db_url, schema, "SELECT client_id, amount::text FROM {s}.operations ORDER BY id")

    for cid in (a, b, c):
        r = owner.form(f"/t/{slug}/clients/{cid}/erase")
        assert r.status_code == 303 and r.headers["location"] == f"/t/{slug}/clients", r.text

    hits = found(scan_schema(db_url, schema) + scan_data_dir(), values)
    assert hits == {}, hits
    assert found(scan_schema(db_url, schema), ["Остающийся", "9991110099"]) != {}  # the keeper is untouched
    assert q(db_url, schema, "SELECT client_id, amount::text FROM {s}.operations ORDER BY id") == amounts
    assert q(db_url, schema, "SELECT revenue_total::text FROM {s}.clients WHERE id IN (:a, :b, :c) ORDER BY id",
             a=a, b=b, c=c) == [("1500.50",), ("2500.25",), ("3500.75",)]
    # Each place said why: the waiting file, the saved export, the list.
    assert q(db_url, schema, "SELECT file_removed FROM {s}.imports WHERE id = :i", i=pending) == [("erasure",)]
    page = owner.get(f"/t/{slug}/imports/{pending}").text
    assert "personal data was erased" in page
    assert "personal data was erased" in owner.get(f"/t/{slug}/export").text
    assert q(db_url, schema, "SELECT members_count FROM {s}.campaigns WHERE id = :c", c=campaign) == [(1,)]
    assert q(db_url, schema, "SELECT name, params::text FROM {s}.saved_views ORDER BY name") == [
        ("VIP", '{"q": "vip", "tag": "x"}'), ("Одна", '{"tag": "x"}'), ("Почта", "{}")]
    details = q(db_url, schema, "SELECT details::text FROM {s}.audit_events WHERE action = 'client.erased' "
                                "AND object_id = :a", a=a)[0][0]
    assert json.loads(details)["undo_snapshots"] == 1 and json.loads(details)["saved_exports"] == 1

    # Undo the import: C stays (erased, with the amounts), A gets nothing back from its snapshot.
    r = owner.form(f"/t/{slug}/imports/{imp['id']}/undo")
    assert r.status_code == 303
    assert api.get(f"/api/v1/imports/{imp['id']}").json()["status"] == "undone"
    rows = q(db_url, schema, "SELECT id, erased_at IS NOT NULL, phone, email, passport_enc IS NULL FROM {s}.clients "
                             "WHERE id IN (:a, :b, :c) ORDER BY id", a=a, b=b, c=c)
    assert rows == [(a, True, None, None, True), (b, True, None, None, True), (c, True, None, None, True)]
    hits = found(scan_schema(db_url, schema), values)
    assert hits == {}, hits
    assert q(db_url, schema, "SELECT client_id, amount::text FROM {s}.operations ORDER BY id") == amounts


def test_every_column_is_classified_and_the_docs_name_every_place(db_url, base_url, company) -> None:
    """A new text, JSON, binary or array column must say whether it holds personal data (and the
    erasure must reach it): the lists in saas/clients/erasure.py and the docs section agree."""
    _owner, _slug, schema, _api = company
    columns = {(t, c) for t, c in sql(db_url, """
        SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = :s
           AND table_name <> 'alembic_version'
           AND (data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'tsvector', 'ARRAY')
                OR udt_name = 'tsvector')""", {"s": schema})}
    listed = set(PLACES) | set(NOT_PERSONAL)
    assert columns - listed == set(), f"classify these in saas/clients/erasure.py: {sorted(columns - listed)}"
    assert set(PLACES) & set(NOT_PERSONAL) == set()
    docs = DOCS.read_text()
    section = docs.split("## Where personal data lives", 1)[1].split("\n## ", 1)[0]
    for table, column in PLACES:
        assert f"`{table}.{column}`" in section, (table, column)


# ---- item 1: undo never resurrects; files and undo data expire -------------------------------------


def test_undo_after_erasure_gives_nothing_back(company, db_url) -> None:
    owner, slug, schema, api = company
    a = form_client(owner, slug, FORM_PERSON)
    update_a = ["Зябликова", "Аглая", "", "", FORM_PERSON["phone"], "other.mail@example.com", "", "", "", "", "", "",
                "", ""]
    imp = import_file(api, [update_a])
    assert imp["updated"] == 1
    assert owner.form(f"/t/{slug}/clients/{a}/erase").status_code == 303
    assert owner.form(f"/t/{slug}/imports/{imp['id']}/undo").status_code == 303
    row = q(db_url, schema, "SELECT last_name, phone, email, passport_enc, erased_at IS NOT NULL FROM {s}.clients "
                            "WHERE id = :a", a=a)
    assert row == [("Erased", None, None, None, True)]


def test_files_and_undo_data_expire_after_the_company_setting(company, db_url, base_url, make_http) -> None:
    from saas.clients.imports.retention import sweep_all

    owner, slug, schema, api = company
    a = api.post("/api/v1/clients", json={"last_name": "Старый", "first_name": "Файл", "phone": "+79160001122"}).json()
    imp = import_file(api, [["Старый", "Файл", "", "", "+79160001122", "new@example.com", "", "", "", "", "", "",
                             "", ""], ["Плохая", "Дата", "", "31.02.1990", "+79160001123", "", "", "", "", "", "",
                                       "", "", ""]])
    assert imp["updated"] == 1 and imp["rejected"] == 1
    pending = upload_only(owner, slug, [["Ждущий", "Файл", "", "", "+79160001124", "", "", "", "", "", "", "", "",
                                         ""]])
    # The setting: 7 days (the page refuses nonsense).
    assert "30" in owner.get(f"/t/{slug}/settings/privacy").text  # the default
    assert owner.form(f"/t/{slug}/settings/privacy", {"import_retention_days": "0"}).status_code == 422
    assert owner.form(f"/t/{slug}/settings/privacy", {"import_retention_days": "7"}).status_code == 303
    marketer = member(owner, make_http, db_url, slug, "marketer")
    assert marketer.get(f"/t/{slug}/settings/privacy").status_code == 403

    def sweep(days: int) -> int:
        """The hourly maintenance's pass over every company; returns how many of THIS company's imports it
        expired (the suite's other companies, the demo's back-dated imports among them, share the database)."""
        def expired() -> int:
            return q(db_url, schema, "SELECT count(*) FROM {s}.imports WHERE expired_at IS NOT NULL")[0][0]

        before = expired()
        with_database(db_url, lambda db: sweep_all(db, now=clock.now() + timedelta(days=days)))
        return expired() - before

    assert sweep(6) == 0  # not yet: nothing changes
    assert q(db_url, schema, "SELECT count(*) FROM {s}.import_undo WHERE import_id = :i", i=imp["id"]) == [(1,)]
    assert sweep(8) >= 2
    assert sweep(8) == 0  # once
    row = q(db_url, schema, "SELECT expired_at IS NOT NULL, payload IS NULL, sample IS NULL, rejected::text "
                            "FROM {s}.imports WHERE id = :i", i=imp["id"])[0]
    assert row[:3] == (True, True, True) and "Плохая" not in row[3] and '"line"' in row[3]
    assert q(db_url, schema, "SELECT count(*) FROM {s}.import_undo WHERE import_id = :i", i=imp["id"]) == [(0,)]
    assert q(db_url, schema, "SELECT payload IS NULL, file_removed FROM {s}.imports WHERE id = :i",
             i=pending) == [(True, "expired")]
    # The undo button is gone with the reason, in English and in Russian; undo itself is refused.
    page = owner.get(f"/t/{slug}/imports/{imp['id']}").text
    assert 'id="undo-gone"' in page and "can no longer be undone" in page and "7 days" in page
    assert f"/imports/{imp['id']}/undo" not in page
    r = owner.form(f"/t/{slug}/imports/{imp['id']}/undo")
    assert r.status_code == 303
    assert "can no longer be undone" in owner.get(r.headers["location"]).text
    assert q(db_url, schema, "SELECT email FROM {s}.clients WHERE id = :a", a=a["id"]) == [("new@example.com",)]
    owner.form("/lang", {"lang": "ru", "next": f"/t/{slug}/imports/{imp['id']}"})
    ru = owner.get(f"/t/{slug}/imports/{imp['id']}").text
    assert "больше нельзя отменить" in ru and "7 дней" in ru
    assert "удалён" in owner.get(f"/t/{slug}/imports/{pending}").text


# ---- item 3: the platform export ------------------------------------------------------------------


def test_platform_export_keeps_only_encrypted_passports_and_is_in_the_company_log(company, db_url, tmp_path) -> None:
    owner, slug, schema, api = company
    import_file(api, [IMPORT_PERSON, [*IMPORT_PERSON[:3], "31.02.1993", *IMPORT_PERSON[4:]]])
    upload_only(owner, slug, [IMPORT_PERSON])
    assert owner.form(f"/t/{slug}/export", {"passport": "full"}).status_code == 303
    job = q(db_url, schema, "SELECT max(id) FROM {s}.jobs WHERE kind = 'export'")[0][0]
    assert wait_job(db_url, schema, job) == "done"
    out = tmp_path / "t.zip"
    r = cli("tenants", "export", slug, "--out", str(out))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(out) as zf:
        text = "\n".join(zf.read(n).decode() for n in zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    # The passport number and "issued by" are nowhere in plain text (the card's ciphertext is there).
    for secret in ("902617", "ГУ МВД по Самарской обл.", "3614 902617"):
        assert secret not in text, secret
    assert "Оболенцева" in text  # the cards themselves do leave: it is the company's data
    assert sorted(manifest["tables"]["imports"]["withheld"]) == ["payload", "rejected", "sample"]
    assert manifest["tables"]["jobs"]["withheld"] == ["payload"]
    assert manifest["tables"]["clients"]["withheld"] == []
    log = q(db_url, schema, "SELECT actor, details::text FROM {s}.audit_events "
                            "WHERE action = 'company.exported_by_platform'")
    assert len(log) == 1 and log[0][0].startswith("cli:") and '"clients": ' in log[0][1]


# ---- item 5: exports of personal data need the marketer role --------------------------------------


def test_viewers_cannot_export_personal_data(company, db_url, base_url, make_http) -> None:
    owner, slug, schema, api = company
    form_client(owner, slug, FORM_PERSON)
    campaign = api.post("/api/v1/campaigns", json={"name": "V", "channel": "none", "criteria": {},
                                                   "control_share": 0}).json()["id"]
    assert api.post(f"/api/v1/campaigns/{campaign}/build").status_code == 202
    wait_for(lambda: api.get(f"/api/v1/campaigns/{campaign}").json()["status"] == "ready", 60, "the list")
    viewer = member(owner, make_http, db_url, slug, "viewer")
    assert viewer.get(f"/t/{slug}/clients/export?format=csv").status_code == 403
    assert viewer.get(f"/t/{slug}/campaigns/{campaign}/export?format=csv").status_code == 403
    assert "/clients/export" not in viewer.get(f"/t/{slug}/clients").text
    viewer_api = company_api(base_url, slug, "viewer")
    assert viewer_api.get(f"/api/v1/campaigns/{campaign}/export").status_code == 403
    viewer_api.close()
    # A marketer may, and each export is in the log with its row count.
    marketer = member(owner, make_http, db_url, slug, "marketer")
    r = marketer.get(f"/t/{slug}/clients/export?format=csv")
    assert r.status_code == 200 and "Зябликова" in r.content.decode("utf-8-sig")
    assert marketer.get(f"/t/{slug}/campaigns/{campaign}/export?format=csv").status_code == 200
    rows = {a: json.loads(d)["rows"] for a, d in q(db_url, schema, "SELECT action, details::text FROM "
                                                                  "{s}.audit_events WHERE action IN "
                                                                  "('clients.exported', 'campaign.exported')")}
    assert rows == {"clients.exported": 1, "campaign.exported": 1}


def test_erasure_waits_for_a_running_import(company, db_url) -> None:
    """An import being applied read its file before the erasure; erasing meanwhile is refused."""
    owner, slug, schema, _api = company
    a = form_client(owner, slug, FORM_PERSON)
    q(db_url, schema, "INSERT INTO {s}.imports (kind, status, filename) VALUES ('clients', 'running', 'x.csv')")
    r = owner.form(f"/t/{slug}/clients/{a}/erase")
    assert r.status_code == 303 and r.headers["location"] == f"/t/{slug}/clients/{a}"
    assert "import is running" in owner.get(r.headers["location"]).text
    assert q(db_url, schema, "SELECT erased_at IS NULL FROM {s}.clients WHERE id = :a", a=a) == [(True,)]

