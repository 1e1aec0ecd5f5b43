"""The score refresh on real data: every client gets scores; little history falls back to rules."""
from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from saas.analytics import selection, simulate
from saas.analytics.scoring import refresh
from saas.clients.operations import refresh_all_metrics
from saas.core.db import Database
from testkit import Browser
from tests.integration.processes import wait_for

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
    assert result.method in selection.PURCHASE_MODELS  # chosen on the backtest
    assert counts == (1500, 1500)
    # a real base has every status in non-trivial shares
    for status in ("active", "at_risk", "lost"):
        assert statuses.get(status, 0) > 15, statuses
    chosen = [f for f in result.fits if f.model == result.method and f.usable and f.extra.get("choice")]
    assert chosen and chosen[-1].converged and all(v > 0 for v in chosen[-1].params.values())
    # the backtest ordered the statuses on the held-out weeks
    shares = result.backtest["status"]
    assert shares["active"]["bought_again"] > shares["at_risk"]["bought_again"] > shares["lost"]["bought_again"]


def test_dashboard_shows_the_charts_and_the_method(big_tenant, db_url) -> None:
    b, slug, schema = big_tenant
    run_refresh(db_url, schema)
    page = b.get(f"/t/{slug}/", headers={"Accept-Language": "en"}).text
    assert "model fitted to the purchase history of your" in page and "It was chosen because" in page
    assert page.count('<svg class="chart"') >= 5
    assert "Average annual growth (CAGR)" in page
    # what each status has meant, in numbers, and the way to the evidence
    assert re.search(r"Of the [\d,]+ clients marked “at risk” on .{6,14}, \d+% bought again within 13 weeks", page)
    assert f'href="/t/{slug}/analytics/validation"' in page
    assert "Client value, next 12 months (CLV)" in page and "discounted at 10% a year" in page


@pytest.mark.parametrize("lang, words", [("en", ("How good are these answers", "Predicted and actual purchases",
                                                  "What each status has meant", "The models compared", "CLV =")),
                                          ("ru", ("Насколько можно доверять этим ответам",
                                                  "Прогноз и факт покупок", "Что значили статусы",
                                                  "Сравнение моделей", "CLV ="))])
def test_validation_page_shows_the_evidence(big_tenant, db_url, lang: str, words: tuple[str, ...]) -> None:
    b, slug, schema = big_tenant
    run_refresh(db_url, schema)
    b.form("/lang", {"lang": lang})  # the session's language (the user's choice) wins over the header
    try:
        r = b.get(f"/t/{slug}/analytics/validation")
    finally:
        b.form("/lang", {"lang": "en"})
    assert r.status_code == 200
    page = r.text
    for word in words:
        assert word in page, word
    assert page.count('<svg class="chart"') == 1 and page.count("<rect") >= 8 * 2  # 0..7+: actual and predicted
    for name in ("Pareto/NBD", "BG/NBD", "MBG/NBD"):
        assert name in page
    assert "±" in page  # parameters with standard errors


def test_card_and_list_show_scores(big_tenant, db_url) -> None:
    b, slug, schema = big_tenant
    run_refresh(db_url, schema)
    lost = b.get(f"/t/{slug}/clients?status=lost", headers={"Accept-Language": "en"}).text
    assert 'status-lost' in lost and 'status-active' not in lost
    import re

    first_id = int(re.search(r'href="/t/[^/]+/clients/(\d+)" class="client-name"', lost).group(1))
    card = b.get(f"/t/{slug}/clients/{first_id}", headers={"Accept-Language": "en"}).text
    assert "P(alive)" in card and "CLV, discounted" in card
    assert "/100" in card or "not enough history" in card  # a score, or too few deferred payments to give one


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

    def refreshed() -> bool:
        r = b.get(f"/t/{slug}/analytics/refresh/{job_id}", headers={"HX-Request": "true"})
        if r.headers.get("HX-Refresh") == "true":
            return True
        assert "failed" not in r.text
        return False

    wait_for(refreshed, 90, "the refresh to finish", every=0.5)


