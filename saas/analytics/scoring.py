"""The score refresh: statistics from SQL, model fits on compact arrays, scores written back.

Nothing here loads clients as Python rows. SQL reduces operations to a handful of numbers per
client, returned as arrays; the models fit on identical (x, t_x, T) rows grouped with weights; the
scores go back with one INSERT … SELECT FROM unnest(arrays), in the caller's transaction, so a
reader sees the old snapshot or the new one, never half of it.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import btyd, reliability, rfm
from saas.analytics.dashboard import store_dashboard
from saas.analytics.payments import payment_factors
from saas.analytics import settings as analytics_settings
from saas.analytics.models import ModelFit, Setting
from saas.core import clock

WEEK = 7.0
PURCHASES = text("""
    WITH days AS (
        SELECT client_id, occurred_on AS d, sum(amount) AS amt,
               row_number() OVER (PARTITION BY client_id ORDER BY occurred_on) AS rn
        FROM operations WHERE kind <> 'return' AND occurred_on <= :today
        GROUP BY client_id, occurred_on
    ), per AS (
        SELECT client_id, count(*) - 1 AS x, min(d) AS first_d, max(d) AS last_d,
               coalesce(sum(amt) FILTER (WHERE rn > 1), 0) AS repeat_total
        FROM days GROUP BY client_id
    ), s AS (
        SELECT c.id, coalesce(per.x, -1) AS x, coalesce(:today - per.first_d, -1) AS first_age,
               coalesce(:today - per.last_d, -1) AS last_age, coalesce(per.repeat_total, 0) AS repeat_total,
               c.revenue_total, c.operations_count
        FROM clients c LEFT JOIN per ON per.client_id = c.id WHERE c.erased_at IS NULL
    )
    SELECT array_agg(id ORDER BY id), array_agg(x ORDER BY id), array_agg(first_age ORDER BY id),
           array_agg(last_age ORDER BY id), array_agg(repeat_total::float8 ORDER BY id),
           array_agg(revenue_total::float8 ORDER BY id), array_agg(operations_count ORDER BY id)
    FROM s
""")
WRITE = """
    INSERT INTO client_scores (client_id, status, p_alive, expected_purchases, expected_spend, clv,
        r_score, f_score, m_score, segment, risk_score, risk_group, risk_factors, method, computed_at)
    SELECT u.id, u.status, u.p_alive, u.expected, u.spend, u.clv, u.r, u.f, u.m, u.segment, u.risk, u.risk_group,
        jsonb_build_object('payments', u.payments, 'late', u.late, 'overdue', u.overdue,
                           'overdue_age', u.overdue_age, 'last_n', u.last_n, 'late30_last', u.late30_last,
                           'returns', u.returns, 'deals', u.deals, 'p_late', u.p_late, 'p_overdue', u.p_overdue,
                           'p_age', u.p_age, 'p_returns', u.p_returns),
        $17, now()
    FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[], $5::numeric[], $6::numeric[],
                $7::int[], $8::int[], $9::int[], $10::text[], $11::int[], $12::text[],
                $13::int[], $14::int[], $15::float8[], $16::int[], $18::int[], $19::int[], $20::int[],
                $21::int[], $22::float8[], $23::float8[], $24::float8[], $25::float8[])
        AS u(id, status, p_alive, expected, spend, clv, r, f, m, segment, risk, risk_group,
             payments, late, overdue, overdue_age, last_n, late30_last, returns, deals,
             p_late, p_overdue, p_age, p_returns)
"""

Progress = Callable[[int, int], Awaitable[None]]


@dataclass
class RefreshResult:
    clients: int
    method: str
    fits: list[btyd.Fit] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)


def _arrays(row: Any, n: int) -> list[np.ndarray]:
    return [np.asarray(col if col is not None else [], dtype=float) for col in row[:n]]


def classify(p_alive: np.ndarray, x: np.ndarray, first_age: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Status from P(alive): new (no repeat yet, first purchase recent), active, at risk, lost."""
    status = np.where(p_alive >= cfg["active_p"], "active", np.where(p_alive >= cfg["lost_p"], "at_risk", "lost"))
    return np.where((x <= 0) & (first_age <= cfg["new_days"]), "new", status).astype(object)


def rule_status(x: np.ndarray, first_age: np.ndarray, last_age: np.ndarray, cfg: dict[str, Any]) -> tuple[
        np.ndarray, float]:
    """Honest rules for little history: recency against the company's typical gap between purchases."""
    repeat = x > 0
    gaps = (first_age[repeat] - last_age[repeat]) / x[repeat]
    typical = float(np.median(gaps)) if repeat.any() else float(cfg["new_days"])
    typical = max(typical, 1.0)
    status = np.where(last_age <= 2 * typical, "active", np.where(last_age <= 4 * typical, "at_risk", "lost"))
    status = np.where((x <= 0) & (first_age <= cfg["new_days"]), "new", status)
    return np.where(x < 0, "new", status).astype(object), typical


def fit_models(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m_x: np.ndarray) -> list[btyd.Fit]:
    """Fit on weeks rounded to whole weeks (grouping makes the fit fast); predictions use exact values."""
    (ux, utx, uT), weights, _inverse = btyd.compress(x, np.round(t_x), np.round(T))
    fits = [btyd.fit_pareto(ux, utx, uT, weights), btyd.fit_bgnbd(ux, utx, uT, weights)]
    if (x > 0).sum() >= 10:
        fits.append(btyd.fit_gamma_gamma(x, m_x))
    return fits


