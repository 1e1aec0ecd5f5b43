"""Tenant isolation: every tenant route and API endpoint, fetched as another tenant, answers 404/403.

The route table is walked, so a route added later is covered without editing this file; a path
parameter this file does not know fails the test, so its ids get filled with the other tenant's
real objects.
"""
from __future__ import annotations

import asyncio
import re
import secrets

import pytest
from litestar.routes import HTTPRoute
from sqlalchemy import text

from testkit import Browser, cli
from saas.core.db import Database

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
ATTEMPTS = {"session": 0, "token": 0}  # requests made as the other tenant; reported at the end


def tenant_routes(prefix: str) -> list[tuple[str, str]]:
    from saas.app import create_app

    app = create_app()
    out = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith(prefix):
            for handler in route.route_handlers:
                out += [(m, route.path) for m in sorted(handler.http_methods) if m not in ("HEAD", "OPTIONS")]
    return out


def foreign_ids(slug: str, objects: dict[str, int]) -> dict[str, str]:
    """Ids of real objects that belong to tenant A."""
    ids = {"slug": slug, "kind": "product_groups", "name": "email", "key": "not-the-key"}
    ids.update({k: str(v) for k, v in objects.items()})
    return {k: str(v) for k, v in ids.items()}


def make_objects(a: Browser, slug: str, token: str) -> dict[str, int]:
    """A client with an operation, a dictionary item and an import, all in tenant A."""
    import httpx

    api = httpx.Client(base_url=str(a.base_url), headers={"Authorization": f"Bearer {token}"})
    a.form(f"/t/{slug}/dictionaries/product_groups", {"name": "Furniture"})
    client = api.post("/api/v1/clients", json={"last_name": "Secret", "first_name": "Person",
                                                "product_groups": ["Furniture"]}).json()
    op = api.post(f"/api/v1/clients/{client['id']}/operations",
                  json={"kind": "sale", "occurred_on": "2024-01-02", "amount": "100.00"}).json()
    r = a.post(f"/t/{slug}/imports", data={"kind": "clients", "_csrf_token": a.csrf()},
               files={"file": ("c.csv", "ФИО;Телефон\nИванов Иван;+79161234567\n".encode())})
    import_id = int(r.headers["location"].rsplit("/", 1)[1])
    item_id = api.get(f"/api/v1/clients/{client['id']}").json()
    assert item_id["product_groups"] == ["Furniture"]
    campaign = api.post("/api/v1/campaigns", json={"name": "Secret campaign"}).json()
    a.form(f"/t/{slug}/fields", {"label_ru": "Модель", "label_en": "Model", "type": "text"})
    a.form(f"/t/{slug}/views", {"name": "Mine", "query": "q=x"})
    r = a.form(f"/t/{slug}/analytics/refresh", headers={"HX-Request": "true"})
    job_id = int(r.text.split("/analytics/refresh/")[1].split('"')[0])
    a.form(f"/t/{slug}/team/invite", {"email": "pending-a@example.com", "role": "viewer"})
    team = a.get(f"/t/{slug}/team").text
    member_id = int(re.search(r"/team/members/(\d+)/role", team).group(1))
    invitation_id = int(re.search(r"/team/invitations/(\d+)/revoke", team).group(1))
    token_id = api.get("/api/v1/tokens").json()[0]["id"]
    a.form(f"/t/{slug}/export")
    export_job_id = int(re.search(r"/export/jobs/(\d+)", a.get(f"/t/{slug}/export").text).group(1))
    return {"client_id": client["id"], "operation_id": op["id"], "import_id": import_id, "item_id": 1,
            "campaign_id": campaign["id"], "job_id": job_id, "member_id": member_id,
            "invitation_id": invitation_id, "token_id": token_id, "field_id": 1, "view_id": 1,
            "export_job_id": export_job_id}


