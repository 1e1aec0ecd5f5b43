"""Kartoteka on a real Citus cluster (issue 18): a coordinator and two workers started for this module.

Each company is a distributed schema placed on one worker; `shared` stays on the coordinator. The
product runs unchanged against the coordinator: sign-up, the API, both kinds of import (the
set-based client path included), the refresh, a campaign build, isolation between companies on
different workers, and a company moved between workers while people keep reading and writing it."""
from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time

import httpx
import pytest
from sqlalchemy import text

from saas.core.db import Database
from testkit import Browser, cli
from tests.integration.citus import cluster, skip_reason
from tests.integration.processes import Stack, wait_for

# Where the machine has no Citus: the cluster script (KARTOTEKA_CITUS, default ../shared/citus/
# citus-cluster) or PostgreSQL 15's binaries are missing. This project's CI machine has both.
pytestmark = pytest.mark.skipif(
    skip_reason() is not None, reason="no Citus here: the citus-cluster script or PostgreSQL 15's binaries are missing")


@pytest.fixture(scope="module")
def citus():
    with cluster() as url:
        env = {"DATABASE_URL": url, "WEB_CONCURRENCY": "1"}
        r = cli("migrate", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        stack = Stack(**env)
        web = stack.web(timeout=60)
        stack.worker()
        yield url, web, env
        stack.stop()


def q(url: str, query: str, **params) -> list[tuple]:
    async def go() -> list[tuple]:
        db = Database(url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=1)
        try:
            async with db.session() as s:
                result = await s.execute(text(query), params)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(go())


def api(web: str, slug: str, env: dict) -> httpx.Client:
    r = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "citus", env=env)
    assert r.returncode == 0, r.stderr
    return httpx.Client(base_url=web, timeout=60, headers={"Authorization": f"Bearer {r.stdout.strip()}",
                                                           "Accept-Language": "en"})


def node_of(url: str, slug: str) -> str:
    rows = q(url, "SELECT min(s.nodename || ':' || s.nodeport) FROM citus_shards s"
                  " JOIN pg_class c ON c.oid = s.table_name JOIN pg_namespace n ON n.oid = c.relnamespace"
                  " JOIN shared.tenants t ON t.schema_name = n.nspname WHERE t.slug = :slug", slug=slug)
    return rows[0][0]


def workers(url: str) -> list[str]:
    return [r[0] for r in q(url, "SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid <> 0"
                                 " ORDER BY nodeid")]


