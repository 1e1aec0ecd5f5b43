"""The answers in the API: each client's scores (`analytics`) in the card and the list, the list's
score filters, and `GET /api/v1/analytics/summary`, all checked against what the refresh stored."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest

from saas.core import clock
from testkit import Browser, cli, sql, with_database

N_CLIENTS = 400


def token(slug: str, role: str) -> str:
    r = cli("tokens", "create", "--tenant", slug, "--role", role, "--name", f"{role}-{secrets.token_hex(3)}")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def api(base_url: str, secret: str, language: str = "en") -> httpx.Client:
    return httpx.Client(base_url=base_url + "/api/v1", timeout=60,
                        headers={"Authorization": f"Bearer {secret}", "Accept-Language": language})


def schema_of(db_url: str, slug: str) -> str:
    return sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]


def seed(db_url: str, schema: str, marker: str, n: int = N_CLIENTS, rng_seed: int = 11) -> None:
    """n clients with Pareto/NBD purchase histories over three years up to today, some late and
    unpaid payments, a few returns; last names alternate so a search picks half of them."""
    from saas.analytics import simulate
    from saas.clients.operations import refresh_all_metrics

    today = clock.today()
    rng = np.random.default_rng(rng_seed)
    x, t_x, T = simulate.pareto_nbd(n, 0.6, 40.0, 0.7, 300.0, T=rng.integers(60, 3 * 365, n).astype(float),
                                    seed=rng_seed)

    async def go(db: Any) -> None:
        async with db.session(schema) as s:
            raw = (await (await s.connection()).get_raw_connection()).driver_connection
            ids = await raw.fetch(
                "INSERT INTO clients (last_name, first_name, tags) SELECT CASE WHEN g % 2 = 0 THEN 'Альфа' "
                "ELSE 'Бета' END, 'Номер' || g, ARRAY[$2::text] FROM generate_series(1, $1) g RETURNING id", n, marker)
            rows = []
            for cid, xi, txi, Ti in zip((r["id"] for r in ids), x, t_x, T, strict=True):
                first = today - timedelta(days=int(Ti))
                for d in sorted({0, int(txi), *rng.uniform(0, txi, int(xi)).astype(int).tolist()} if xi else {0}):
                    when = first + timedelta(days=d)
                    due = when + timedelta(days=14)
                    late = rng.random() < 0.25
                    paid = (due + timedelta(days=int(rng.integers(5, 90)))) if late else due
                    paid = None if paid > today or (late and rng.random() < 0.3) else paid
                    rows.append((cid, "sale", when, Decimal(int(rng.gamma(4, 500)) + 100), due, paid))
                if rng.random() < 0.05:
                    rows.append((cid, "return", first, Decimal(50), None, None))
            await raw.copy_records_to_table("operations", records=rows, schema_name=schema, columns=[
                "client_id", "kind", "occurred_on", "amount", "due_on", "paid_on"])
            await refresh_all_metrics(s)

    with_database(db_url, go)


def run_refresh(db_url: str, schema: str) -> None:
    from saas.analytics.scoring import refresh

    async def go(db: Any) -> None:
        async with db.session(schema) as s:
            await refresh(s)

    with_database(db_url, go)


@pytest.fixture(scope="module")
def scored(base_url: str, db_url: str) -> dict[str, Any]:
    """A company with a scored history, an owner and a viewer token."""
    with Browser(base_url) as b:
        slug = b.signup("Scored Api Co")
    schema, marker = schema_of(db_url, slug), f"m{secrets.token_hex(4)}"
    seed(db_url, schema, marker)
    run_refresh(db_url, schema)
    return {"slug": slug, "schema": schema, "marker": marker, "owner": token(slug, "owner"),
            "viewer": token(slug, "viewer")}


def scores(db_url: str, schema: str, where: str = "TRUE", params: dict | None = None) -> dict[int, tuple]:
    rows = sql(db_url, f'SELECT s.client_id, s.status, s.p_alive, s.expected_purchases, s.clv, s.segment, '
                       f's.risk_score, s.risk_group, s.computed_at, c.last_name FROM "{schema}".client_scores s '
                       f'JOIN "{schema}".clients c ON c.id = s.client_id WHERE {where}', params)
    return {r[0]: r[1:] for r in rows}


def all_pages(c: httpx.Client, **params: Any) -> list[int]:
    """Every id the list gives for these filters, following the keyset cursors in small pages."""
    seen: list[int] = []
    cursor = None
    for _page in range(500):
        r = c.get("/clients", params={**params, "limit": 37, **({"after": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += [item["id"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return seen
    raise AssertionError("the cursor never ended")


def reason_in(language: str, db_url: str, schema: str, client_id: int, currency: str) -> str:
    """The card's own words for this client's reliability, in one language (what the API must give)."""
    from saas.clients.models import ClientScore
    from saas.analytics.present import reliability_reason
    from saas.core.i18n import set_locale

    async def go(db: Any) -> str:
        async with db.session(schema) as s:
            score = await s.get(ClientScore, client_id)
            set_locale(language)
            try:
                return reliability_reason(score, currency)
            finally:
                set_locale(None)

    return with_database(db_url, go)


# ---- a client's scores ----------------------------------------------------------------------------


def assert_matches(analytics: dict, row: tuple) -> None:
    status, p_alive, expected, clv, segment, risk, group, computed_at, _name = row
    assert analytics["status"] == status and analytics["rfm_segment"] == segment
    assert analytics["reliability"] == risk and analytics["reliability_group"] == group
    assert analytics["p_alive"] == pytest.approx(p_alive, rel=1e-12) if p_alive is not None \
        else analytics["p_alive"] is None
    assert analytics["expected_purchases"] == pytest.approx(expected, rel=1e-12) if expected is not None \
        else analytics["expected_purchases"] is None
    assert (Decimal(analytics["clv"]) if analytics["clv"] is not None else None) == clv
    assert datetime.fromisoformat(analytics["scored_at"]) == computed_at


def test_a_scored_client_carries_its_scores_in_the_readers_language(scored: dict, base_url: str,
                                                                      db_url: str) -> None:
    schema = scored["schema"]
    rows = scores(db_url, schema, "s.p_alive IS NOT NULL AND s.clv IS NOT NULL")
    assert rows, "the model scored nobody: the seed must give it enough repeat buyers"
    # the least reliable client: its reason has the most to say
    cid = min(rows, key=lambda i: (rows[i][5], i))
    currency = sql(db_url, "SELECT currency FROM shared.tenants WHERE slug = :s", {"s": scored["slug"]})[0][0]
    answers = {}
    for language in ("en", "ru"):
        with api(base_url, scored["viewer"], language) as c:
            r = c.get(f"/clients/{cid}")
            assert r.status_code == 200, r.text
            answers[language] = r.json()["analytics"]
            assert_matches(answers[language], rows[cid])
            assert answers[language]["reasons"] == reason_in(language, db_url, schema, cid, currency)
            listed = {i["id"]: i["analytics"] for i in c.get("/clients", params={
                "tag": scored["marker"], "q": rows[cid][-1], "limit": 500}).json()["items"]}
            assert listed[cid] == answers[language]  # the list shows the same scores as the card
    assert answers["en"]["reasons"] and answers["en"]["reasons"] != answers["ru"]["reasons"]
    assert any("а" <= ch <= "я" for ch in answers["ru"]["reasons"].lower()), answers["ru"]["reasons"]
    assert 0 <= answers["en"]["p_alive"] <= 1 and answers["en"]["expected_purchases"] >= 0


def test_every_client_in_the_list_has_its_own_scores(scored: dict, base_url: str, db_url: str) -> None:
    rows = scores(db_url, scored["schema"])
    with api(base_url, scored["owner"]) as c:
        items = c.get("/clients", params={"tag": scored["marker"], "limit": 500}).json()["items"]
    assert len(items) == N_CLIENTS
    for item in items:
        assert_matches(item["analytics"], rows[item["id"]])


def test_a_client_not_scored_yet_has_null_analytics(scored: dict, base_url: str) -> None:
    marker = f"u{secrets.token_hex(4)}"
    with api(base_url, scored["owner"]) as c:
        created = c.post("/clients", json={"last_name": "Новенький", "tags": [marker]})
        assert created.status_code == 201 and created.json()["analytics"] is None
        assert c.get(f"/clients/{created.json()['id']}").json()["analytics"] is None
        assert [i["analytics"] for i in c.get("/clients", params={"tag": marker}).json()["items"]] == [None]
        assert c.get("/clients", params={"tag": marker, "status": "active"}).json()["items"] == []


# ---- filters --------------------------------------------------------------------------------------


def test_score_filters_match_the_scores_and_combine_with_search_and_pages(scored: dict, base_url: str,
                                                                          db_url: str) -> None:
    rows = scores(db_url, scored["schema"])
    statuses = {r[0] for r in rows.values()}
    segments = {r[4] for r in rows.values()}
    groups = {r[6] for r in rows.values()}
    assert len(statuses) >= 3 and len(segments) >= 3 and len(groups) >= 2, (statuses, segments, groups)

    def pick(where: dict[int, object]) -> set:
        """The clients whose score row has these values ({column number: value})."""
        return {cid for cid, r in rows.items() if all(r[k] == v for k, v in where.items())}

    with api(base_url, scored["viewer"]) as c:
        base = {"tag": scored["marker"]}
        for status in statuses:
            assert sorted(all_pages(c, **base, status=status)) == sorted(pick({0: status}))
        for segment in segments:
            expected = sorted(pick({4: segment}))
            assert sorted(all_pages(c, **base, rfm_segment=segment)) == expected
            assert sorted(all_pages(c, **base, segment=segment)) == expected  # the older name
        for group in groups:
            expected = sorted(pick({6: group}))
            assert sorted(all_pages(c, **base, reliability_group=group)) == expected
            assert sorted(all_pages(c, **base, risk=group)) == expected
        # all three at once, with a search, sorted by revenue, in small pages
        alpha = [(r[0], r[4], r[6]) for r in rows.values() if r[8] == "Альфа"]
        status, segment, group = max(alpha, key=alpha.count)
        got = all_pages(c, **base, q="Альфа", status=status, rfm_segment=segment, reliability_group=group,
                        sort="revenue")
        expected = pick({0: status, 4: segment, 6: group, 8: "Альфа"})
        assert expected and sorted(got) == sorted(expected) and len(got) == len(set(got))
        assert got == [i["id"] for i in c.get("/clients", params={
            **base, "q": "Альфа", "status": status, "rfm_segment": segment, "reliability_group": group,
            "sort": "revenue", "limit": 500}).json()["items"]]  # the same order as one big page


@pytest.mark.parametrize(("param", "field"), [("status", "status"), ("rfm_segment", "rfm_segment"),
                                              ("reliability_group", "reliability_group"), ("segment", "rfm_segment"),
                                              ("risk", "reliability_group")])
def test_an_unknown_filter_value_is_422_listing_the_values_allowed(param: str, field: str, scored: dict,
                                                                    base_url: str) -> None:
    allowed = {"status": ["new", "active", "at_risk", "lost"], "rfm_segment": ["champions", "hibernating"],
               "reliability_group": ["reliable", "watch", "risk"]}[field]
    for language, sentence in (("en", 'Unknown value "zombie": use one of '),
                               ("ru", "Неизвестное значение «zombie»: допустимы ")):
        with api(base_url, scored["viewer"], language) as c:
            r = c.get("/clients", params={param: "zombie", "tag": scored["marker"]})
            assert r.status_code == 422, r.text
            body = r.json()
            assert body["status"] == 422 and body["error"] and set(body["fields"]) == {field}
            message = body["fields"][field]
            assert message.startswith(sentence) and all(value in message for value in allowed), message


def test_another_tenants_client_is_404_and_its_filters_find_nothing(scored: dict, base_url: str,
                                                                     db_url: str) -> None:
    cid, (status, *_rest) = next(iter(scores(db_url, scored["schema"]).items()))
    with Browser(base_url) as b:
        other = b.signup("Other Scores Co")
    with api(base_url, token(other, "owner")) as c:
        assert c.get(f"/clients/{cid}").status_code == 404
        assert c.get("/clients", params={"status": status}).json()["items"] == []
        assert c.get("/clients", params={"tag": scored["marker"]}).json()["items"] == []


# ---- the summary ----------------------------------------------------------------------------------


def test_the_summary_before_the_first_refresh_is_empty(base_url: str) -> None:
    with Browser(base_url) as b:
        slug = b.signup("Unscored Co")
    with api(base_url, token(slug, "viewer")) as c:
        r = c.get("/analytics/summary")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["years"] == [] and body["months"] == [] and body["computed_for"] is None
    assert set(body["growth"].values()) == {None} and body["year_to_date"] is None
    assert body["status_counts"] == {} and body["segment_counts"] == {} and body["reliability_counts"] == {}
    assert body["model"] == {"method": None, "explanation": "", "fit": None, "fits": [], "backtest": None}
    assert body["clients"] == 0


def test_the_summary_after_a_refresh_has_the_series_the_counts_and_the_model(scored: dict, base_url: str,
                                                                            db_url: str) -> None:
    schema, today = scored["schema"], clock.today()
    with api(base_url, scored["viewer"]) as c:
        r = c.get("/analytics/summary")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["computed_for"] == today.isoformat()
    assert body["clients"] == sql(db_url, f'SELECT count(*) FROM "{schema}".clients WHERE archived_at IS NULL '
                                          "AND erased_at IS NULL")[0][0] >= N_CLIENTS
    purchases = f'FROM "{schema}".operations WHERE kind <> \'return\' AND amount > 0'
    assert body["history_start"] == sql(db_url, f"SELECT min(occurred_on)::text {purchases}")[0][0]
    # every year and month shown counts the clients who bought in it (returns are not purchases)
    buyers = dict(sql(db_url, f"SELECT extract(year FROM occurred_on)::int, count(DISTINCT client_id) {purchases} "
                              "GROUP BY 1"))
    assert len(body["years"]) >= 2 and {p["period"] for p in body["years"]} <= {str(y) for y in buyers}
    assert body["years"][-1]["period"] == str(today.year) and body["years"][-1]["partial"] is True
    assert not any(p["partial"] for p in body["years"][:-1])
    for p in body["years"]:
        assert p["active"] == buyers[int(p["period"])], p
        assert p["new"] + p["returning"] == p["active"] and p["returning"] == p["retained"] + p["reactivated"]
    assert body["years"][0]["lost"] is None and body["years"][0]["rate"] is None  # nothing whole before it
    for prev, p in zip(body["years"][:-2], body["years"][1:-1], strict=True):  # whole years after the first
        assert p["lost"] == prev["active"] - p["retained"] and p["rate"] == pytest.approx(
            p["active"] / prev["active"] - 1, rel=1e-12)
    monthly = dict(sql(db_url, f"SELECT to_char(occurred_on, 'YYYY-MM'), count(DISTINCT client_id) {purchases} "
                               "GROUP BY 1"))
    last_month = today.replace(day=1) - timedelta(days=1)
    assert body["months"] and body["months"][-1]["period"] == f"{last_month:%Y-%m}"  # complete months only
    for p in body["months"]:
        assert p["active"] == monthly.get(p["period"], 0), p
    ytd = body["year_to_date"]
    assert ytd["year"] == today.year and ytd["through"] == today.isoformat()
    assert ytd["active"] == buyers.get(today.year, 0)
    growth = body["growth"]
    whole = [p for p in body["years"] if not p["partial"]]
    assert (growth["first_year"], growth["last_year"]) == (int(whole[0]["period"]), int(whole[-1]["period"]))
    assert growth["cagr"] == pytest.approx((whole[-1]["active"] / whole[0]["active"]) ** (
        1 / (growth["last_year"] - growth["first_year"])) - 1, rel=1e-12)
    # counts: what client_scores holds
    stored = scores(db_url, schema)
    for key, index in (("status_counts", 0), ("segment_counts", 4), ("reliability_counts", 6)):
        expected: dict[str, int] = {}
        for row in stored.values():
            expected[row[index]] = expected.get(row[index], 0) + 1
        assert body[key] == expected, key
    # the model that scored the clients, with its fit
    methods = sql(db_url, f'SELECT DISTINCT method FROM "{schema}".client_scores')
    assert [(body["model"]["method"],)] == methods
    fit = body["model"]["fit"]
    assert methods[0][0] != "rules" and fit is not None and fit["model"] == methods[0][0]
    assert fit["converged"] and fit["params"] and all(v is not None and v > 0 for v in fit["params"].values())
    assert fit["quality"].get("chosen") is True and fit in body["model"]["fits"]
    assert body["model"]["explanation"] and len(body["model"]["fits"]) >= 2  # the candidates were compared
    backtest = body["model"]["backtest"]
    assert backtest["method"] == fit["model"] and backtest["compare"][fit["model"]]


def test_the_summary_explains_the_model_in_the_readers_language(scored: dict, base_url: str) -> None:
    said = {}
    for language in ("en", "ru"):
        with api(base_url, scored["viewer"], language) as c:
            said[language] = c.get("/analytics/summary").json()["model"]["explanation"]
    assert said["en"] and said["ru"] != said["en"], said
    assert any("а" <= ch <= "я" for ch in said["ru"].lower()), said["ru"]


# ---- the API document -----------------------------------------------------------------------------


def test_the_api_document_describes_the_scores_and_the_summary(base_url: str) -> None:
    doc = httpx.get(base_url + "/api/openapi.json").json()
    schemas = doc["components"]["schemas"]
    analytics = schemas["ClientAnalyticsOut"]["properties"]
    assert set(analytics) == {"status", "p_alive", "expected_purchases", "clv", "rfm_segment", "reliability",
                              "reliability_group", "reasons", "scored_at"}
    assert "analytics" in schemas["ClientOut"]["properties"]
    params = {p["name"] for p in doc["paths"]["/api/v1/clients"]["get"]["parameters"]}
    assert {"status", "rfm_segment", "reliability_group"} <= params
    summary = doc["paths"]["/api/v1/analytics/summary"]["get"]
    assert summary["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AnalyticsSummaryOut")
    assert {"years", "months", "growth", "status_counts", "segment_counts", "model"} <= set(
        schemas["AnalyticsSummaryOut"]["properties"])
    assert set(schemas["GrowthPeriodOut"]["properties"]) >= {"period", "active", "new", "returning", "lost"}