def test_nightly_refresh_is_scheduled_once(worker) -> None:
    from saas.core.config import get_settings
    from saas.core.jobs import ensure_scheduled, get_queue

    ensure_scheduled(get_settings(), "nightly")
    ensure_scheduled(get_settings(), "nightly")  # a second worker starting does not schedule it twice
    queue = get_queue(get_settings())
    ids = [j for j in queue.scheduled_job_registry.get_job_ids() if "-nightly-" in j]
    assert len(ids) == 1
    job = queue.fetch_job(ids[0])
    assert job.func_name == "saas.core.jobs.run_periodic" and job.args == ("nightly",)


def test_company_sets_thresholds_and_weights(http: Browser, db_url) -> None:
    slug = http.signup("Thresholds Co")
    form = {"status_active_share": "60", "status_lost_share": "15", "holdout_weeks": "26", "discount_rate": "12",
            "margin": "40", "clv_months": "24", "horizon_days": "60", "new_days": "45", "min_repeat_buyers": "80",
            "w_beyond_terms": "50", "w_overdue_share": "30", "w_overdue_age": "20",
            "band_reliable": "85", "band_watch": "55"}
    bad = http.form(f"/t/{slug}/analytics/settings", {**form, "status_lost_share": "90"},
                    headers={"Accept-Language": "en"})
    assert bad.status_code == 422 and "must be below" in bad.text
    uneven = http.form(f"/t/{slug}/analytics/settings", {**form, "w_overdue_age": "25"},
                       headers={"Accept-Language": "en"})
    assert uneven.status_code == 422 and "must add up to 100 (now 105)" in uneven.text
    page = http.get(f"/t/{slug}/analytics/settings", headers={"Accept-Language": "en"}).text
    assert 'name="discount_rate" ' in page and 'value="10"' in page and 'name="holdout_weeks"' in page
    assert http.form(f"/t/{slug}/analytics/settings", form).status_code == 303

    async def go() -> dict:
        from saas.analytics import settings as analytics_settings

        db = Database(db_url, pool_size=1)
        async with db.session(await schema_of(db, slug)) as s:
            cfg = await analytics_settings.load(s)
        await db.dispose()
        return cfg

    cfg = asyncio.run(go())
    assert (cfg["status_active_share"], cfg["status_lost_share"]) == pytest.approx((0.6, 0.15))
    assert (cfg["holdout_weeks"], cfg["clv_months"], cfg["horizon_days"], cfg["min_repeat_buyers"]) == (26, 24, 60, 80)
    assert (cfg["discount_rate"], cfg["margin"]) == pytest.approx((0.12, 0.4))
    assert cfg["weights"] == {"beyond_terms": 50, "overdue_share": 30, "overdue_age": 20}
    assert cfg["bands"]["reliable"] == 85


def test_settings_saved_by_an_earlier_version_still_load(http: Browser, db_url) -> None:
    """Old keys (the P(alive) thresholds, old reliability weights) neither break load() nor leak in."""
    from saas.analytics import settings as analytics_settings
    from saas.analytics.models import Setting

    slug = http.signup("Old Settings Co")

    async def go() -> dict:
        db = Database(db_url, pool_size=1)
        async with db.session(await schema_of(db, slug)) as s:
            s.add(Setting(key="analytics", value={"active_p": 0.6, "lost_p": 0.3, "horizon_days": 120,
                                                  "weights": {"late": 35.0, "days_late": 20.0}}))
        async with db.session(await schema_of(db, slug)) as s:
            cfg = await analytics_settings.load(s)
        await db.dispose()
        return cfg

    cfg = asyncio.run(go())
    assert "active_p" not in cfg and "lost_p" not in cfg
    assert cfg["horizon_days"] == 120  # a still-valid key is kept
    assert (cfg["discount_rate"], cfg["margin"], cfg["clv_months"], cfg["holdout_weeks"]) == (0.10, 1.0, 12, 13)
    assert (cfg["status_active_share"], cfg["status_lost_share"]) == (0.5, 0.1)
    page = http.get(f"/t/{slug}/analytics/settings", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and 'name="status_active_share"' in page.text