@pytest.fixture(scope="module")
def two_companies(citus):
    """Two companies signed up through the web, placed on different workers (moved if needed)."""
    url, web, env = citus
    slugs, owners = [], []
    for name in ("Citus One", "Citus Two"):
        owners.append(Browser(web))
        slugs.append(owners[-1].signup(name))
    if node_of(url, slugs[0]) == node_of(url, slugs[1]):
        other = next(n for n in workers(url) if n != node_of(url, slugs[0]))
        r = cli("tenants", "move", slugs[1], "--node", other, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    yield slugs, owners
    for owner in owners:
        owner.close()


def test_the_engine_is_detected_and_shared_stays_on_the_coordinator(citus) -> None:
    url, web, _env = citus
    health = httpx.get(web + "/healthz").json()
    assert health["engine"]["kind"] == "citus" and health["engine"]["workers"] == 2
    distributed = {r[0] for r in q(url, "SELECT schema_name::text FROM citus_schemas")}
    assert "shared" not in distributed


def test_companies_are_distributed_schemas_on_different_workers(citus, two_companies) -> None:
    url, _web, env = citus
    (a, b), _owners = two_companies
    nodes = {node_of(url, a), node_of(url, b)}
    assert len(nodes) == 2 and nodes <= set(workers(url))
    out = cli("tenants", "placement", env=env)
    assert out.returncode == 0, out.stderr
    for slug in (a, b):
        assert any(line.split()[0] == slug and node_of(url, slug) in line for line in out.stdout.splitlines())


def test_api_flow_and_isolation_across_workers(citus, two_companies) -> None:
    _url, web, env = citus
    (a, b), _owners = two_companies
    with api(web, a, env) as one, api(web, b, env) as two:
        made = one.post("/api/v1/clients", json={
            "last_name": "Орлова", "first_name": "Анна", "phone": "+79161230001",
            "passport": {"series": "4510", "number": "123456", "issued_by": "ОВД"}})
        assert made.status_code == 201, made.text
        cid = made.json()["id"]
        op = one.post(f"/api/v1/clients/{cid}/operations", json={
            "kind": "sale", "amount": "1500.00", "occurred_on": "2026-11-01"})
        assert op.status_code == 201, op.text
        assert one.get(f"/api/v1/clients/{cid}").json()["metrics"]["operations_count"] == 1
        found = one.get("/api/v1/clients", params={"q": "4510 123456"}).json()
        assert [c["id"] for c in found["items"]] == [cid]
        # the other company, on the other worker, sees none of it
        assert two.get(f"/api/v1/clients/{cid}").status_code == 404
        assert two.get("/api/v1/clients", params={"q": "4510 123456"}).json()["items"] == []


def _import(client: httpx.Client, kind: str, content: bytes) -> dict:
    r = client.post("/api/v1/imports", files={"file": (f"{kind}.csv", content)}, data={"kind": kind})
    assert r.status_code == 202, r.text

    def finished() -> dict | None:
        body = client.get(f"/api/v1/imports/{r.json()['id']}").json()
        return body if body["status"] in ("done", "failed") else None

    return wait_for(finished, 120, f"{kind} import", every=0.3)


def test_imports_of_both_kinds_refresh_and_campaign_build(citus, two_companies) -> None:
    url, web, env = citus
    (a, _b), owners = two_companies
    with api(web, a, env) as one:
        lines = ["Фамилия;Имя;Телефон;Эл. почта"] + [
            f"Клиент{i};Имя{i};+7916{i:07d};c{i}@example.com" for i in range(1, 601)]
        body = _import(one, "clients", ("\n".join(lines) + "\n").encode())
        assert (body["status"], body["created"], body["rejected"]) == ("done", 600, 0), body
        ops = ["Телефон;Дата;Сумма;Тип"] + [
            f"+7916{i:07d};2026-{1 + i % 11:02d}-{1 + i % 27:02d};{100 + i};продажа" for i in range(1, 601)]
        body = _import(one, "operations", ("\n".join(ops) + "\n").encode())
        assert body["status"] == "done" and body["created"] == 600, body
        undone = owners[0].form(f"/t/{a}/imports/{body['id']}/undo")
        assert undone.status_code in (200, 202, 303), undone.text
        schema = q(url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", s=a)[0][0]
        wait_for(lambda: q(url, f'SELECT count(*) FROM "{schema}".operations WHERE import_id = :i',
                           i=body["id"])[0][0] == 0, 60, "the undo")
        assert _import(one, "operations", ("\n".join(ops) + "\n").encode())["created"] == 600

        # a finished import queues the refresh: every client gets scores, computed on the worker
        wait_for(lambda: q(url, f'SELECT count(*) FROM "{schema}".client_scores')[0][0] >= 600, 120, "the refresh")
        made = one.post("/api/v1/campaigns", json={"name": "Citus", "channel": "none", "criteria": {},
                                                  "size": 100, "control_share": 0.1})
        assert made.status_code == 201, made.text
        assert one.post(f"/api/v1/campaigns/{made.json()['id']}/build").status_code == 202
        built = wait_for(lambda: (lambda c: c if c["status"] in ("ready", "failed") else None)(
            one.get(f"/api/v1/campaigns/{made.json()['id']}").json()), 120, "the campaign build", every=0.3)
        assert built["status"] == "ready" and built["members"] == 100, built


def test_a_company_moves_between_workers_while_people_read_and_write_it(citus, two_companies) -> None:
    url, web, env = citus
    (a, _b), owners = two_companies
    source = node_of(url, a)
    target = next(n for n in workers(url) if n != source)
    failures: list[str] = []
    reads, writes = 0, 0
    stop = threading.Event()
    with api(web, a, env) as one, api(web, a, env) as other:
        expected = one.get("/api/v1/clients", params={"limit": 5}).json()["items"]
        cid = expected[0]["id"]

        def reader() -> None:
            nonlocal reads
            while not stop.is_set():
                r = one.get("/api/v1/clients", params={"limit": 5})
                if r.status_code != 200 or [c["id"] for c in r.json()["items"]] != [c["id"] for c in expected]:
                    failures.append(f"read {r.status_code} {r.text[:200]}")
                reads += 1

        def writer() -> None:
            """Writes during the move wait for it (block_writes here), then land: none is refused or lost."""
            nonlocal writes
            while not stop.is_set():
                r = other.post(f"/api/v1/clients/{cid}/operations", json={
                    "kind": "service", "amount": "1.00", "occurred_on": "2026-11-03"})
                if r.status_code != 201:
                    failures.append(f"write {r.status_code} {r.text[:200]}")
                writes += 1

        schema = q(url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", s=a)[0][0]
        ops_before = q(url, f'SELECT count(*) FROM "{schema}".operations WHERE client_id = :c', c=cid)[0][0]
        threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        moved = cli("tenants", "move", a, "--node", target, env=env)
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert node_of(url, a) == target
        print(f"citus move: {reads} reads and {writes} writes while the company moved, none refused")
        assert failures == [] and reads > 5 and writes > 2
        ops_after = q(url, f'SELECT count(*) FROM "{schema}".operations WHERE client_id = :c', c=cid)[0][0]
        assert ops_after - ops_before == writes  # every acknowledged write is there
        # and writes go on after the move, on the new node
        assert one.post(f"/api/v1/clients/{cid}/operations", json={
            "kind": "sale", "amount": "10.00", "occurred_on": "2026-11-02"}).status_code == 201
    audit = q(url, "SELECT action, details->>'target' FROM shared.platform_audit WHERE target = :s"
                   " AND action = 'tenant.moved' ORDER BY id DESC LIMIT 1", s=a)
    assert audit == [("tenant.moved", target)]


def test_migrate_refuses_what_citus_cannot_do_before_changing_anything(citus) -> None:
    url, _web, env = citus
    before = q(url, "SELECT version_num FROM shared.alembic_version")
    q(url, "ALTER DATABASE kartoteka SET citus.enable_schema_based_sharding = off")
    try:
        r = cli("migrate", env=env)
    finally:
        q(url, "ALTER DATABASE kartoteka SET citus.enable_schema_based_sharding = on")
    assert r.returncode != 0
    assert "nothing was changed" in r.stderr and "enable_schema_based_sharding is off" in r.stderr, r.stderr
    assert q(url, "SELECT version_num FROM shared.alembic_version") == before
    ok = cli("migrate", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_export_everything_restores_into_another_company(citus, two_companies) -> None:
    url, _web, _env = citus
    (a, b), owners = two_companies
    schemas = {slug: q(url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", s=slug)[0][0] for slug in (a, b)}

    def job_done(schema: str, kind: str) -> str | None:
        rows = q(url, f'SELECT status FROM "{schema}".jobs WHERE kind = :k ORDER BY id DESC LIMIT 1', k=kind)
        return rows[0][0] if rows and rows[0][0] in ("done", "failed") else None

    assert owners[0].form(f"/t/{a}/export", {"passport": "full"}).status_code == 303
    assert wait_for(lambda: job_done(schemas[a], "export"), 120, "the export") == "done"
    link = re.search(rf'href="(/t/{a}/export/jobs/\d+/[\w-]+)"', owners[0].get(f"/t/{a}/export").text)
    assert link
    zip_bytes = owners[0].get(link.group(1)).content
    r = owners[1].post(f"/t/{b}/export/restore", files={"file": ("e.zip", zip_bytes, "application/zip")},
                       data={"_csrf_token": owners[1].csrf()})
    assert r.status_code == 303, r.text
    assert wait_for(lambda: job_done(schemas[b], "restore"), 120, "the restore") == "done"

    def totals(schema: str) -> tuple:
        return q(url, f'SELECT (SELECT count(*) FROM "{schema}".clients), (SELECT count(*) FROM "{schema}".operations),'
                      f' (SELECT sum(revenue_total) FROM "{schema}".clients)')[0]

    assert totals(schemas[b]) == totals(schemas[a]) and totals(schemas[a])[0] > 600


def test_demo_and_the_platform_lifecycle_on_the_cluster(citus) -> None:
    url, _web, env = citus
    r = cli("demo", "--clients", "300", "--years", "2", "--name", "Citus Demo", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    slug = re.search(r"\((\S+)\): 300 clients", r.stdout).group(1)
    schema = q(url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", s=slug)[0][0]
    assert q(url, "SELECT count(*) FROM citus_schemas WHERE schema_name::text = :s", s=schema) == [(1,)]
    assert q(url, f'SELECT count(*) FROM "{schema}".client_scores')[0][0] == 300
    # the refresh ran its backtest on the worker and stored it (the validation page reads it)
    backtest = q(url, f"SELECT value::text FROM \"{schema}\".settings WHERE key = 'backtest'")
    assert backtest and len(backtest[0][0]) > 100
    owner = f"cli-{secrets.token_hex(3)}@example.com"
    made = cli("tenants", "create", "--name", "Citus Cli Co", "--owner-email", owner, input="cli-pass-12345\n", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    cli_schema = q(url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", s=made.stdout.strip())[0][0]
    assert q(url, "SELECT count(*) FROM citus_schemas WHERE schema_name::text = :s", s=cli_schema) == [(1,)]
    for args in (["suspend", slug, "--reason", "test"], ["resume", slug],
                 ["delete", slug, "--grace-days", "0", "--yes"], ["purge"]):
        done = cli("tenants", *args, env=env)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    assert q(url, "SELECT count(*) FROM pg_namespace WHERE nspname = :s", s=schema) == [(0,)]
    assert q(url, "SELECT count(*) FROM citus_shards s JOIN pg_class c ON c.oid = s.table_name"
                  " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s", s=schema) == [(0,)]


def test_custom_fields_saved_views_campaign_count_and_export_and_the_console(citus, two_companies) -> None:
    url, web, env = citus
    (a, _b), owners = two_companies
    owner = owners[0]
    r = owner.form(f"/t/{a}/fields", {"label_ru": "Машина", "label_en": "car", "type": "text", "in_list": "1"})
    assert r.status_code == 303, r.text
    with api(web, a, env) as one:
        made = one.post("/api/v1/clients", json={"last_name": "Полевой", "first_name": "Пётр",
                                                 "custom": {"car": "Lada"}})
        assert made.status_code == 201 and made.json()["custom"] == {"car": "Lada"}, made.text
        saved = owner.form(f"/t/{a}/views", {"name": "Полевые", "query": "q=Полевой"})
        assert saved.status_code == 303 and "view=" in saved.headers["location"]
        page = owner.get(saved.headers["location"])
        assert page.status_code == 200 and "Полевой" in page.text and "Lada" in page.text

        preview = one.post("/api/v1/campaigns/preview", json={"criteria": {}, "channel": "none"})
        assert preview.status_code == 200 and preview.json()["count"] > 600, preview.text
        cid = one.get("/api/v1/campaigns").json()[0]["id"]
        exported = one.get(f"/api/v1/campaigns/{cid}/export")
        schema = q(url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", s=a)[0][0]
        sent = q(url, f'SELECT count(*) FROM "{schema}".campaign_members WHERE campaign_id = :c AND NOT control',
                 c=cid)[0][0]
        assert exported.status_code == 200 and 80 <= sent < 100, (sent, exported.text[:300])
        assert len(exported.text.strip().splitlines()) == 1 + sent  # the header, then the list without the control

    # the platform console reads the company's usage figures across the cluster
    password = "console-pass-123"
    email = f"root-{secrets.token_hex(4)}@example.com"
    made = cli("admin", "create", "--email", email, "--name", "Root", input=password + "\n", env=env)
    assert made.returncode == 0, made.stderr
    with Browser(web) as admin:
        assert admin.form("/login", {"email": email, "password": password}).status_code == 303
        assert admin.form("/admin/login", {"password": password, "next": "/admin/tenants"}).status_code == 303
        tid = q(url, "SELECT id FROM shared.tenants WHERE slug = :s", s=a)[0][0]
        page = admin.get(f"/admin/tenants/{tid}")
        assert page.status_code == 200 and a in page.text
        clients, storage = q(url, "SELECT (stats->>'clients')::int, (stats->>'storage_bytes')::bigint"
                                  " FROM shared.tenants WHERE id = :i", i=tid)[0]
        assert clients is not None and clients > 600
        assert storage > 500_000  # the shards' size on the worker, not the coordinator's empty shells