def fill(path: str, ids: dict[str, str]) -> str:
    if "/export/jobs/" in path:  # the company export's jobs are their own kind
        ids = {**ids, "job_id": ids["export_job_id"]}

    def sub(m: re.Match) -> str:
        assert m.group(1) in ids, f"unknown path parameter {m.group(1)} in {path}: add it to foreign_ids"
        return ids[m.group(1)]

    return PARAM.sub(sub, path)


@pytest.fixture(scope="module")
def two_tenants(base_url: str):
    a, b = Browser(base_url), Browser(base_url)
    slug_a, slug_b = a.signup("Tenant A"), b.signup("Tenant B")
    token_a = cli("tokens", "create", "--tenant", slug_a, "--role", "owner", "--name", "a").stdout.strip()
    objects = make_objects(a, slug_a, token_a)
    yield (a, slug_a, objects), (b, slug_b)
    a.close()
    b.close()


def test_every_tenant_route_answers_404_to_another_tenants_session(two_tenants) -> None:
    (a, slug_a, objects), (b, _slug_b) = two_tenants
    routes = tenant_routes("/t/")
    assert len(routes) >= 3
    leaks = []
    for method, path in routes:
        url = fill(path, foreign_ids(slug_a, objects))
        if method == "GET" and "{key" not in path:  # the owner reaches it: B's 404 is isolation, not a bad id
            # (a download key is secret: a wrong one is a 404 to the owner too)
            assert a.get(url).status_code != 404, (path, a.get(url).status_code)
        r = b.request(method, url, data={"_csrf_token": b.csrf()} if method != "GET" else None)
        ATTEMPTS["session"] += 1
        if r.status_code != 404:
            leaks.append((method, path, r.status_code))
    assert leaks == []
    assert ATTEMPTS["session"] >= 70  # 73 tenant routes (method, path) when this was written


def test_every_api_route_is_scoped_to_the_tokens_tenant(two_tenants) -> None:
    (_a, slug_a, objects), (_b, slug_b) = two_tenants
    token_b = cli("tokens", "create", "--tenant", slug_b, "--role", "owner", "--name", "iso").stdout.strip()
    import httpx

    from testkit import PORT

    api = httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"Authorization": f"Bearer {token_b}"})
    me = api.get("/api/v1/me").json()
    assert me["tenant"] == slug_b
    leaks = []
    for method, path in tenant_routes("/api/v1/"):
        if "{" not in path:
            continue
        r = api.request(method, fill(path, foreign_ids(slug_a, objects)), json={})
        ATTEMPTS["token"] += 1
        if r.status_code != 404:
            leaks.append((method, path, r.status_code))
    assert leaks == []
    assert ATTEMPTS["token"] >= 12  # 13 API routes with an id when this was written


def test_report_the_isolation_attempts(capsys: pytest.CaptureFixture) -> None:
    with capsys.disabled():
        print(f"\nisolation: {ATTEMPTS['session']} attempts through the session, {ATTEMPTS['token']} through "
              f"the token, 0 leaks")
    assert ATTEMPTS["session"] > 0 and ATTEMPTS["token"] > 0


def test_200_concurrent_requests_through_a_small_pool_see_no_foreign_rows(db_url: str, two_tenants) -> None:
    (_a, slug_a, _objects), (_b, slug_b) = two_tenants

    async def go() -> tuple[int, int]:
        db = Database(db_url, pool_size=3, max_overflow=0)
        async with db.session() as s:
            schemas = dict((await s.execute(text(
                "SELECT slug, schema_name FROM shared.tenants WHERE slug IN (:a, :b)"),
                {"a": slug_a, "b": slug_b})).all())
        for slug, schema in schemas.items():
            async with db.session(schema) as s:
                for _ in range(5):
                    await s.execute(text("INSERT INTO audit_events (actor, action) VALUES (:a, 'marker')"),
                                    {"a": slug})
        foreign = total = 0

        async def one(i: int) -> None:
            nonlocal foreign, total
            slug = slug_a if i % 2 else slug_b
            async with db.session(schemas[slug]) as s:
                await asyncio.sleep(secrets.randbelow(3) / 1000)
                actors = (await s.execute(text("SELECT actor FROM audit_events WHERE action = 'marker'"))).scalars()
                for actor in actors:
                    total += 1
                    foreign += actor != slug

        await asyncio.gather(*(one(i) for i in range(240)))
        await db.dispose()
        return foreign, total

    foreign, total = asyncio.run(go())
    assert total == 240 * 5
    assert foreign == 0


