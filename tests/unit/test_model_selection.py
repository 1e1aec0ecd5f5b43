"""Model choice by evidence: simulated companies with a known process, degenerate data, rejected
fits, standard errors, and the spend model's refusals.

Tolerances
----------
Backtests: 20,000 clients joining over a year, calibrated on two years (days 0..728), held out for
39 weeks. For the chosen model, predicted holdout purchases must be
    in total within ±10% of the actual (the seeds below give ≤ 3.5%), and
    per repeat bucket (0 … 6, 7+) within 4 standard errors of the actual bucket mean
    (SE = sample sd / √n of the actual holdout counts; the seeds below give ≤ 3.2 SE).
A wrong model fails this: BG/NBD on a Pareto/NBD company predicts 0.091 purchases for one-time
buyers against 0.042 actual (> 10 SE).
Standard errors: over 12 replications of 4,000 clients, the mean Hessian SE of each parameter must
be within a factor of 2 of the empirical standard deviation of the estimates (measured: 0.72-1.11;
the sd of 12 replicates itself has ~20% relative error).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from saas.analytics import backtest, btyd, selection, simulate

PARETO = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
BGNBD = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
# MBG/NBD with early dropout: p ~ B(2, 3) has mean 0.4, so 40% of clients are gone right after the
# first purchase; BG/NBD cannot express that (a one-time buyer is alive to it).
MBGNBD = {"r": 0.5, "alpha": 6.0, "a": 2.0, "b": 3.0}
CAL_END, HOLD_END = 728, 728 + 273


def _company(model: str, params: dict, seed: int, n: int = 20_000) -> backtest.Split:
    ids, days, amounts = simulate.transactions(model, n, params, join_days=364, end_day=HOLD_END, seed=seed)
    return backtest.split(ids, days, amounts, CAL_END, HOLD_END)


def _backtest(data: backtest.Split) -> tuple[btyd.Fit, str, dict, dict[str, float]]:
    (gx, gt, gT), w, inverse = btyd.compress(data.x, data.t_x, data.T)
    fits = selection.fit_candidates(gx, gt, gT, w)
    predictions = {f.model: selection.expected(f, data.holdout_length, gx, gt, gT)[inverse] for f in fits if f.usable}
    errors = {m: backtest.holdout_error(data.x, p, data.holdout) for m, p in predictions.items()}
    chosen, why = selection.choose(fits, errors)
    assert chosen is not None, why
    return chosen, why, backtest.compare(data.x, predictions[chosen.model], data.holdout), errors


@pytest.mark.parametrize(("model", "params", "seed"), [
    ("pareto-nbd", PARETO, 2), ("bg-nbd", BGNBD, 2), ("mbg-nbd", MBGNBD, 1)])
def test_backtest_of_the_chosen_model_matches_the_holdout(model, params, seed) -> None:
    data = _company(model, params, seed)
    chosen, why, table, errors = _backtest(data)
    print(model, why, table["total"])
    assert set(errors) == {"pareto-nbd", "bg-nbd", "mbg-nbd"}  # every fit was usable on these data
    assert chosen.extra["choice"]["by"] == "holdout" and errors[chosen.model] == min(errors.values())
    assert table["total"]["predicted"] == pytest.approx(table["total"]["actual"], rel=0.10)
    bucket = backtest.repeat_bucket(data.x)
    for k, row in enumerate(table["by_repeat"]):
        actual = data.holdout[bucket == k]
        assert row["clients"] == len(actual) >= 100
        se = actual.std(ddof=1) / math.sqrt(len(actual))
        assert abs(row["predicted"] - row["actual"]) <= 4 * se, (model, row, se)
    json.dumps(table)  # plain JSON


def test_the_generating_model_wins_when_models_differ() -> None:
    """BG/NBD and MBG/NBD companies: the holdout picks the model that made the data; on the MBG/NBD
    company with early dropout, BG/NBD over-predicts one-time buyers and is not chosen."""
    chosen, _why, _table, errors = _backtest(_company("bg-nbd", BGNBD, 3))
    assert chosen.model == "bg-nbd"
    chosen, why, _table, errors = _backtest(_company("mbg-nbd", MBGNBD, 3))
    assert chosen.model == "mbg-nbd", why
    assert errors["bg-nbd"] > 1.5 * errors["mbg-nbd"]


# ---- degenerate data -------------------------------------------------------------------------


Z = np.zeros(50)


@pytest.mark.parametrize(("data", "problem"), [
    ((np.zeros(0), np.zeros(0), np.zeros(0), None), selection.NO_CLIENTS),
    ((Z, Z, Z + 10, np.zeros(50)), selection.NO_CLIENTS),                      # all weights 0
    ((np.array([5.0]), np.array([8.0]), np.array([20.0]), None), selection.ONE_CLIENT),
    ((np.array([5.0, 0]), np.array([8.0, 0]), np.array([20.0, 3]), np.array([1.0, 0])), selection.ONE_CLIENT),
    ((Z, Z, Z + 10, None), selection.NO_REPEAT),                                # one-time buyers only
    ((Z, Z, Z, None), selection.NO_TIME),                                       # everyone on the last day
    ((Z + 1, Z + 5, Z + 2, None), selection.BAD_NUMBERS),                       # last purchase after the end
    ((Z - 1, Z, Z + 2, None), selection.BAD_NUMBERS),
    ((Z + 1, Z + 1, Z + np.nan, None), selection.BAD_NUMBERS),
])
def test_data_problem_names_what_cannot_be_fitted(data, problem) -> None:
    x, t_x, T, w = data
    assert selection.data_problem(x, t_x, T, w) == problem
    fits = selection.fit_candidates(x, t_x, T, w)
    assert [f.model for f in fits] == ["pareto-nbd", "bg-nbd", "mbg-nbd"]
    assert all(not f.usable and f.reason == problem and not f.converged for f in fits)
    chosen, why = selection.choose(fits)
    assert chosen is None and selection.reason_text(problem) in why  # its words, for logs and the CLI


def test_data_problem_is_none_for_fittable_data() -> None:
    x, t_x, T = simulate.pareto_nbd(500, **PARETO, T=52.0, seed=1)
    assert selection.data_problem(x, t_x, T) is None


def _usable_fits_are_sane(fits: list[btyd.Fit]) -> None:
    lo, hi = btyd.PARAM_RANGE
    for f in fits:
        if f.usable:
            assert f.converged and math.isfinite(f.log_likelihood) and f.log_likelihood < 0, f
            assert all(lo <= v <= hi for v in f.params.values()), f
            assert all(se is not None and math.isfinite(se) for se in f.se.values()), f
        else:
            assert f.reason in (btyd.NOT_CONVERGED, btyd.AT_BOUNDARY, btyd.BAD_LIKELIHOOD, btyd.NOT_IDENTIFIED), f


def test_nearly_degenerate_data_never_gives_a_usable_absurd_fit() -> None:
    """Data that pass data_problem but cannot identify the models: 2 repeat buyers among 60 clients,
    and a company where everyone buys at the same rate and nobody leaves (r, α → ∞)."""
    x = np.r_[np.zeros(58), 3.0, 1.0]
    t_x = np.r_[np.zeros(58), 20.0, 4.0]
    T = np.r_[np.linspace(5, 50, 58), 30.0, 40.0]
    fits = selection.fit_candidates(x, t_x, T)
    _usable_fits_are_sane(fits)
    assert not any(f.usable for f in fits), [(f.model, f.params) for f in fits]

    rng = np.random.default_rng(4)
    T = rng.uniform(26, 78, 3000)
    x = rng.poisson(0.5 * T).astype(float)  # one rate for everyone: no heterogeneity, no dropout
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)  # the last of x uniform times
    fits = selection.fit_candidates(x, t_x, T)
    _usable_fits_are_sane(fits)
    pareto = fits[0]
    assert not pareto.usable and pareto.reason in (btyd.AT_BOUNDARY, btyd.NOT_IDENTIFIED), pareto


def test_judge_rejects_boundary_and_flat_fits() -> None:
    def flat(log_params: np.ndarray) -> float:
        return 1.0

    fit = btyd.Fit("pareto-nbd", {"r": 2.7e19, "alpha": 3.0, "s": 0.5, "beta": 2.0}, -100.0, 10, 0.0, True)
    btyd.judge(fit, flat, np.log(list(fit.params.values())), 10)
    assert not fit.usable and fit.reason == btyd.AT_BOUNDARY and "r = 2.7e+19" in fit.detail
    fit = btyd.Fit("pareto-nbd", {"r": 1.0, "alpha": 1e-7, "s": 0.5, "beta": 2.0}, -100.0, 10, 0.0, True)
    btyd.judge(fit, flat, np.log(list(fit.params.values())), 10)
    assert not fit.usable and fit.reason == btyd.AT_BOUNDARY and "alpha = 1e-07" in fit.detail
    fit = btyd.Fit("bg-nbd", {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0}, 0.0, 10, 0.0, True)
    btyd.judge(fit, flat, np.zeros(4), 10)
    assert not fit.usable and fit.reason == btyd.BAD_LIKELIHOOD
    fit = btyd.Fit("bg-nbd", {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0}, -5.0, 10, 0.0, True)
    btyd.judge(fit, flat, np.zeros(4), 10)  # converged (zero gradient) but flat: no maximum
    assert fit.converged and not fit.usable and fit.reason == btyd.NOT_IDENTIFIED
    assert all(v is None for v in fit.se.values())


# ---- standard errors -------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "params"), [("bg-nbd", BGNBD), ("pareto-nbd", PARETO)])
def test_standard_errors_match_the_spread_of_estimates(model, params) -> None:
    estimates, errors = [], []
    for seed in range(12):
        T = np.random.default_rng(100 + seed).integers(26, 79, 4000).astype(float)
        make = simulate.bg_nbd if model == "bg-nbd" else simulate.pareto_nbd
        x, t_x, T = make(4000, **params, T=T, seed=seed)
        (gx, gt, gT), w, _ = btyd.compress(x, np.round(t_x * 7) / 7, T)
        fit = selection.fit_candidates(gx, gt, gT, w, (model,))[0]
        assert fit.usable, (fit.reason, fit.detail)
        assert math.isfinite(fit.bic) and fit.bic == pytest.approx(4 * math.log(4000) - 2 * fit.log_likelihood)
        estimates.append(list(fit.params.values()))
        errors.append(list(fit.se.values()))
    spread = np.std(estimates, axis=0, ddof=1)
    mean_se = np.mean(errors, axis=0)
    ratio = mean_se / spread
    print(model, dict(zip(params, ratio.round(2), strict=True)))
    assert ((ratio > 0.5) & (ratio < 2.0)).all(), dict(zip(params, ratio, strict=True))


# ---- choosing --------------------------------------------------------------------------------


def _fake(model: str, bic: float, usable: bool = True) -> btyd.Fit:
    fit = btyd.Fit(model, dict.fromkeys(btyd.PARAMS[model], 1.0), -bic / 2, 100, 0.0, True)
    fit.bic = bic
    if not usable:
        fit.reject(btyd.AT_BOUNDARY, "r = 2.7e+19")
    return fit


def test_choose_by_holdout_then_bic() -> None:
    fits = [_fake("pareto-nbd", 100.0), _fake("bg-nbd", 90.0), _fake("mbg-nbd", 95.0)]
    chosen, why = selection.choose(fits)
    assert chosen.model == "bg-nbd" and chosen.extra["choice"]["by"] == "bic"
    assert why.startswith("BG/NBD: lowest BIC") and "100.0 (Pareto/NBD)" in why

    fits = [_fake("pareto-nbd", 100.0), _fake("bg-nbd", 90.0), _fake("mbg-nbd", 95.0)]
    chosen, why = selection.choose(fits, {"pareto-nbd": 0.21, "bg-nbd": 0.25, "mbg-nbd": 0.3})
    assert chosen.model == "pareto-nbd"
    assert why == "Pareto/NBD: lowest holdout error: 0.21 vs 0.25 (BG/NBD), 0.3 (MBG/NBD)"
    assert chosen.extra["choice"]["errors"] == {"pareto-nbd": 0.21, "bg-nbd": 0.25, "mbg-nbd": 0.3}
    json.dumps(chosen.extra["choice"])

    # a rejected fit is never chosen, even with the best holdout error; its reason is kept
    fits = [_fake("pareto-nbd", 100.0, usable=False), _fake("bg-nbd", 90.0), _fake("mbg-nbd", 95.0)]
    chosen, why = selection.choose(fits, {"pareto-nbd": 0.01, "bg-nbd": 0.25, "mbg-nbd": 0.2})
    assert chosen.model == "mbg-nbd" and "rejected: Pareto/NBD" in why
    assert chosen.extra["choice"]["rejected"] == {"pareto-nbd": [btyd.AT_BOUNDARY, "r = 2.7e+19"]}

    # equal holdout errors: the lower BIC; an error missing for a usable model: BIC for all
    fits = [_fake("pareto-nbd", 100.0), _fake("bg-nbd", 90.0)]
    assert selection.choose(fits, {"pareto-nbd": 0.2, "bg-nbd": 0.2})[0].model == "bg-nbd"
    fits = [_fake("pareto-nbd", 100.0), _fake("bg-nbd", 90.0)]
    assert selection.choose(fits, {"pareto-nbd": 0.1})[0].extra["choice"]["by"] == "bic"
    assert selection.choose([_fake("bg-nbd", 90.0, usable=False)]) [0] is None


def test_p_alive_and_expected_dispatch_on_the_model() -> None:
    x, t_x, T = np.array([0.0, 2.0, 5.0]), np.array([0.0, 10.0, 30.0]), np.array([40.0, 40.0, 40.0])
    pareto = btyd.Fit("pareto-nbd", PARETO, -1.0, 3, 0.0, True)
    bg = btyd.Fit("bg-nbd", BGNBD, -1.0, 3, 0.0, True)
    mbg = btyd.Fit("mbg-nbd", BGNBD, -1.0, 3, 0.0, True)
    np.testing.assert_array_equal(selection.p_alive(pareto, x, t_x, T), btyd.pareto_p_alive(PARETO, x, t_x, T))
    np.testing.assert_array_equal(selection.p_alive(bg, x, t_x, T), btyd.bgnbd_p_alive(BGNBD, x, t_x, T))
    np.testing.assert_array_equal(selection.p_alive(mbg, x, t_x, T), btyd.mbgnbd_p_alive(BGNBD, x, t_x, T))
    np.testing.assert_array_equal(selection.expected(mbg, 13.0, x, t_x, T),
                                  btyd.bgnbd_expected(BGNBD, 13.0, x, t_x, T, modified=True))
    np.testing.assert_array_equal(selection.expected(pareto, 0.0, x, t_x, T), np.zeros(3))
    with pytest.raises(ValueError):
        selection.p_alive(btyd.Fit("gamma-gamma", {}, -1.0, 3, 0.0, True), x, t_x, T)


# ---- the spend model -------------------------------------------------------------------------

SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def test_fit_spend_on_repeat_buyers_with_positive_spend() -> None:
    x, _t, _T = simulate.pareto_nbd(20_000, **PARETO, T=52.0, seed=2)
    m_x = simulate.gamma_gamma(x, **SPEND, seed=3)
    m_x[:50] = np.where(x[:50] > 0, 0.0, m_x[:50])  # refunded in full: left out, not a zero spend
    fit, warning, correlation = selection.fit_spend(x, m_x)
    assert fit is not None and fit.usable and fit.params["q"] > 1 and warning is None
    assert fit.clients == int(((x > 0) & (m_x > 0)).sum())
    assert abs(correlation) < 0.1  # independent by construction
    assert fit.params["q"] == pytest.approx(SPEND["q"], rel=0.25)


def test_fit_spend_refuses_q_at_most_one_and_warns_on_correlation() -> None:
    x, _t, _T = simulate.pareto_nbd(20_000, **PARETO, T=52.0, seed=2)
    heavy = simulate.gamma_gamma(x, p=6.25, q=0.7, gamma=15.44, seed=3)  # infinite mean spend
    fit, message, _corr = selection.fit_spend(x, heavy)
    assert fit is None and message == btyd.INFINITE_SPEND

    m_x = simulate.gamma_gamma(x, **SPEND, seed=3) * (1 + 0.3 * x)  # frequent buyers spend more
    fit, message, correlation = selection.fit_spend(x, m_x)
    assert correlation > selection.SPEND_CORRELATION_WARNING
    assert fit is not None and message == selection.SPEND_CORRELATED

    few = np.r_[np.ones(9), np.zeros(100)]
    assert selection.fit_spend(few, few * 10.0)[:2] == (None, selection.TOO_FEW_SPENDERS)
    same = np.r_[np.full(200, 2.0)]
    fit, message, _corr = selection.fit_spend(same, np.full(200, 25.0))  # no variation: not identifiable
    assert fit is None and message in (btyd.AT_BOUNDARY, btyd.NOT_IDENTIFIED, btyd.NOT_CONVERGED)
