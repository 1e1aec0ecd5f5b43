"""The score refresh on real data: every client gets scores; little history falls back to rules."""
from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from saas.analytics import simulate
from saas.analytics.scoring import refresh
from saas.clients.operations import refresh_all_metrics
from saas.core.db import Database
from testkit import Browser

TODAY = date(2026, 6, 30)


async def schema_of(db: Database, slug: str) -> str:
    async with db.session() as s:
        return (await s.execute(text("SELECT schema_name FROM shared.tenants WHERE slug = :s"),
                                {"s": slug})).scalar_one()


async def seed(db: Database, schema: str, n: int, seed: int = 7) -> None:
    """n clients with Pareto/NBD histories (in days), some late payers and returns."""
    rng = np.random.default_rng(seed)
    T_days = rng.integers(30, 3 * 365, n).astype(float)
    x, t_x, T = simulate.pareto_nbd(n, 0.6, 40.0, 0.7, 300.0, T=T_days, seed=seed)
    async with db.session(schema) as s:
        raw = (await (await s.connection()).get_raw_connection()).driver_connection
        ids = await raw.fetch("INSERT INTO clients (last_name, first_name) SELECT 'Client', g::text "
                              "FROM generate_series(1, $1) g RETURNING id", n)
        rows = []
        for cid, xi, txi, Ti in zip((r["id"] for r in ids), x, t_x, T, strict=True):
            first = TODAY - timedelta(days=int(Ti))
            days = sorted({0, *rng.uniform(0, txi, int(xi)).astype(int).tolist(), int(txi)} if xi else {0})
            for d in days:
                when = first + timedelta(days=d)
                late = rng.random() < 0.2
                due = when + timedelta(days=14)
                paid = None if (late and rng.random() < 0.3 and due < TODAY) else (
                    due + timedelta(days=int(rng.integers(20, 60))) if late else due)
                paid = paid if paid is None or paid <= TODAY else None
                rows.append((cid, "sale", when, float(rng.gamma(4, 500) + 100), due, paid))
            if rng.random() < 0.05:
                rows.append((cid, "return", first, 50.0, None, None))
        await raw.copy_records_to_table("operations", records=rows, schema_name=schema,
                                        columns=["client_id", "kind", "occurred_on", "amount", "due_on", "paid_on"])
        await refresh_all_metrics(s)


@pytest.fixture(scope="module")
def big_tenant(base_url: str, db_url: str):
    b = Browser(base_url)
    slug = b.signup("Scored Co")

    async def go() -> str:
        db = Database(db_url, pool_size=2)
        schema = await schema_of(db, slug)
        await seed(db, schema, 1500)
        await db.dispose()
        return schema

    yield b, slug, asyncio.run(go())
    b.close()


def run_refresh(db_url: str, schema: str):
    async def go():
        db = Database(db_url, pool_size=2)
        try:
            async with db.session(schema) as s:
                result = await refresh(s, today=TODAY)
            async with db.session(schema) as s:
                counts = tuple((await s.execute(text(
                    "SELECT (SELECT count(*) FROM client_scores), (SELECT count(*) FROM clients)"))).one())
                statuses = dict((await s.execute(text(
                    "SELECT status, count(*) FROM client_scores GROUP BY status"))).all())
            return result, counts, statuses
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_refresh_scores_every_client_with_the_model(big_tenant, db_url) -> None:
    _b, _slug, schema = big_tenant
    result, counts, statuses = run_refresh(db_url, schema)
    assert result.method == "pareto-nbd"
    assert counts == (1500, 1500)
    # a real base has every status in non-trivial shares
    for status in ("active", "at_risk", "lost"):
        assert statuses.get(status, 0) > 15, statuses
    pareto = next(f for f in result.fits if f.model == "pareto-nbd")
    assert pareto.converged and all(v > 0 for v in pareto.params.values())


def test_dashboard_shows_the_charts_and_the_method(big_tenant, db_url) -> None:
    b, slug, schema = big_tenant
    run_refresh(db_url, schema)
    page = b.get(f"/t/{slug}/", headers={"Accept-Language": "en"}).text
    assert "Pareto/NBD model fitted to your" in page
    assert page.count('<svg class="chart"') >= 5
    assert "Average annual growth (CAGR)" in page