def test_unbound_session_sees_no_tenant_table(db_url: str) -> None:
    async def go() -> str:
        db = Database(db_url, pool_size=1)
        try:
            async with db.session() as s:
                await s.execute(text("SELECT count(*) FROM audit_events"))
        except Exception as exc:  # noqa: BLE001 - the assertion reads the message, whatever its type
            return str(exc)
        finally:
            await db.dispose()
        return ""

    assert "does not exist" in asyncio.run(go())


def test_200_concurrent_api_requests_alternating_two_tenants_see_no_foreign_rows(two_tenants, base_url) -> None:
    """Through the live server (its pool is 10 connections): each answer holds only its own clients."""
    (_a, slug_a, _objects), (_b, slug_b) = two_tenants
    tokens = {s: cli("tokens", "create", "--tenant", s, "--role", "owner", "--name", "load").stdout.strip()
              for s in (slug_a, slug_b)}
    import httpx

    for slug, token in tokens.items():
        for i in range(3):
            httpx.post(f"{base_url}/api/v1/clients", headers={"Authorization": f"Bearer {token}"},
                       json={"last_name": f"Marker-{slug}", "first_name": str(i)})

    async def go() -> tuple[int, int]:
        foreign = seen = 0
        async with httpx.AsyncClient(base_url=base_url, timeout=60,
                                     limits=httpx.Limits(max_connections=100)) as client:
            async def one(i: int) -> None:
                nonlocal foreign, seen
                slug = slug_a if i % 2 else slug_b
                r = await client.get("/api/v1/clients", params={"q": "Marker", "limit": 50},
                                     headers={"Authorization": f"Bearer {tokens[slug]}"})
                assert r.status_code == 200
                for item in r.json()["items"]:
                    seen += 1
                    foreign += item["last_name"] != f"Marker-{slug}"

            await asyncio.gather(*(one(i) for i in range(200)))
        return foreign, seen

    foreign, seen = asyncio.run(go())
    assert seen == 200 * 3 and foreign == 0


def test_the_switcher_lists_the_users_companies_on_every_workspace_page(base_url: str, db_url: str) -> None:
    """The top bar's switcher lists the user's companies on every workspace page (read with the
    membership check, one query), and nobody else's."""
    from testkit import sql

    names = [f"Switch {secrets.token_hex(3)}" for _ in range(3)]
    owner, other, stranger = Browser(base_url), Browser(base_url), Browser(base_url)
    mine, theirs, _strangers = owner.signup(names[0]), other.signup(names[1]), stranger.signup(names[2])
    sql(db_url, """INSERT INTO shared.memberships (user_id, tenant_id, role)
                   SELECT u.id, t.id, 'viewer' FROM shared.users u, shared.tenants t
                   WHERE u.email = :e AND t.slug = :s""", {"e": owner.email, "s": theirs})
    for path in (f"/t/{mine}/clients", f"/t/{mine}/campaigns", f"/t/{theirs}/", f"/t/{theirs}/clients"):
        page = owner.get(path)
        assert page.status_code == 200, path
        switcher = page.text.split('<details class="switcher">', 1)[1].split("</details>", 1)[0]
        assert names[0] in switcher and names[1] in switcher and names[2] not in switcher, path
    for b in (owner, other, stranger):
        b.close()
