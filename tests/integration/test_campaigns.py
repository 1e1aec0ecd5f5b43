"""Campaigns: the built list equals an independent recomputation; consent, control, export, results."""
from __future__ import annotations

import asyncio
import re
import csv
import io

import httpx
import pytest
from sqlalchemy import text

from saas.analytics.scoring import refresh
from saas.core.db import Database
from testkit import Browser, cli
from tests.integration.processes import wait_for
from tests.integration.test_scoring import schema_of, seed


@pytest.fixture(scope="module")
def tenant(base_url: str, db_url: str, worker):
    b = Browser(base_url)
    slug = b.signup("Campaign Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "c").stdout.strip()

    async def go() -> str:
        db = Database(db_url, pool_size=2)
        schema = await schema_of(db, slug)
        await seed(db, schema, 800, seed=11)
        async with db.session(schema) as s:
            await s.execute(text("""UPDATE clients SET
                consent = CASE WHEN id % 3 = 0 THEN '{}'::jsonb
                               ELSE '{"email": {"at": "2024-01-01", "source": "test"}}'::jsonb END,
                email = 'c' || id || '@example.com', phone = '+7916' || lpad(id::text, 7, '0'),
                tags = CASE WHEN id % 17 = 0 THEN ARRAY['stop-list'] ELSE ARRAY[]::text[] END"""))
        async with db.session(schema) as s:
            await refresh(s)
        await db.dispose()
        return schema

    schema = asyncio.run(go())
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield b, slug, api, schema
    api.close()
    b.close()


def sql(db_url: str, schema: str, query: str, **params):
    async def go():
        db = Database(db_url, pool_size=1)
        try:
            async with db.session(schema) as s:
                result = await s.execute(text(query), params)
                return result.all() if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(go())


def build_and_wait(api: httpx.Client, cid: int) -> dict:
    r = api.post(f"/api/v1/campaigns/{cid}/build")
    assert r.status_code == 202, r.text

    def built() -> dict | None:
        body = api.get(f"/api/v1/campaigns/{cid}").json()
        return body if body["status"] in ("ready", "failed") else None

    return wait_for(built, 60, f"campaign {cid} to build", every=0.3)


CRITERIA = {"any": [{"status": ["active", "at_risk"], "revenue_min": 500}, {"deals_min": 5}]}


def test_members_match_an_independent_recomputation(tenant, db_url) -> None:
    _b, _slug, api, schema = tenant
    r = api.post("/api/v1/campaigns", json={"name": "Spring", "channel": "email", "criteria": CRITERIA,
                                            "ranking": "clv", "size": 120, "control_share": 0.1})
    assert r.status_code == 201, r.text
    body = build_and_wait(api, r.json()["id"])
    assert body["status"] == "ready" and body["members"] == 120
    members = api.get(f"/api/v1/campaigns/{body['id']}/members", params={"limit": 1000}).json()
    expected = [row[0] for row in sql(db_url, schema, """
        SELECT c.id FROM clients c LEFT JOIN client_scores s ON s.client_id = c.id
        WHERE ((s.status IN ('active', 'at_risk') AND c.revenue_total >= 500) OR c.operations_count >= 5)
          AND c.consent ? 'email' AND c.email IS NOT NULL AND c.archived_at IS NULL AND c.erased_at IS NULL
          AND NOT ('stop-list' = ANY(c.tags))
        ORDER BY coalesce(s.clv, 0) DESC, c.id LIMIT 120""")]
    assert [m["client_id"] for m in members] == expected
    assert [m["rank"] for m in members] == list(range(1, 121))
    assert body["excluded"]["no_consent"] > 0 and body["excluded"]["excluded"] > 0


def test_no_member_lacks_consent_and_control_is_stable(tenant, db_url) -> None:
    _b, _slug, api, schema = tenant
    cid = api.post("/api/v1/campaigns", json={"name": "Everyone", "channel": "email", "criteria": {},
                                              "control_share": 0.1}).json()["id"]
    first = build_and_wait(api, cid)
    assert first["members"] > 400
    without_consent = sql(db_url, schema, """SELECT count(*) FROM campaign_members m
                                             JOIN clients c ON c.id = m.client_id
                                             WHERE m.campaign_id = :cid AND NOT c.consent ? 'email'""", cid=cid)
    assert without_consent == [(0,)]
    share = first["control"] / first["members"]
    assert abs(share - 0.1) <= 0.02, share
    control_before = sql(db_url, schema, "SELECT client_id FROM campaign_members WHERE campaign_id = :cid AND control "
                                         "ORDER BY client_id", cid=cid)
    build_and_wait(api, cid)
    assert sql(db_url, schema, "SELECT client_id FROM campaign_members WHERE campaign_id = :cid AND control "
                               "ORDER BY client_id", cid=cid) == control_before


def test_preview_counts_match_the_build(tenant) -> None:
    _b, _slug, api, _schema = tenant
    preview = api.post("/api/v1/campaigns/preview", json={"criteria": CRITERIA, "channel": "sms"}).json()
    cid = api.post("/api/v1/campaigns", json={"name": "SMS", "channel": "sms", "criteria": CRITERIA}).json()["id"]
    built = build_and_wait(api, cid)
    assert preview["count"] == built["members"]
    assert preview["excluded"] == built["excluded"]


@pytest.mark.parametrize("criteria, field", [
    ({"any": [{"revenue_min": 500, "revenue_max": 100}]}, "any.0.revenue_min"),
    ({"any": [{"segments": ["no-such-segment"]}]}, "any.0.segments"),
    ({"any": [{"last_op_from": "2025-05-01", "last_op_to": "2024-01-01"}]}, "any.0.last_op_from"),
    ({"any": [{"p_alive_min": 2}]}, "any.0.p_alive_min"),
])
def test_impossible_criteria_are_refused_on_the_field(tenant, criteria, field) -> None:
    _b, _slug, api, _schema = tenant
    r = api.post("/api/v1/campaigns", json={"name": "Bad", "criteria": criteria})
    assert r.status_code == 422 and field in r.json()["fields"], r.text
    assert api.post("/api/v1/campaigns/preview", json={"criteria": criteria}).status_code == 422


def test_export_leaves_the_control_group_out(tenant, db_url) -> None:
    b, slug, api, schema = tenant
    cid = api.post("/api/v1/campaigns", json={"name": "Export", "channel": "none", "criteria": {},
                                              "size": 200, "control_share": 0.2}).json()["id"]
    built = build_and_wait(api, cid)
    assert built["members"] == 200
    r = b.get(f"/t/{slug}/campaigns/{cid}/export?format=csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) - 1 == built["members"] - built["control"]
    phones = {row[4] for row in rows[1:]}
    control = {p for (p,) in sql(db_url, schema, """SELECT c.phone FROM campaign_members m JOIN clients c ON
                                                    c.id = m.client_id WHERE m.campaign_id = :cid AND m.control""",
                                 cid=cid)}
    assert control and not control & phones and phones  # phones as they are, no apostrophe


def test_results_report_uplift_with_an_interval(tenant, db_url) -> None:
    b, slug, api, schema = tenant
    cid = api.post("/api/v1/campaigns", json={"name": "Results", "channel": "email", "criteria": {},
                                              "control_share": 0.3}).json()["id"]
    build_and_wait(api, cid)
    assert b.form(f"/t/{slug}/campaigns/{cid}/launch").status_code == 303
    sql(db_url, schema, "UPDATE campaigns SET launched_at = now() - interval '20 days' WHERE id = :cid", cid=cid)
    # half of the target buys after the launch, a tenth of the control does
    sql(db_url, schema, """INSERT INTO operations (client_id, kind, occurred_on, amount)
        SELECT client_id, 'sale', current_date - 5, 1000 FROM campaign_members
        WHERE campaign_id = :cid AND ((NOT control AND rank % 2 = 0) OR (control AND rank % 10 = 0))
        RETURNING 1""", cid=cid)
    page = b.get(f"/t/{slug}/campaigns/{cid}", headers={"Accept-Language": "en"}).text
    assert "Uplift of the response rate" in page and "95% interval" in page
    assert "The campaign worked" in page


def test_builder_page_live_count(tenant) -> None:
    b, slug, _api, _schema = tenant
    r = b.post(f"/t/{slug}/campaigns/preview", data={"_csrf_token": b.csrf(), "channel": "email", "groups": "1",
                                                     "g0_status": "active", "ranking": "clv"},
               headers={"HX-Request": "true", "Accept-Language": "en"})
    assert r.status_code == 200 and 'data-count="eligible"' in r.text and "clients match" in r.text
    assert f'hx-post="/t/{slug}/campaigns/sample"' in r.text  # the best ones come in a second request


def test_builder_sample_is_the_top_of_the_list(tenant) -> None:
    b, slug, api, _schema = tenant
    form = {"_csrf_token": b.csrf(), "channel": "email", "groups": "1", "ranking": "clv", "control_share": "0",
            "exclude_tag": "stop-list"}
    r = b.post(f"/t/{slug}/campaigns/sample", data=form, headers={"HX-Request": "true", "Accept-Language": "en"})
    shown = [int(i) for i in re.findall(rf'href="/t/{slug}/clients/(\d+)"', r.text)]
    cid = api.post("/api/v1/campaigns", json={"name": "Top", "channel": "email", "criteria": {},
                                              "ranking": "clv", "control_share": 0}).json()["id"]
    api.post(f"/api/v1/campaigns/{cid}/build")
    wait_for(lambda: api.get(f"/api/v1/campaigns/{cid}").json()["status"] == "ready", 60, "the campaign to build")
    top = [m["client_id"] for m in api.get(f"/api/v1/campaigns/{cid}/members", params={"limit": 10}).json()]
    assert len(shown) == 10 and shown == top
    r = b.post(f"/t/{slug}/campaigns/preview", data={"_csrf_token": b.csrf(), "channel": "email", "groups": "1",
                                                     "g0_revenue_min": "10", "g0_revenue_max": "1"},
               headers={"HX-Request": "true", "Accept-Language": "en"})
    assert "The minimum is above the maximum." in r.text


def test_the_live_count_plans_for_its_values_without_jit_in_its_own_transaction(tenant, db_url) -> None:
    """The live count sets custom plans and no JIT (in one round trip) for its own transaction only."""
    from saas.campaigns import service
    from saas.campaigns.models import Campaign

    _b, _slug, api, schema = tenant
    r = api.post("/api/v1/campaigns", json={"name": "Plans", "channel": "email", "criteria": CRITERIA,
                                            "ranking": "clv"})
    assert r.status_code == 201, r.text
    show = text("SELECT current_setting('plan_cache_mode'), current_setting('jit')")

    async def go():
        db = Database(db_url, pool_size=1)
        try:
            async with db.session(schema) as s:
                before = tuple((await s.execute(show)).one())
            async with db.session(schema) as s:
                counted = await service.preview(s, await s.get(Campaign, r.json()["id"]))
                inside = tuple((await s.execute(show)).one())
            async with db.session(schema) as s:
                after = tuple((await s.execute(show)).one())
            return before, counted, inside, after
        finally:
            await db.dispose()

    before, counted, inside, after = asyncio.run(go())
    assert inside == ("force_custom_plan", "off")
    assert before[0] == "auto" and after == before
    assert counted.matched > 0