async def refresh(db: AsyncSession, *, today: date | None = None, progress: Progress | None = None) -> RefreshResult:
    today = today or clock.today()
    cfg = await analytics_settings.load(db)
    marks = {"start": time.perf_counter()}

    async def step(done: int) -> None:
        if progress:
            await progress(done, 100)

    row = (await db.execute(PURCHASES, {"today": today})).one()
    if row[0] is None:
        await db.execute(delete(Setting).where(Setting.key == "dashboard"))
        return RefreshResult(0, "rules")
    ids = np.asarray(row[0], dtype=np.int64)
    x, first_age, last_age, repeat_total, revenue, deals = _arrays(row[1:], 6)
    factors = await payment_factors(db, ids, today)
    marks["stats"] = time.perf_counter()
    await step(25)

    bought = x >= 0
    T, t_x = first_age / WEEK, (first_age - last_age) / WEEK
    m_x = np.where(x > 0, repeat_total / np.maximum(x, 1), 0.0)
    n_repeat = int((x > 0).sum())
    p_alive = np.full(len(ids), np.nan)
    expected = np.full(len(ids), np.nan)
    spend = np.full(len(ids), np.nan)
    clv = np.full(len(ids), np.nan)
    fits: list[btyd.Fit] = []
    method = "rules"
    if n_repeat >= cfg["min_repeat_buyers"]:
        fits = fit_models(x[bought], t_x[bought], T[bought], m_x[bought])
        pareto = fits[0]
        if pareto.converged and all(np.isfinite(v) and v > 0 for v in pareto.params.values()):
            method = "pareto-nbd"
            b = bought
            (ux, utx, uT), _w, inverse = btyd.compress(x[b], t_x[b], T[b])
            p_alive[b] = btyd.pareto_p_alive(pareto.params, ux, utx, uT)[inverse]
            horizon = cfg["horizon_days"] / WEEK
            expected[b] = btyd.pareto_expected(pareto.params, horizon, ux, utx, uT)[inverse]
            year = btyd.pareto_expected(pareto.params, 365 / WEEK, ux, utx, uT)[inverse]
            gg = next((f for f in fits if f.model == "gamma-gamma"), None)
            if gg is not None and gg.params["q"] > 1:
                spend[b] = btyd.gamma_gamma_expected(gg.params, x[b], m_x[b])
            else:  # the client's own average purchase
                spend[b] = np.where(deals[b] > 0, revenue[b] / np.maximum(deals[b], 1), 0)
            clv[b] = year * spend[b]
    marks["fit"] = time.perf_counter()
    await step(60)

    if method == "pareto-nbd":
        status = classify(np.nan_to_num(p_alive, nan=0.0), x, first_age, cfg)
        status[~bought] = "new"
    else:
        status, _typical = rule_status(x, first_age, last_age, cfg)
    recency = np.where(bought, last_age, 1e9)
    r, f, m = rfm.rfm_scores(recency, deals, revenue)
    segment = rfm.segment_of(r, f, m)
    segment[~bought] = "prospects"
    risk, risk_group, lost = reliability.score(factors, cfg["weights"], cfg["bands"])
    marks["score"] = time.perf_counter()

    await db.execute(text("DELETE FROM client_scores"))
    raw = (await (await db.connection()).get_raw_connection()).driver_connection

    def clean(a: np.ndarray) -> list:
        return [None if not np.isfinite(v) else float(v) for v in a]

    def money(a: np.ndarray) -> list:
        return [None if not np.isfinite(v) else round(float(v), 2) for v in a]

    ints = lambda a: a.astype(int).tolist()  # noqa: E731
    await raw.execute(
        WRITE, ids.tolist(), status.tolist(), clean(p_alive), clean(expected), money(spend), money(clv),
        ints(r), ints(f), ints(m), segment.tolist(), ints(risk), risk_group.tolist(),
        ints(factors["payments"]), ints(factors["late"]), factors["overdue"].tolist(), ints(factors["overdue_age"]),
        method, ints(factors["last_n"]), ints(factors["late30_last"]), ints(factors["returns"]),
        ints(factors["deals"]), lost["late"].tolist(), lost["overdue"].tolist(), lost["age"].tolist(),
        lost["returns"].tolist(),
    )
    for fit in fits:
        db.add(ModelFit(model=fit.model, params=fit.params, log_likelihood=fit.log_likelihood,
                        clients=fit.clients, seconds=fit.seconds, converged=fit.converged,
                        quality={**fit.extra, "unit": "week"}))
    await step(85)
    await store_dashboard(db, today, method, n_repeat, int(bought.sum()))
    marks["write"] = time.perf_counter()
    await step(100)
    counts = {s: int((status == s).sum()) for s in ("new", "active", "at_risk", "lost")}
    stamps = list(marks.items())
    seconds = {name: round(t - stamps[i - 1][1], 3) for i, (name, t) in enumerate(stamps) if i}
    return RefreshResult(len(ids), method, fits, seconds, counts)
