"""The refresh's built-in backtest on simulated companies whose buying process is known.

Each company is written as operations rows into its own tenant (real PostgreSQL), refreshed, and
judged on what the refresh stored: the backtest's predictions against what the clients did in the
held-out weeks, the status order, the model choice and its evidence, and the rules fallback with
its reason when the data cannot carry a model.
"""
from __future__ import annotations

import asyncio
from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from saas.analytics import clv, evidence, selection
from saas.analytics.models import Setting
from saas.analytics.scoring import refresh
from saas.core.db import Database
from saas.accounts.service import do_create_tenant
from tests.integration import companies

TODAY = date(2026, 6, 30)


async def new_tenant(db: Database, name: str) -> str:
    async with db.session() as s:
        return (await do_create_tenant(s, name)).schema_name


def run(db_url: str, company: companies.Company, *, settings: dict | None = None):
    """A tenant with the company's history, refreshed once: (result, backtest, scoring, rows)."""
    async def go():
        db = Database(db_url, pool_size=2)
        try:
            schema = await new_tenant(db, "Simulated")
            await companies.write(db, schema, company, TODAY)
            if settings:
                async with db.session(schema) as s:
                    s.add(Setting(key="analytics", value=settings))
            async with db.session(schema) as s:
                result = await refresh(s, today=TODAY)
            async with db.session(schema) as s:
                backtest = (await s.get(Setting, "backtest")).value
                scoring = (await s.get(Setting, "scoring")).value
                fits = (await s.execute(text(
                    "SELECT model, converged, quality FROM model_fits ORDER BY id"))).all()
                scores = (await s.execute(text(
                    "SELECT count(*), count(*) FILTER (WHERE method = :m) FROM client_scores"),
                    {"m": result.method})).one()
            return result, backtest, scoring, fits, scores
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def pareto(db_url: str):
    """3,000 clients from a Pareto/NBD process over three years, 5% of purchases partly returned."""
    return run(db_url, companies.pareto_company(3000, seed=11, returns=0.05))


def test_backtest_predicts_the_held_out_weeks(pareto) -> None:
    result, backtest, _scoring, _fits, scores = pareto
    assert result.method in selection.PURCHASE_MODELS
    assert scores == (3000, 3000)
    assert backtest["backtested"] and backtest["chosen"] == result.method
    assert backtest["holdout_purchases"] >= evidence.MIN_HOLDOUT_PURCHASES  # so the holdout chose
    assert backtest["choice"]["by"] == "holdout"
    chosen = backtest["compare"][result.method]
    total = chosen["total"]
    # The truth is a Pareto/NBD process the candidates can represent: the chosen model predicts the
    # total within 10% (the holdout has ~1,800 purchases: Poisson noise alone is ~2.5%).
    assert abs(total["predicted"] / total["actual"] - 1) < 0.10, total
    # Per number of repeat purchases before the cut-off (groups of 50+ clients): within three
    # standard errors of the actual total, taking the variance of purchase counts as three times
    # the Poisson's (clients differ in rate, so counts are overdispersed).
    for row in chosen["by_repeat"]:
        if row["clients"] >= 50:
            gap = abs(row["predicted"] - row["actual"]) * row["clients"]
            assert gap <= 3 * np.sqrt(3 * row["actual"] * row["clients"]), row
    # Every candidate is stored with its error, parameters and standard errors.
    assert set(backtest["errors"]) == set(selection.PURCHASE_MODELS)
    assert backtest["errors"][result.method] == min(backtest["errors"].values())
    for rec in backtest["candidates"]:
        assert rec["usable"] and rec["stage"] == "calibration"
        assert all(rec["se"][k] is not None and 0 < rec["se"][k] < rec["params"][k] for k in rec["params"])