def test_card_and_list_show_scores(big_tenant, db_url) -> None:
    b, slug, schema = big_tenant
    run_refresh(db_url, schema)
    lost = b.get(f"/t/{slug}/clients?status=lost", headers={"Accept-Language": "en"}).text
    assert 'status-lost' in lost and 'status-active' not in lost
    import re

    first_id = int(re.search(r'href="/t/[^/]+/clients/(\d+)" class="client-name"', lost).group(1))
    card = b.get(f"/t/{slug}/clients/{first_id}", headers={"Accept-Language": "en"}).text
    assert "P(alive)" in card and "CLV, 12 months" in card and "/100" in card


def test_little_history_falls_back_to_rules_and_says_so(http: Browser, db_url) -> None:
    slug = http.signup("Tiny Co")

    async def go():
        db = Database(db_url, pool_size=2)
        schema = await schema_of(db, slug)
        await seed(db, schema, 30, seed=3)
        await db.dispose()
        return schema

    schema = asyncio.run(go())
    result, counts, _statuses = run_refresh(db_url, schema)
    assert result.method == "rules"
    assert counts == (30, 30)
    page = http.get(f"/t/{slug}/", headers={"Accept-Language": "en"}).text
    assert "too few for a reliable statistical model" in page and "rule-based" in page


def test_refresh_button_runs_the_job_with_progress(big_tenant, worker) -> None:
    b, slug, _schema = big_tenant
    r = b.form(f"/t/{slug}/analytics/refresh", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<progress" in r.text
    job_id = r.text.split("/analytics/refresh/")[1].split('"')[0]
    deadline = time.monotonic() + 90
    while True:
        r = b.get(f"/t/{slug}/analytics/refresh/{job_id}", headers={"HX-Request": "true"})
        if r.headers.get("HX-Refresh") == "true":
            break
        assert "failed" not in r.text
        assert time.monotonic() < deadline, "the refresh did not finish"
        time.sleep(0.5)


def test_nightly_refresh_is_scheduled_once(worker) -> None:
    from saas.analytics.jobs import ensure_nightly
    from saas.config import get_settings
    from saas.jobs import get_queue

    ensure_nightly()
    ensure_nightly()  # a second worker starting does not schedule it twice
    queue = get_queue(get_settings())
    ids = [j for j in queue.scheduled_job_registry.get_job_ids() if "-nightly-" in j]
    assert len(ids) == 1
    job = queue.fetch_job(ids[0])
    assert job.func_name == "saas.analytics.jobs.nightly_and_reschedule"


def test_company_sets_thresholds_and_weights(http: Browser, db_url) -> None:
    slug = http.signup("Thresholds Co")
    form = {"active_p": "0.7", "lost_p": "0.2", "horizon_days": "60", "new_days": "45", "min_repeat_buyers": "80",
            "w_late": "50", "w_days_late": "10", "w_overdue": "20", "w_age": "10", "w_returns": "5",
            "w_irregular": "5", "band_reliable": "85", "band_watch": "55"}
    bad = http.form(f"/t/{slug}/analytics/settings", {**form, "lost_p": "0.9"}, headers={"Accept-Language": "en"})
    assert bad.status_code == 422 and "must be below" in bad.text
    assert http.form(f"/t/{slug}/analytics/settings", form).status_code == 303

    async def go() -> dict:
        from saas.analytics import settings as analytics_settings

        db = Database(db_url, pool_size=1)
        async with db.session(await schema_of(db, slug)) as s:
            cfg = await analytics_settings.load(s)
        await db.dispose()
        return cfg

    cfg = asyncio.run(go())
    assert (cfg["active_p"], cfg["lost_p"], cfg["horizon_days"], cfg["min_repeat_buyers"]) == (0.7, 0.2, 60, 80)
    assert cfg["weights"]["late"] == 50 and cfg["bands"]["reliable"] == 85
