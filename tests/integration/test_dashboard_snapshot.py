"""The dashboard from a snapshot (issue 17): the refresh stores every figure the page shows; the
page reads them with one statement and shows the same figures the live computation gave; a live
write marks the snapshot stale (the page says so) and the queued recount brings it level again."""
from __future__ import annotations


import math

import pytest
from rq.registry import ScheduledJobRegistry

import testkit
from saas.analytics import dashboard, queries, validation
from saas.analytics import settings as analytics_settings
from saas.analytics.jobs import resnapshot_dashboard
from saas.analytics.scoring import refresh
from saas.core import clock
from saas.core.db import Database
from saas.core.jobs import get_queue
from saas.demo import create_demo
from testkit import Browser, cli, statements_sent, with_database


@pytest.fixture(scope="module")
def demo(db_url: str, base_url: str):
    result = with_database(db_url, lambda db: create_demo(db, clients=1200, years=2, seed=17, name="Snapshot Demo"))
    schema = testkit.sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": result.slug})[0][0]
    b = Browser(base_url)
    assert b.form("/login", {"email": result.owner_email, "password": result.password}).status_code == 303
    yield result.slug, schema, b
    b.close()


async def both(db: Database, schema: str) -> tuple[dict, dict]:
    async with db.session(schema) as s:
        snap = await dashboard.read_snapshot(s)
        live = await queries.dashboard(s)
        live["top_risk"] = await queries.top_risk(s)
        cfg = await analytics_settings.load(s)
        for data in (snap, live):  # the sentences the page builds from the stored fit and backtest
            data["sentence"] = validation.method_sentence(data["scoring"], data["backtest"], cfg)
            data["lines"] = validation.status_lines(data["backtest"])
    return snap, live


def assert_same_figures(snap: dict, live: dict) -> None:
    assert snap is not None
    assert snap["status"] == live["status"] and snap["risk"] == live["risk"]
    assert snap["clients"] == live["clients"] > 1000
    assert snap["segments"].keys() == live["segments"].keys()
    for key, (count, revenue) in live["segments"].items():
        assert snap["segments"][key][0] == count and math.isclose(snap["segments"][key][1], revenue, abs_tol=0.01)
    assert math.isclose(snap["clv_total"], live["clv_total"], abs_tol=0.01)
    assert [(c.id, c.last_name, c.first_name, s.risk_score, s.risk_group, s.risk_factors)
            for c, s in snap["top_risk"]] == \
           [(c.id, c.last_name, c.first_name, s.risk_score, s.risk_group, s.risk_factors)
            for c, s in live["top_risk"]]
    assert len(snap["top_risk"]) == 10  # a demo company has a risk group to show
    assert snap["sentence"] == live["sentence"] and snap["sentence"]
    assert snap["lines"] == live["lines"] and snap["lines"]
    for key in ("years", "months", "ytd", "summary", "cohorts", "history_start"):
        assert snap["cache"][key] == live["cache"][key]


async def refresh_now(db: Database, schema: str) -> None:
    async with db.session(schema) as s:
        await refresh(s)


def test_the_snapshot_holds_the_figures_the_live_computation_gives(demo, db_url) -> None:
    _slug, schema, _b = demo
    # The demo records its campaigns' results after its refresh: live scoring moved some clients
    # since, and the snapshot says so.
    snap, live = with_database(db_url, lambda db: both(db, schema))
    assert snap["stale_since"] is not None and snap["status"] != live["status"]

    with_database(db_url, lambda db: refresh_now(db, schema))
    snap, live = with_database(db_url, lambda db: both(db, schema))
    assert_same_figures(snap, live)
    assert snap["stale_since"] is None and snap["as_of"] is not None


def test_the_page_reads_its_figures_with_one_statement(demo, live_server) -> None:
    slug, schema, b = demo
    with statements_sent(live_server.server.config.app.state.db.engine.sync_engine) as sent:
        page = b.get(f"/t/{slug}/", headers={"Accept-Language": "en"})
    seen = [s for s, _auto in sent]
    assert page.status_code == 200
    figures = [s for s in seen if "'dashboard'" in s]
    assert len(figures) == 1, figures
    heavy = [s for s in seen if any(t in s for t in ("client_scores", "operations", "model_fits", "count("))]
    assert heavy == [], heavy  # nothing recounted per view
    # (the demo's owner reads Russian)
    assert "Данные на" in page.text and 'class="snapshot-stale"' not in page.text
    assert page.text.count('<svg class="chart"') >= 5 and 'class="plain risk-list"' in page.text


def test_a_live_write_marks_the_snapshot_stale_until_the_recount(demo, db_url, base_url) -> None:
    slug, schema, b = demo
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "snap").stdout.strip()
    client_id = testkit.sql(db_url, f'SELECT id FROM "{schema}".clients ORDER BY id LIMIT 1')[0][0]
    before, _live = with_database(db_url, lambda db: both(db, schema))

    import httpx

    today = clock.today().isoformat()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        r = api.post(f"/api/v1/clients/{client_id}/operations", json={"kind": "sale", "amount": "987654.00",
                                                                       "occurred_on": today})
        assert r.status_code == 201, r.text
        r = api.post(f"/api/v1/clients/{client_id}/operations", json={"kind": "sale", "amount": "1.00",
                                                                       "occurred_on": today})
        assert r.status_code == 201, r.text

    stale, live = with_database(db_url, lambda db: both(db, schema))
    assert stale["stale_since"] is not None
    assert stale["segments"] == before["segments"]  # the snapshot is as of the refresh ...
    assert stale["segments"] != live["segments"]  # ... and the page says it is behind:
    page = b.get(f"/t/{slug}/", headers={"Accept-Language": "en"}).text
    assert 'class="snapshot-stale"' in page and "цифры будут пересчитаны" in page
    # the recount was queued once for both writes, to run after the debounce delay
    queue = get_queue()
    job_id = f"{testkit.PREFIX}-{schema}-dashboard"
    assert job_id in ScheduledJobRegistry(queue=queue).get_job_ids()

    assert resnapshot_dashboard(schema)  # what the worker runs when the delay is over
    after, live = with_database(db_url, lambda db: both(db, schema))
    assert after["stale_since"] is None
    assert_same_figures(after, live)
    assert 'class="snapshot-stale"' not in b.get(f"/t/{slug}/").text
    queue.connection.delete(f"rq:job:{job_id}")
    ScheduledJobRegistry(queue=queue).remove(job_id)


def test_before_any_refresh_the_page_counts_live(http, db_url) -> None:
    slug = http.signup("Not Scored Yet Co")
    page = http.get(f"/t/{slug}/", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Your workspace is ready" in page.text
    assert "Figures as of" not in page.text

