"""The owner's "Export everything": a ZIP built by the real worker, downloaded (audited) for 24
hours, refused to other companies and other roles, expired with a clear page and deleted by the
maintenance; and the ZIP restored into a new company gives the same counts, totals and per-client
metrics."""
from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile
from datetime import timedelta

import httpx
import pytest

from saas.core import clock
from testkit import Browser, audit_count, cli, sql
from tests.integration.processes import wait_for
from tests.integration.test_clients_web import member, schema_of


def api_for(base_url: str, slug: str) -> httpx.Client:
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "exp").stdout.strip()
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                        timeout=30)


def client(api: httpx.Client, **body) -> int:
    r = api.post("/api/v1/clients", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def operation(api: httpx.Client, cid: int, **body) -> None:
    r = api.post(f"/api/v1/clients/{cid}/operations", json=body)
    assert r.status_code == 201, r.text


def wait_job(db_url: str, schema: str, job_id: int, timeout: float = 60) -> str:
    def finished() -> str | None:
        status = sql(db_url, f'SELECT status FROM "{schema}".jobs WHERE id = :i', {"i": job_id})[0][0]
        return status if status in ("done", "failed") else None

    return wait_for(finished, timeout, f"job {job_id} to finish", every=0.3)


def last_job(db_url: str, schema: str, kind: str) -> int:
    return sql(db_url, f'SELECT max(id) FROM "{schema}".jobs WHERE kind = :k', {"k": kind})[0][0]


@pytest.fixture(scope="module")
def source(base_url: str, db_url: str, worker):
    """A company with dictionaries, a custom field, clients with and without contacts (two of them
    namesakes with no phone or email), an archived one, and sales, services, returns, unpaid ones."""
    owner = Browser(base_url)
    slug = owner.signup("Export Source Co")
    schema = schema_of(db_url, slug)
    sql(db_url, f'INSERT INTO "{schema}".custom_fields (key, label_ru, label_en, type) '
                "VALUES ('car', 'Машина', 'Car', 'text')")
    sql(db_url, f"""INSERT INTO "{schema}".product_groups (name, archived_at)
                    VALUES ('Шины', NULL), ('Диски', NULL), ('Старое', now())""")
    sql(db_url, f'INSERT INTO "{schema}".directions (name) VALUES (\'Розница\'), (\'Опт\')')
    api = api_for(base_url, slug)
    full = client(api, last_name="Смирнова", first_name="Анна", middle_name="Игоревна", phone="+7 916 555-12-34",
                  email="anna@example.com", passport={"series": "4510", "number": "123456"},
                  consent={"email": True}, tags=["VIP", "опт"], product_groups=["Шины"], directions=["Розница"],
                  note="=SUM(A1) please", custom={"car": "Lada"})
    twin_a = client(api, last_name="Иванов", first_name="Иван", note="+1 call back")
    twin_b = client(api, last_name="Иванов", first_name="Иван")
    archived = client(api, first_name="Пётр", email="petr@example.com")
    quiet = client(api, last_name="Без", first_name="Покупок")
    operation(api, full, kind="sale", occurred_on="2024-03-01", amount="1000.50", paid_on="2024-03-02",
              product_group="Шины")
    operation(api, full, kind="return", occurred_on="2024-03-10", amount="200")
    operation(api, full, kind="service", occurred_on="2025-01-15", amount="500", due_on="2025-02-01",
              direction="Опт")
    operation(api, twin_a, kind="sale", occurred_on="2023-06-01", amount="300")
    operation(api, twin_b, kind="sale", occurred_on="2024-07-01", amount="700", paid_on="2024-07-01",
              product_group="Диски")
    operation(api, archived, kind="sale", occurred_on="2022-01-01", amount="99.99", paid_on="2022-01-02")
    assert api.delete(f"/api/v1/clients/{archived}").status_code in (200, 204)
    api.close()
    yield owner, slug, schema, quiet
    owner.close()


def build(owner: Browser, db_url: str, slug: str, schema: str, passport: str = "full") -> tuple[int, str]:
    assert owner.form(f"/t/{slug}/export", {"passport": passport}).status_code == 303
    job_id = last_job(db_url, schema, "export")
    assert wait_job(db_url, schema, job_id) == "done"
    page = owner.get(f"/t/{slug}/export").text
    link = re.search(rf'href="(/t/{slug}/export/jobs/{job_id}/[\w-]+)"', page)
    assert link, page
    return job_id, link.group(1)


def read_csv(zf: zipfile.ZipFile, name: str) -> list[list[str]]:
    raw = zf.read(name)
    assert raw.startswith(b"\xef\xbb\xbf"), name  # UTF-8 with BOM: Excel reads Cyrillic right
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


def test_export_zip_is_complete_safe_and_audited(source, db_url) -> None:
    owner, slug, schema, _quiet = source
    job_id, link = build(owner, db_url, slug, schema)
    r = owner.get(link)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "no-store" in r.headers["cache-control"]
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert {"clients.csv", "operations.csv", "product_groups.csv", "directions.csv", "campaigns.csv",
            "custom_fields.csv", "manifest.json"} <= set(zf.namelist())
    clients = read_csv(zf, "clients.csv")
    assert len(clients) == 1 + 5
    text = zf.read("clients.csv").decode("utf-8-sig")
    assert "'=SUM(A1) please" in text and "'+1 call back" in text  # formula-safe cells
    anna = dict(zip(clients[0], next(r for r in clients if r[1] == "Смирнова"), strict=True))
    assert anna["Passport number"] == "123456" and anna["Passport series"] == "4510"  # in full, as asked
    assert len(read_csv(zf, "operations.csv")) == 1 + 6
    assert {row[1] for row in read_csv(zf, "product_groups.csv")[1:]} == {"Шины", "Диски", "Старое"}
    # The download is in the company's audit log, and a full-passport one as a passport export.
    assert audit_count(db_url, schema, "export.downloaded", job_id) == 1
    assert audit_count(db_url, schema, "passport.exported", job_id) == 1

    # A masked export carries no passport number, and its download is no passport export.
    masked_id, masked_link = build(owner, db_url, slug, schema, passport="masked")
    rows = read_csv(zipfile.ZipFile(io.BytesIO(owner.get(masked_link).content)), "clients.csv")
    anna = dict(zip(rows[0], next(r for r in rows if r[1] == "Смирнова"), strict=True))
    assert "Passport number" not in anna and anna["Passport"].endswith("56") and "1234" not in anna["Passport"]
    assert audit_count(db_url, schema, "passport.exported", masked_id) == 0


def test_export_progress_fragment_and_plain_fallback(source, db_url) -> None:
    owner, slug, schema, _quiet = source
    job_id, _link = build(owner, db_url, slug, schema, passport="masked")
    fragment = owner.get(f"/t/{slug}/export/jobs/{job_id}", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and f'id="export-job-{job_id}"' in fragment.text
    assert "<html" not in fragment.text and "Download the ZIP" in fragment.text
    plain = owner.get(f"/t/{slug}/export/jobs/{job_id}")
    assert plain.status_code == 303 and plain.headers["location"] == f"/t/{slug}/export"


def test_other_companies_and_roles_are_refused(source, db_url, make_http) -> None:
    owner, slug, schema, _quiet = source
    job_id, link = build(owner, db_url, slug, schema, passport="masked")
    stranger = make_http()
    other = stranger.signup("Export Stranger Co")
    foreign = link.replace(f"/t/{slug}/", f"/t/{other}/")
    assert stranger.get(foreign).status_code == 404  # the right key, the wrong company
    assert stranger.get(f"/t/{other}/export/jobs/{job_id}", headers={"HX-Request": "true"}).status_code == 404
    assert stranger.get(link).status_code == 404  # not a member of the first company
    assert owner.get(link[:-4] + "xxxx").status_code == 404  # a guessed key
    marketer = member(owner, make_http, db_url, slug, "marketer")
    assert marketer.get(f"/t/{slug}/export").status_code == 403
    assert marketer.get(link).status_code == 403
    assert marketer.form(f"/t/{slug}/export", {"passport": "full"}).status_code == 403


def test_an_expired_link_says_so_and_the_maintenance_deletes_the_file(source, db_url) -> None:
    from saas.core.db import Database
    from saas.backup.service import remove_expired

    owner, slug, schema, _quiet = source
    job_id, link = build(owner, db_url, slug, schema, passport="masked")
    old_id, old_link = build(owner, db_url, slug, schema, passport="masked")
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    sql(db_url, f"""UPDATE "{schema}".jobs SET result = jsonb_set(result, '{{expires_at}}', to_jsonb(CAST(:p AS text)))
                    WHERE id = :i""", {"p": past, "i": old_id})
    r = owner.get(old_link)
    assert r.status_code == 410 and "expired" in r.text and "Build a new export" in r.text
    assert "Build a new export" in owner.get(f"/t/{slug}/export").text
    assert sql(db_url, f'SELECT payload IS NULL FROM "{schema}".jobs WHERE id = :i', {"i": old_id})[0][0]

    # A day later the hourly maintenance empties the other one too; its link then says "expired".
    async def sweep() -> int:
        db = Database(db_url, pool_size=1)
        try:
            return await remove_expired(db, now=clock.now() + VALID_PLUS)
        finally:
            await db.dispose()

    assert asyncio.run(sweep()) >= 1
    assert sql(db_url, f'SELECT payload IS NULL FROM "{schema}".jobs WHERE id = :i', {"i": job_id})[0][0]
    assert owner.get(link).status_code == 410


VALID_PLUS = timedelta(hours=25)


def metrics(db_url: str, schema: str) -> list[tuple]:
    """Per-client facts that do not depend on ids, sorted: what a round trip must keep."""
    return sorted(sql(db_url, f"""
        SELECT c.last_name, c.first_name, c.middle_name, coalesce(c.phone, ''), coalesce(c.email, ''),
               coalesce(c.note, ''), c.operations_count, c.revenue_total::text, c.unpaid_total::text,
               coalesce(c.first_operation_on::text, ''), coalesce(c.last_operation_on::text, ''),
               array_to_string(ARRAY(SELECT t FROM unnest(c.tags) t ORDER BY t), ','),
               coalesce((SELECT string_agg(g.name, ',' ORDER BY g.name) FROM "{schema}".product_groups g
                         WHERE g.id = ANY(c.product_group_ids)), ''),
               c.archived_at IS NOT NULL, coalesce(c.passport_mask, ''), c.consent ? 'email',
               coalesce(c.custom ->> 'car', ''),
               coalesce((SELECT string_agg(o.kind || o.amount::text || coalesce(g.name, '') || coalesce(d.name, '')
                                           || coalesce(o.due_on::text, '') || coalesce(o.paid_on::text, ''), ','
                                           ORDER BY o.occurred_on, o.kind)
                         FROM "{schema}".operations o
                         LEFT JOIN "{schema}".product_groups g ON g.id = o.product_group_id
                         LEFT JOIN "{schema}".directions d ON d.id = o.direction_id
                         WHERE o.client_id = c.id), '')
        FROM "{schema}".clients c"""))


def totals(db_url: str, schema: str) -> tuple:
    return sql(db_url, f"""SELECT (SELECT count(*) FROM "{schema}".clients),
                                  (SELECT count(*) FROM "{schema}".operations),
                                  (SELECT sum(CASE WHEN kind = 'return' THEN -amount ELSE amount END)
                                   FROM "{schema}".operations),
                                  (SELECT sum(revenue_total) FROM "{schema}".clients),
                                  (SELECT sum(unpaid_total) FROM "{schema}".clients)""")[0]


def post_restore(browser: Browser, slug: str, zip_bytes: bytes, filename: str = "export.zip") -> httpx.Response:
    return browser.post(f"/t/{slug}/export/restore", files={"file": (filename, zip_bytes, "application/zip")},
                        data={"_csrf_token": browser.csrf()})


def restored_company(make_http, db_url: str, zip_bytes: bytes, company: str) -> tuple[Browser, str, str, int]:
    """A new company with `zip_bytes` restored into it: (its owner's browser, slug, schema, the finished
    restore job's id)."""
    target = make_http()
    dest = target.signup(company)
    dest_schema = schema_of(db_url, dest)
    r = post_restore(target, dest, zip_bytes)
    assert r.status_code == 303, r.text
    job_id = last_job(db_url, dest_schema, "restore")
    assert wait_job(db_url, dest_schema, job_id) == "done"
    return target, dest, dest_schema, job_id


def test_the_export_round_trips_into_a_new_company(source, db_url, make_http) -> None:
    owner, slug, schema, _quiet = source
    _job, link = build(owner, db_url, slug, schema, passport="full")
    zip_bytes = owner.get(link).content

    target, dest, dest_schema, job_id = restored_company(make_http, db_url, zip_bytes, "Export Target Co")

    assert totals(db_url, dest_schema) == totals(db_url, schema)
    assert totals(db_url, schema)[:2] == (5, 6)
    assert metrics(db_url, dest_schema) == metrics(db_url, schema)
    page = target.get(f"/t/{dest}/export").text
    assert "Restored. Clients: 5, operations: 6." in page and "totals match the export" in page
    assert sql(db_url, f'SELECT payload IS NULL FROM "{dest_schema}".jobs WHERE id = :i', {"i": job_id})[0][0]
    assert audit_count(db_url, dest_schema, "export.restored", job_id) == 1

    # A second restore into the now non-empty company is refused with the reason, not run.
    r = post_restore(target, dest, zip_bytes)
    assert r.status_code == 422 and "already has clients" in r.text
    # Something that is not an export is refused at the upload.
    r = post_restore(target, dest, b"PK not really", "x.zip")
    assert r.status_code == 422 and "not a Kartoteka export" in r.text


def test_a_restore_over_the_plan_limit_fails_with_the_reason_and_writes_nothing(source, db_url, make_http) -> None:
    from tests.integration.test_account import set_limits

    owner, slug, schema, _quiet = source
    _job, link = build(owner, db_url, slug, schema, passport="masked")
    target = make_http()
    dest = target.signup("Export Small Plan Co")
    dest_schema = schema_of(db_url, dest)
    set_limits(db_url, dest, {"clients": 3})
    r = post_restore(target, dest, owner.get(link).content, "e.zip")
    assert r.status_code == 303
    job_id = last_job(db_url, dest_schema, "restore")
    assert wait_job(db_url, dest_schema, job_id) == "failed"
    error = sql(db_url, f'SELECT error FROM "{dest_schema}".jobs WHERE id = :i', {"i": job_id})[0][0]
    assert "limit" in error.lower() and "Error" not in error  # the plan's message, not a stack trace name
    assert totals(db_url, dest_schema)[:2] == (0, 0)
    assert sql(db_url, f'SELECT count(*) FROM "{dest_schema}".product_groups')[0][0] == 0  # all rolled back
    assert "It failed:" in target.get(f"/t/{dest}/export").text
