"""Today's forecast per client from a fitted model (or the rules), and RFM from stored boundaries.

Pure numpy. The nightly refresh and live scoring (one client after a write) both call these, the
refresh with the fit it just made, live scoring with the fit the last refresh stored.

CLV (clv.discounted_clv), per client:
    CLV = Σ_{m=1..H} (E[X(m)] − E[X(m−1)]) · spend · margin / (1 + annual rate)^(m/12)
with E[X(m)] the model's expected purchases in the next m months, H the company's horizon in
months, spend the expected value of one purchase: Gamma-Gamma's conditional expectation when that
model was usable (converged, q > 1; fitted on repeat buyers' positive mean repeat spend), else the
client's own mean purchase = net revenue (purchases less returns, never below 0) / purchase days.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from saas.analytics import btyd, clv, selection
from saas.analytics import status as status_rules
from saas.analytics.statistics import WEEK, Stats

Array = np.ndarray


@dataclass
class Forecast:
    status: Array
    p_alive: Array
    expected: Array   # purchases over the company's horizon (horizon_days)
    p_buy: Array      # chance of buying within the status horizon
    spend: Array      # expected value of one purchase
    clv: Array


def own_mean_spend(stats: Stats) -> Array:
    """Net revenue per purchase day (never negative; 0 for clients without purchases)."""
    return np.where(stats.n > 0, np.maximum(stats.revenue, 0.0) / np.maximum(stats.n, 1), 0.0)


def spend_per_purchase(stats: Stats, spend_params: dict[str, float] | None) -> Array:
    if not spend_params:
        return own_mean_spend(stats)
    x = np.maximum(stats.x, 0)
    with np.errstate(all="ignore"):
        expected = btyd.gamma_gamma_expected(spend_params, x, stats.repeat_mean)
    return np.where(stats.n > 0, np.nan_to_num(expected, nan=0.0), 0.0)


def empty(n: int) -> Forecast:
    nan = np.full(n, np.nan)
    return Forecast(np.full(n, "new", dtype=object), nan, nan.copy(), nan.copy(), nan.copy(), nan.copy())


def model_forecast(stats: Stats, model: str, params: dict[str, float], spend_params: dict[str, float] | None,
                   limits: dict[str, float], cfg: dict[str, Any]) -> Forecast:
    """P(alive), expected purchases, p_buy, status, spend and discounted CLV of every buyer."""
    out = empty(len(stats))
    b = stats.bought
    fit = btyd.Fit(model, params, float("nan"), 0, 0.0, True)
    (ux, utx, uT), _w, inverse = btyd.compress(stats.x[b], stats.t_x[b], stats.T[b])
    if len(ux):
        alive = selection.p_alive(fit, ux, utx, uT)
        out.p_alive[b] = alive[inverse]
        out.expected[b] = selection.expected(fit, cfg["horizon_days"] / WEEK, ux, utx, uT, alive)[inverse]
        out.p_buy[b] = status_rules.p_buy(params, limits["horizon_weeks"], ux, uT, alive)[inverse]
        discounted = clv.discounted_clv(expected_path(fit, ux, utx, uT, alive), 1.0,
                                        months=int(cfg["clv_months"]), annual_rate=float(cfg["discount_rate"]),
                                        margin=1.0)  # discounted expected purchases per group
        out.spend[b] = spend_per_purchase(stats, spend_params)[b]
        out.clv[b] = discounted[inverse] * out.spend[b] * float(cfg["margin"])
    out.status = status_rules.classify(np.nan_to_num(out.p_buy, nan=0.0), stats.n, stats.first_age, limits,
                                       cfg["new_days"])
    out.status = status_rules.non_buyers(out.status, stats.n, stats.returned)
    return out


def expected_path(fit: btyd.Fit, x: Array, t_x: Array, T: Array, alive: Array) -> Callable[[float], Array]:
    """t ↦ expected purchases in (T, T + t], for CLV's month-by-month sum. Under Pareto/NBD that is
    P(alive) · (r + x)(β + T)/(α + T) · [1 − ((β + T)/(β + T + t))^(s − 1)] / (s − 1) (Schmittlein et
    al.; btyd.pareto_expected): P(alive), the costly part, is computed once for all the months.
    The other models go through selection.expected for each horizon."""
    if fit.model != "pareto-nbd":
        return lambda t: selection.expected(fit, t, x, t_x, T, alive)
    r, alpha, s, beta = (fit.params[k] for k in btyd.PARAMS["pareto-nbd"])
    rate = (r + x) * (beta + T) / (alpha + T) * alive

    def cumulative(t: float | Array) -> Array:  # t: a horizon, or a column of them (months × clients)
        if abs(s - 1) < 1e-6:
            return rate * np.log((beta + T + t) / (beta + T))
        return rate * (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1)

    cumulative.broadcasts = True  # type: ignore[attr-defined]  # clv.discounted_clv: every month in one call
    return cumulative


def rules_forecast(stats: Stats, gap_days: float, cfg: dict[str, Any]) -> Forecast:
    """No model: status by recency against the typical gap; no probabilities, no CLV."""
    out = empty(len(stats))
    out.status = status_rules.rule_status(stats.n, stats.first_age, stats.last_age, gap_days, cfg["new_days"])
    out.status = status_rules.non_buyers(out.status, stats.n, stats.returned)
    return out


# ---- RFM for one client against the company's stored boundaries ---------------------------------
# The refresh ranks buyers with rfm.rfm_scores (percent-rank quintiles among buyers); it stores, per
# dimension, the smallest value that reached each score 2..5, so a client scored live (after a
# write) gets the score the refresh would have given that value. Recency is stored negated (a
# higher value is better in every dimension).


def rfm_inputs(stats: Stats) -> tuple[Array, Array, Array]:
    """Recency (days since the last purchase), frequency (purchase days), monetary (net revenue)."""
    return stats.last_age.astype(float), stats.n.astype(float), stats.revenue


FAR = 1e300  # "every value" / "no value" as JSON-safe numbers (JSONB has no infinity)


def bounds(values: Array, scores: Array) -> list[float]:
    """Per score k = 2..5, the smallest value that scored at least k (−FAR when every value did,
    FAR when none did)."""
    if len(values) == 0:  # nobody to rank against: the middle score, as rfm gives a lone buyer
        return [-FAR, -FAR, FAR, FAR]
    out = []
    for k in range(2, 6):
        reached = scores >= k
        out.append(-FAR if reached.all() else float(values[reached].min()) if reached.any() else FAR)
    return out


def apply_bounds(values: Array, cut: list[float]) -> Array:
    return 1 + (np.asarray(values, dtype=float)[:, None] >= np.asarray(cut, dtype=float)[None, :]).sum(axis=1)


def rfm_bounds(recency: Array, frequency: Array, monetary: Array, r: Array, f: Array, m: Array,
               bought: Array) -> dict[str, Any]:
    return {"r": bounds(-recency[bought], r[bought]), "f": bounds(frequency[bought], f[bought]),
            "m": bounds(monetary[bought], m[bought])}


def rfm_live(recency: Array, frequency: Array, monetary: Array, bought: Array,
             stored: dict[str, Any]) -> tuple[Array, Array, Array]:
    out = []
    for values, key in ((-recency, "r"), (frequency, "f"), (monetary, "m")):
        score = np.zeros(len(values), dtype=int)
        score[bought] = apply_bounds(values[bought], stored[key])
        out.append(score)
    return out[0], out[1], out[2]
