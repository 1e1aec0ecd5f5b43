"""The platform console and its CLI: the guard, suspend/resume, delete/restore/purge, plan limits,
system health, the platform log, the export, and the tenant list at 10,000 companies."""
from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from saas.core import clock
from saas.core.db import Database
from testkit import Browser, cli, platform_admin
from tests.integration.test_clients_api import sql
from tests.integration.test_clients_web import create_client

ADMIN_PASSWORD = "console pass 123"


# ---- helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_email() -> str:
    return platform_admin(ADMIN_PASSWORD)


def admin_browser(make_http, email: str) -> Browser:
    b = make_http()
    r = b.form("/login", {"email": email, "password": ADMIN_PASSWORD})
    # a platform admin of no company goes straight to the console (its password prompt), not to an
    # empty "Your companies" page
    assert r.status_code == 303 and r.headers["location"] == "/admin/tenants"
    r = b.get("/admin/tenants")
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
    r = b.form("/admin/login", {"password": ADMIN_PASSWORD, "next": "/admin/tenants"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/tenants"
    return b


def tenant_id(db_url: str, slug: str) -> int:
    return sql(db_url, "SELECT id FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]


def api(base_url: str, slug: str) -> httpx.Client:
    secret = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "t").stdout.strip()
    return httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {secret}"})


def admin_routes() -> list[tuple[str, str]]:
    from tests.integration.test_isolation import tenant_routes

    return tenant_routes("/admin")


def fill(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: "1" if m.group(1) == "tenant_id" else "x", path)


def run_job(tenant: int, schema: str, db_url: str) -> tuple[object, bool]:
    """Run a tenant job through the real runner; True when its body ran."""
    from saas.core.jobs import run_tenant_job

    job_row = sql(db_url, f'INSERT INTO "{schema}".jobs (kind) VALUES (\'test\') RETURNING id')[0][0]
    ran = []

    async def body(db, tenant_obj, job) -> str:
        ran.append(job.id)
        return "ran"

    return run_tenant_job(tenant, job_row, body), bool(ran)


# ---- the guard -----------------------------------------------------------------------------------


def test_console_is_404_for_everyone_but_platform_admins(make_http, admin_email: str) -> None:
    routes = admin_routes()
    assert len(routes) >= 15
    anonymous, user = make_http(), make_http()
    user.signup("Nosy Co")
    for who in (anonymous, user):
        for method, path in routes:
            r = who.request(method, fill(path), data={"_csrf_token": who.csrf()} if method != "GET" else None)
            assert r.status_code == 404, (method, path, r.status_code)

    # A platform admin must also confirm the password: the ordinary login is not enough.
    admin = make_http()
    admin.form("/login", {"email": admin_email, "password": ADMIN_PASSWORD})
    assert admin.get("/admin/health").headers["location"] == "/admin/login?next=/admin/health"
    r = admin.form("/admin/login", {"password": "wrong one", "next": "/admin/health"})
    assert r.status_code == 401 and "Wrong password." in r.text
    r = admin.form("/admin/login", {"password": ADMIN_PASSWORD, "next": "/admin/health"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/health"
    assert admin.get("/admin/tenants").status_code == 200
    assert "Console" in admin.get("/companies").text
    # Closing the console keeps the ordinary login.
    assert admin.form("/admin/logout").status_code == 303
    assert admin.get("/admin/tenants").status_code == 303
    assert admin.get("/companies").status_code == 200


def test_console_session_times_out_when_idle(make_http, admin_email: str) -> None:
    import redis

    import testkit

    admin = admin_browser(make_http, admin_email)
    r = redis.Redis.from_url(testkit.REDIS_URL)
    key = f"{testkit.PREFIX}:sess:{admin.cookies.get('kt_session')}"
    data = json.loads(r.get(key))
    data["admin_seen"] = int(clock.timestamp()) - 31 * 60
    r.set(key, json.dumps(data), keepttl=True)
    assert admin.get("/admin/tenants").status_code == 303
    assert admin.get("/companies").status_code == 200  # the ordinary login lives on


# ---- suspend and resume ---------------------------------------------------------------------------


def test_suspend_then_resume(make_http, admin_email: str, db_url: str, base_url: str) -> None:
    owner = make_http()
    slug = owner.signup("Suspend Me Co")
    client = create_client(owner, slug)
    token = api(base_url, slug)
    tid = tenant_id(db_url, slug)
    schema = f"t_{tid}"
    admin = admin_browser(make_http, admin_email)

    page = admin.get(f"/admin/tenants/{tid}").text  # the button asks before it suspends
    assert 'data-confirm="Suspend Suspend Me Co? Its users see a suspension page' in page
    r = admin.form(f"/admin/tenants/{tid}/suspend", {"reason": ""})
    assert r.status_code == 422 and "reason" in r.text
    r = admin.form(f"/admin/tenants/{tid}/suspend", {"reason": "unpaid invoice"})
    assert r.status_code == 303

    page = owner.get(f"/t/{slug}/clients")
    assert page.status_code == 403 and "is suspended" in page.text and "Suspend Me Co" in page.text
    assert "unpaid invoice" not in page.text
    fresh = make_http()
    r = fresh.form("/login", {"email": owner.email, "password": owner.password})
    assert fresh.get(r.headers["location"]).status_code == 403
    assert token.get("/me").status_code == 403
    result, ran = run_job(tid, schema, db_url)
    assert not ran and result == {"skipped": "tenant is not active"}

    assert admin.form(f"/admin/tenants/{tid}/resume").status_code == 303
    assert owner.get(f"/t/{slug}/clients/{client}").status_code == 200
    assert token.get("/me").status_code == 200
    assert run_job(tid, schema, db_url)[1]
    log = admin.get(f"/admin/audit?target={slug}").text
    assert "tenant.suspended" in log and "tenant.resumed" in log and admin_email in log
    assert "unpaid invoice" in admin.get(f"/admin/tenants/{tid}").text


# ---- delete, restore, purge -----------------------------------------------------------------------


def test_delete_restore_then_purge_after_the_grace_period(make_http, admin_email: str, db_url: str,
                                                          base_url: str) -> None:
    owner = make_http()
    slug = owner.signup("Delete Me Co")
    client = create_client(owner, slug)
    token = api(base_url, slug)
    tid = tenant_id(db_url, slug)
    admin = admin_browser(make_http, admin_email)

    page = admin.get(f"/admin/tenants/{tid}/delete").text
    assert f"/admin/tenants/{tid}/export" in page  # the export is offered first
    assert admin.form(f"/admin/tenants/{tid}/delete", {"confirm": "wrong"}).status_code == 422
    assert admin.form(f"/admin/tenants/{tid}/delete", {"confirm": slug}).status_code == 303
    assert owner.get(f"/t/{slug}/").status_code == 404
    assert token.get("/me").status_code == 401

    # `saas migrate` skips deleted schemas: a restore brings a schema left behind up to date.
    sql(db_url, "UPDATE shared.tenants SET schema_version = 't0001' WHERE id = :i", {"i": tid})
    assert admin.form(f"/admin/tenants/{tid}/restore").status_code == 303
    assert owner.get(f"/t/{slug}/clients/{client}").status_code == 200
    assert token.get("/me").status_code == 200
    from saas.admin.migrate import head

    assert sql(db_url, "SELECT schema_version FROM shared.tenants WHERE id = :i", {"i": tid}) == [(head("tenant"),)]

    # Delete again, and let the grace period pass.
    assert admin.form(f"/admin/tenants/{tid}/delete", {"confirm": slug}).status_code == 303
    sql(db_url, "UPDATE shared.tenants SET purge_after = now() - interval '1 minute' WHERE id = :i", {"i": tid})
    r = admin.form(f"/admin/tenants/{tid}/restore")
    assert r.status_code == 422 and "grace period is over" in r.text
    r = cli("tenants", "purge")
    assert r.returncode == 0 and f"destroyed {slug}" in r.stdout, r.stderr
    assert not sql(db_url, "SELECT 1 FROM pg_namespace WHERE nspname = :s", {"s": f"t_{tid}"})
    assert not sql(db_url, "SELECT 1 FROM shared.tenants WHERE id = :i", {"i": tid})
    assert not sql(db_url, "SELECT 1 FROM shared.users WHERE email = :e", {"e": owner.email})
    record = sql(db_url, "SELECT actor, details FROM shared.platform_audit WHERE action = 'tenant.destroyed' "
                         "AND target = :s", {"s": slug})
    assert len(record) == 1
    actor, details = record[0]
    assert actor.startswith("cli") and details["schema"] == f"t_{tid}" and details["tables_dropped"] > 5
    assert details["destroyed_at"] and details["deleted_at"]
    assert "tenant.destroyed" in admin.get("/admin/audit?action=tenant.destroyed").text


def test_purge_job_skips_companies_within_the_grace_period(make_http, db_url: str) -> None:
    from saas.admin.jobs import maintenance

    owner = make_http()
    slug = owner.signup("Not Yet Co")
    assert cli("tenants", "delete", slug, "--yes").returncode == 0
    result = maintenance()
    assert slug not in result["destroyed"]
    assert sql(db_url, "SELECT status FROM shared.tenants WHERE slug = :s", {"s": slug}) == [("deleted",)]
    assert cli("tenants", "restore", slug).stdout.strip() == f"{slug}: active"


# ---- plan limits, health, log -----------------------------------------------------------------------


def test_plan_limits_set_in_the_console(make_http, admin_email: str, db_url: str) -> None:
    owner = make_http()
    slug = owner.signup("Plan Co")
    create_client(owner, slug)
    tid = tenant_id(db_url, slug)
    admin = admin_browser(make_http, admin_email)
    r = admin.form(f"/admin/tenants/{tid}/plan", {"plan": "free", "clients": "many"})
    assert r.status_code == 422 and "A whole number" in r.text
    r = admin.form(f"/admin/tenants/{tid}/plan", {"plan": "standard", "clients": "1", "users": "none"})
    assert r.status_code == 303
    assert sql(db_url, "SELECT plan, limits FROM shared.tenants WHERE id = :i", {"i": tid}) == [
        ("standard", {"clients": 1, "users": None})]
    r = owner.form(f"/t/{slug}/clients", {"last_name": "Over", "first_name": "Limit"})
    assert r.status_code == 422 and "Your plan allows at most 1 clients" in r.text
    assert "tenant.plan_changed" in admin.get("/admin/audit").text


def test_health_shows_queues_failed_jobs_and_schemas_behind(make_http, admin_email: str, db_url: str) -> None:
    from rq.job import Job
    from rq.results import Result

    from saas.core.config import get_settings
    from saas.core.jobs import get_queue

    owner = make_http()
    slug = owner.signup("Behind Co")
    tid = tenant_id(db_url, slug)
    queue = get_queue(get_settings())
    # Saved, never enqueued (a running worker would take it first), then failed the way a worker
    # fails one: the registry entry and a failure result.
    job = queue.create_job("os.getpid", job_id=f"{get_settings().redis_prefix}-failing-{secrets.token_hex(3)}")
    job.save()
    error = "Traceback (most recent call last):\nRuntimeError: boom in the test"
    queue.failed_job_registry.add(job, ttl=600, exc_string=error)
    Result.create_failure(job, ttl=600, exc_string=error)
    admin = admin_browser(make_http, admin_email)
    sql(db_url, "UPDATE shared.tenants SET schema_version = 't0001' WHERE id = :i", {"i": tid})
    try:
        page = admin.get("/admin/health").text
        assert 'data-queue="default"' in page
        assert job.id in page and "boom in the test" in page
        assert "Behind Co" in page and "t0001" in page
        r = admin.form(f"/admin/health/failed/{job.id}/retry", {"queue": "default"})
        assert r.status_code == 303
        assert job.id not in queue.failed_job_registry.get_job_ids()
        assert Job.fetch(job.id, connection=queue.connection).get_status() in ("queued", "started", "finished")
        assert "job.retried" in admin.get("/admin/audit").text
    finally:
        from saas.admin.migrate import head

        sql(db_url, "UPDATE shared.tenants SET schema_version = :v WHERE id = :i", {"v": head("tenant"), "i": tid})


def test_tenant_list_search_filter_sort_and_usage(make_http, admin_email: str, db_url: str) -> None:
    owner = make_http()
    marker = secrets.token_hex(3)
    slug = owner.signup(f"Zebra Listing {marker}")
    create_client(owner, slug)
    admin = admin_browser(make_http, admin_email)
    tid = tenant_id(db_url, slug)
    admin.get(f"/admin/tenants/{tid}")  # measures usage on view
    page = admin.get(f"/admin/tenants?q={marker}").text
    assert f"Zebra Listing {marker}" in page and slug in page
    row = page.split(slug)[1].split("</tr>")[0]
    assert re.findall(r'<td class="num"[^>]*>(\d+)</td>', row)[:3] == ["1", "1", "0"]  # users, clients, operations
    assert "Zebra" not in admin.get(f"/admin/tenants?q={marker}&status=suspended").text.split("<tbody>")[1]
    for sort in ("created", "activity", "name"):
        assert admin.get(f"/admin/tenants?sort={sort}").status_code == 200


# ---- CLI --------------------------------------------------------------------------------------------


def test_cli_suspend_resume_delete_restore_export(http: Browser, db_url: str, base_url: str, tmp_path: Path) -> None:
    slug = http.signup("Cli Ops Co")
    client = create_client(http, slug, last_name="Экспортова", passport_number="987654", passport_series="4511")
    token = api(base_url, slug)

    r = cli("tenants", "suspend", slug, "--reason", "abuse report")
    assert r.returncode == 0 and r.stdout.strip() == f"{slug}: suspended", r.stderr
    assert http.get(f"/t/{slug}/").status_code == 403 and token.get("/me").status_code == 403
    assert cli("tenants", "suspend", slug, "--reason", "again").returncode != 0  # already suspended
    assert cli("tenants", "resume", slug).stdout.strip() == f"{slug}: active"
    assert http.get(f"/t/{slug}/").status_code == 200

    assert cli("tenants", "delete", slug, "--yes").stdout.strip() == f"{slug}: deleted"
    assert http.get(f"/t/{slug}/").status_code == 404
    assert cli("tenants", "restore", slug).stdout.strip() == f"{slug}: active"
    assert http.get(f"/t/{slug}/clients/{client}").status_code == 200
    actions = [a for (a,) in sql(db_url, "SELECT action FROM shared.platform_audit WHERE target = :s ORDER BY id",
                                 {"s": slug})]
    assert actions == ["tenant.suspended", "tenant.resumed", "tenant.deleted", "tenant.restored"]

    out = tmp_path / "export.zip"
    r = cli("tenants", "export", slug, "--out", str(out))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert {"manifest.json", "clients.jsonl", "operations.jsonl", "audit_events.jsonl"} <= names
        rows = [json.loads(line) for line in zf.read("clients.jsonl").decode().splitlines()]
        everything = b"".join(zf.read(n) for n in names)
        manifest = json.loads(zf.read("manifest.json"))
    assert [row["last_name"] for row in rows] == ["Экспортова"]
    assert rows[0]["id"] == client and rows[0]["passport_enc"]
    assert b"987654" not in everything  # the passport stays an encrypted blob
    import base64

    assert len(base64.b64decode(rows[0]["passport_enc"])) > 16
    assert manifest["tenant"]["slug"] == slug and manifest["tables"]["clients"]["rows"] == 1
    assert "tenant.exported" in [a for (a,) in sql(db_url, "SELECT action FROM shared.platform_audit "
                                                           "WHERE target = :s", {"s": slug})]
    assert cli("tenants", "suspend", "no-such-company", "--reason", "x").returncode != 0


def test_console_export_download(make_http, admin_email: str, db_url: str) -> None:
    owner = make_http()
    slug = owner.signup("Download Co")
    create_client(owner, slug)
    admin = admin_browser(make_http, admin_email)
    r = admin.get(f"/admin/tenants/{tenant_id(db_url, slug)}/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert len(zf.read("clients.jsonl").splitlines()) == 1


# ---- scale ------------------------------------------------------------------------------------------


def test_tenant_list_pages_by_index_at_10000_tenants(db_url: str) -> None:
    from saas.admin.service import list_tenants
    from saas.admin.migrate import head

    async def go() -> None:
        db = Database(db_url, pool_size=1)
        try:
            async with db.session() as s:
                await s.execute(text(
                    "INSERT INTO shared.tenants (slug, name, schema_name, schema_version, status, created_at, "
                    "last_activity_at) SELECT 'bench10k-' || g, 'Bench company ' || g, "
                    "'t_99' || lpad(g::text, 6, '0'), :v, CASE WHEN g % 50 = 0 THEN 'suspended' ELSE 'active' END, "
                    "now() - g * interval '1 minute', "
                    "CASE WHEN g % 3 = 0 THEN NULL ELSE now() - g * interval '1 second' END "
                    "FROM generate_series(1, 10000) g"), {"v": head("tenant")})
            async with db.session() as s:
                await s.execute(text("ANALYZE shared.tenants"))
            cases = {"created": {}, "activity": {"sort": "activity"}, "name": {"sort": "name"},
                     "search": {"q": "company 99"}, "suspended": {"status": "suspended", "sort": "name"}}
            for _name, kwargs in cases.items():
                async with db.session() as s:
                    await list_tenants(s, **kwargs)  # warm the plan cache of this connection
                    page = await list_tenants(s, **kwargs)
                    assert len(page.rows) == 50 and page.next_cursor
                    second = await list_tenants(s, **kwargs, after=page.next_cursor)
                    assert not {t.id for t in page.rows} & {t.id for t in second.rows}
            async with db.session() as s:
                plan = "\n".join(r[0] for r in await s.execute(text(
                    "EXPLAIN SELECT id FROM shared.tenants ORDER BY created_at DESC, id DESC LIMIT 51")))
            assert "ix_tenants_created_at_id" in plan, plan
        finally:
            async with db.session() as s:
                await s.execute(text("DELETE FROM shared.tenants WHERE slug LIKE 'bench10k-%'"))
            await db.dispose()
        return None

    asyncio.run(go())


def test_platform_usage_figures_leave_demo_companies_out(make_http, admin_email: str, db_url: str) -> None:
    import re as _re

    admin = admin_browser(make_http, admin_email)
    owner = make_http()
    slug = owner.signup("Soon A Demo Co")

    def totals() -> tuple[int, int]:
        page = admin.get("/admin/tenants", headers={"Accept-Language": "en"}).text
        companies = int(_re.sub(r"\D", "", page.split('data-total="companies">')[1].split("<")[0]))
        demos = int(_re.search(r"leave out demo companies \((\d+)\)", page).group(1))
        return companies, demos

    before = totals()
    sql(db_url, "UPDATE shared.tenants SET is_demo = true WHERE slug = :s", {"s": slug})
    after = totals()
    assert after == (before[0] - 1, before[1] + 1)


def test_console_list_measures_new_companies_on_opening(make_http, admin_email: str, db_url: str, worker) -> None:
    """A new company's clients show on the console's list and tiles without waiting for the hourly job:
    opening the list queues a measurement and the page re-reads its figures until they are current."""
    from tests.integration.processes import wait_for

    owner = make_http()
    marker = secrets.token_hex(3)
    slug = owner.signup(f"Fresh Figures {marker}")
    for i in range(3):
        create_client(owner, slug, last_name=f"Счётова{i}", phone=f"+7916555{i:04d}", email=f"c{i}@example.com",
                      passport_number=f"12345{i}")
    admin = admin_browser(make_http, admin_email)
    tid = tenant_id(db_url, slug)
    assert sql(db_url, "SELECT stats_at FROM shared.tenants WHERE id = :i", {"i": tid}) == [(None,)]

    def row_figures(page: str) -> list[str]:
        row = page.split(f">{slug}<")[1].split("</tr>")[0]
        return re.findall(r'<td class="num"[^>]*>(\d+)</td>', row)[:3]  # users, clients, operations

    first = admin.get(f"/admin/tenants?q={marker}").text
    assert 'data-usage="updating"' in first and 'hx-trigger="load delay:2s"' in first  # the page polls itself
    poll_url = re.search(r'hx-get="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "poll=1" in poll_url
    page = wait_for(lambda: (p := admin.get(poll_url).text) and row_figures(p) == ["1", "3", "0"] and p,
                    30, "the list to show the new company's clients")
    assert "Figures updated" in page and 'data-usage="current"' in page and "load delay" not in page
    clients_total = int(re.sub(r"\D", "", page.split('data-total="clients">')[1].split("<")[0]))
    assert clients_total >= 3

    # Measured ten minutes ago, active since: opening the list measures it again.
    sql(db_url, "UPDATE shared.tenants SET stats_at = now() - interval '10 minutes', "
                "last_activity_at = now() - interval '9 minutes' WHERE id = :i", {"i": tid})
    create_client(owner, slug, last_name="Четвёртова", phone="+79165559999", email="c9@example.com",
                  passport_number="999999")
    wait_for(lambda: row_figures(admin.get(f"/admin/tenants?q={marker}").text) == ["1", "4", "0"], 30,
             "the list to count the fourth client")
    # Measured ten minutes ago with no activity since: left alone (nothing queued, no polling).
    sql(db_url, "UPDATE shared.tenants SET stats_at = now() - interval '10 minutes', "
                "last_activity_at = now() - interval '2 hours' WHERE stats_at IS NOT NULL")
    sql(db_url, "UPDATE shared.tenants SET stats_at = now() WHERE stats_at IS NULL")
    quiet = admin.get(f"/admin/tenants?q={marker}").text
    assert 'data-usage="current"' in quiet and "load delay" not in quiet
    assert "10 minutes ago" in quiet, quiet.split('class="muted small usage-age"')[1][:200]