def test_status_orders_what_clients_did_next(pareto) -> None:
    _result, backtest, scoring, _fits, _scores = pareto
    shares = backtest["status"]
    active, at_risk, lost = (shares[s]["bought_again"] for s in ("active", "at_risk", "lost"))
    assert backtest["status_ordered"] is True
    assert active > at_risk > lost, shares
    assert all(shares[s]["clients"] >= 100 for s in ("active", "at_risk", "lost")), shares
    # the thresholds used today are the ones checked on the backtest
    limits = scoring["limits"]
    assert 0 < limits["lost_below"] < limits["active_from"] < 1


def test_fits_are_stored_with_their_evidence(pareto) -> None:
    result, _backtest, scoring, fits, _scores = pareto
    chosen = [q for _m, _c, q in fits if q.get("chosen")]
    assert len(chosen) == 1 and chosen[0]["stage"] == "whole history" and chosen[0]["usable"]
    assert {m for m, _c, q in fits if q["stage"] == "calibration"} == set(selection.PURCHASE_MODELS)
    assert scoring["fit"]["model"] == result.method
    assert set(scoring["rfm_bounds"]) == {"r", "f", "m"}


def test_clv_is_the_discounted_sum_of_the_stored_model(db_url: str, pareto) -> None:
    """A client's stored CLV equals clv.discounted_clv recomputed by hand from the stored fit."""
    _result, _backtest, scoring, _fits, _scores = pareto
    from saas.analytics import btyd

    fit = btyd.Fit(scoring["fit"]["model"], scoring["fit"]["params"], 0.0, 0, 0.0, True)
    x, t_x, T = np.array([3.0]), np.array([40.0]), np.array([60.0])
    months, rate, margin = scoring["clv"]["months"], scoring["clv"]["annual_rate"], scoring["clv"]["margin"]
    by_hand = sum((selection.expected(fit, m * clv.WEEKS_PER_MONTH, x, t_x, T)
                   - selection.expected(fit, (m - 1) * clv.WEEKS_PER_MONTH, x, t_x, T)) / (1 + rate) ** (m / 12)
                  for m in range(1, months + 1)) * 1000.0 * margin
    assert (months, rate, margin) == (12, 0.10, 1.0)  # the defaults
    ours = clv.discounted_clv(lambda t: selection.expected(fit, t, x, t_x, T), 1000.0, months, rate, margin)
    assert ours[0] == pytest.approx(by_hand[0], rel=1e-9)


def test_rules_are_ordered_too(db_url: str) -> None:
    """Forced to rules (the company asks for more repeat buyers than it has), the rule statuses still
    order what clients did in the held-out weeks."""
    company = companies.pareto_company(3000, seed=12)
    result, backtest, scoring, fits, scores = run(db_url, company, settings={"min_repeat_buyers": 100000})
    assert result.method == "rules" and scoring["reason"] == evidence.TOO_FEW_REPEAT
    assert scores == (3000, 3000)
    shares = backtest["status"]
    assert backtest["status_ordered"] is True
    assert shares["active"]["bought_again"] > shares["at_risk"]["bought_again"] > shares["lost"]["bought_again"]
    assert not any(q.get("chosen") for _m, _c, q in fits)


def _degenerate(rows: list[tuple[int, int, float, str]], clients: int) -> companies.Company:
    return companies.rows_company(clients, rows)


DEGENERATE = {
    # 400 clients, each bought once (some twice on the same day, which is one purchase)
    "one-time buyers only": _degenerate([(i, i % 700, 100.0 + i, "sale") for i in range(400)]
                                        + [(i, i % 700, 50.0, "service") for i in range(0, 400, 3)], 400),
    "one client": _degenerate([(0, d, 500.0, "sale") for d in (400, 300, 200, 100, 10)], 1),
    # everyone on one day, today: T = 0 for all
    "everyone on one day": _degenerate([(i, 0, 100.0, "sale") for i in range(300)]
                                       + [(i, 0, 30.0, "sale") for i in range(300)], 300),
    # only returns: nobody has bought
    "only returns": _degenerate([(i, 10 + i, 80.0, "return") for i in range(100)], 100),
}


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_companies_fall_back_to_rules_with_a_reason(db_url: str, name: str) -> None:
    company = DEGENERATE[name]
    result, _backtest, scoring, fits, scores = run(db_url, company)
    assert result.method == "rules", name
    assert scoring["reason"], name  # a reason, stored and shown
    assert scores[0] == company.clients
    # never a usable "converged" fit of an absurd model
    assert not any(q.get("chosen") or (q.get("usable") and q.get("stage") == "whole history")
                   for m, _c, q in fits if m != "gamma-gamma"), fits


def test_clients_who_only_returned_are_not_new(db_url: str) -> None:
    result, _backtest, _scoring, _fits, _scores = run(db_url, DEGENERATE["only returns"])
    assert result.status_counts["new"] == 0 and result.status_counts["lost"] == 100


def test_clockwork_buyers_who_never_leave_are_not_a_converged_fit(db_url: str) -> None:
    """200 clients buying every 7 days for a year, none leaving: no heterogeneity and no dropout for
    the models to learn, so their parameters run to the boundary. The refresh must not use such a
    fit as if it had converged: it falls back to rules (the reason says why), or uses a fit only
    when it is judged usable."""
    rows = [(i, d, 100.0, "sale") for i in range(200) for d in range(i % 7, 365, 7)]
    result, backtest, scoring, fits, _scores = run(db_url, companies.rows_company(200, rows))
    for _model, _converged, q in fits:
        if q.get("chosen"):
            assert q["usable"] and q["reason"] is None
    if result.method == "rules":
        assert scoring["reason"]
    else:  # a usable fit: it must then also predict the held-out weeks sensibly (everyone buys ~13 times)
        total = backtest["compare"][result.method]["total"]
        assert abs(total["predicted"] / total["actual"] - 1) < 0.2


def test_a_second_refresh_started_from_the_first_gives_the_same_answers(db_url: str) -> None:
    """The nightly refresh starts each fit from the last refresh's (same model, same stage): on the
    same history it reaches the same fits (to the optimiser's tolerance) and the same scores."""
    async def go():
        db = Database(db_url, pool_size=2)
        try:
            schema = await new_tenant(db, "Twice")
            await companies.write(db, schema, companies.pareto_company(1500, seed=12), TODAY)
            out = []
            for _ in range(2):
                async with db.session(schema) as s:
                    result = await refresh(s, today=TODAY)
                async with db.session(schema) as s:
                    backtest = (await s.get(Setting, "backtest")).value
                    rows = (await s.execute(text("SELECT client_id, status, segment, risk_group, p_alive, clv "
                                                 "FROM client_scores ORDER BY client_id"))).all()
                out.append((result, backtest, rows))
            return out
        finally:
            await db.dispose()

    (first, first_bt, first_rows), (second, second_bt, second_rows) = asyncio.run(go())
    assert first.method == second.method != "rules"
    for a, b in zip(first_bt["candidates"] + first_bt["refits"], second_bt["candidates"] + second_bt["refits"],
                    strict=True):
        assert (a["model"], a["stage"], a["usable"]) == (b["model"], b["stage"], b["usable"])
        for name, value in a["params"].items():
            assert b["params"][name] == pytest.approx(value, rel=1e-3), (a["model"], a["stage"], name)
    assert [r[:4] for r in first_rows] == [r[:4] for r in second_rows]  # status, segment, reliability
    for a, b in zip(first_rows, second_rows, strict=True):  # tolerances: the fits' (above)
        assert (a[4] is None) == (b[4] is None) and (a[5] is None) == (b[5] is None)
        if a[4] is not None:
            assert b[4] == pytest.approx(a[4], abs=1e-4)
        if a[5] is not None:
            assert float(b[5]) == pytest.approx(float(a[5]), rel=1e-3, abs=0.05)
