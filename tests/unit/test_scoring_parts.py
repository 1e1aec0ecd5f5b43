"""The refresh's pure parts: status from the forecast, thresholds checked on the backtest, RFM
boundaries for live scoring, and the statistics' binary rows."""
from __future__ import annotations

import struct
from datetime import date

import numpy as np
import pytest

from saas.analytics import forecast, rfm, statistics
from saas.analytics import status as status_rules


def test_p_buy_is_the_nbd_chance_of_a_purchase_times_p_alive() -> None:
    params = {"r": 0.5, "alpha": 10.0}
    x, T = np.array([0.0, 4.0]), np.array([20.0, 30.0])
    alive = np.array([0.8, 0.5])
    got = status_rules.p_buy(params, 13.0, x, T, alive)
    # by hand: P(no purchase in 13 weeks | alive) = ((α+T)/(α+T+13))^(r+x)
    want = alive * (1 - ((10 + T) / (10 + T + 13)) ** (0.5 + x))
    assert got == pytest.approx(want, rel=1e-12)
    # more purchases in the same time, or a longer horizon, can only raise the chance
    assert status_rules.p_buy(params, 26.0, x, T, alive)[0] > got[0]
    assert status_rules.p_buy(params, 13.0, x + 3, T, alive)[0] > got[0]


def test_thresholds_follow_the_company_typical_chance() -> None:
    p_buy, alive = np.array([0.4, 0.2, 0.0]), np.array([1.0, 0.5, 0.0])
    assert status_rules.typical(p_buy, alive) == pytest.approx(0.6 / 1.5)
    limits = status_rules.thresholds(0.4, 0.5, 0.1)
    assert (limits["active_from"], limits["lost_below"]) == pytest.approx((0.2, 0.04))
    status = status_rules.classify(np.array([0.3, 0.1, 0.01, 0.9]), np.array([3, 3, 3, 1]),
                                   np.array([400, 400, 400, 30]), limits, 90)
    assert status.tolist() == ["active", "at_risk", "lost", "new"]
    # no purchase: new (a prospect); only returns: lost, never new
    out = status_rules.non_buyers(np.array(["x", "x"], dtype=object), np.array([0, 0]), np.array([0.0, 50.0]))
    assert out.tolist() == ["new", "lost"]


def test_company_thresholds_are_kept_when_they_order_the_backtest_and_replaced_when_not() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 20000)
    holdout = (rng.random(20000) < p).astype(float)  # p is the truth here
    n, first = np.full(20000, 3), np.full(20000, 400)
    limits, status, ordered = status_rules.choose_shares(p, np.ones(20000), n, first, holdout, 90, (0.4, 0.2))
    assert ordered and (limits["active_share"], limits["lost_share"]) == (0.4, 0.2)
    # "active" from five times the typical chance: nobody is active, so the order cannot hold; the
    # first fallback that gives three ordered groups is used instead
    limits, status, ordered = status_rules.choose_shares(p, np.ones(20000), n, first, holdout, 90, (5.0, 0.1))
    assert ordered and (limits["active_share"], limits["lost_share"]) == status_rules.FALLBACK_SHARES[0]
    assert status_rules.is_ordered(status_rules.shares(status, holdout))
    # a score unrelated to what happened orders nothing: reported, not hidden
    noise = rng.uniform(0, 1, 20000)
    random_holdout = (rng.random(20000) < 0.3).astype(float)
    shares = status_rules.shares(status_rules.classify(noise, n, first, status_rules.thresholds(0.5, 0.5, 0.1), 90),
                                 random_holdout)
    assert set(shares) == {"new", "active", "at_risk", "lost"}


def test_rule_status_uses_the_typical_gap() -> None:
    # three repeat buyers every 50 days set the typical gap; then one-time buyers last seen 80, 150
    # and 300 days ago (within 2, 4 and beyond 4 gaps), and one who bought for the first time 30 days ago
    n = np.array([5, 5, 5, 1, 1, 1, 1])
    first = np.array([400, 400, 400, 80, 150, 300, 30])
    last = np.array([200, 200, 200, 80, 150, 300, 30])
    gap = status_rules.typical_gap(n, first, last, 90)
    assert gap == pytest.approx(50.0)
    status = status_rules.rule_status(n, first, last, gap, 60)  # new: a first purchase within 60 days
    assert status[3:].tolist() == ["active", "at_risk", "lost", "new"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rfm_boundaries_give_the_scores_the_refresh_gave(seed: int) -> None:
    """Live scoring ranks a client against the boundaries the refresh stored: for every value in
    the company, that is exactly rfm.rfm_scores' quintile; a value between two is ranked with the
    lower one."""
    rng = np.random.default_rng(seed)
    n = 5000
    recency = rng.integers(0, 1000, n).astype(float)
    frequency = rng.poisson(2, n).astype(float) + 1
    monetary = np.round(rng.gamma(2, 500, n), 2)
    bought = rng.random(n) < 0.8
    r, f, m = rfm.rfm_scores(recency, frequency, monetary, bought)
    stored = forecast.rfm_bounds(recency, frequency, monetary, r, f, m, bought)
    live = forecast.rfm_live(recency, frequency, monetary, bought, stored)
    for ours, theirs in zip(live, (r, f, m), strict=True):
        assert (ours == theirs).all()
    # a new value just above the largest frequency scores 5; zero purchases' clients score 0
    r2, f2, m2 = forecast.rfm_live(np.array([0.0, 5.0]), np.array([1000.0, 1.0]), np.array([1e9, 1.0]),
                                   np.array([True, False]), stored)
    assert (r2[0], f2[0], m2[0]) == (5, 5, 5) and (r2[1], f2[1], m2[1]) == (0, 0, 0)


def test_rfm_boundaries_for_a_lone_buyer_give_the_middle() -> None:
    one = np.array([10.0])
    r, f, m = rfm.rfm_scores(one, one, one, np.array([True]))
    stored = forecast.rfm_bounds(one, one, one, r, f, m, np.array([True]))
    live = forecast.rfm_live(np.array([3.0]), np.array([7.0]), np.array([1.0]), np.array([True]), stored)
    assert [int(a[0]) for a in live] == [int(r[0]), int(f[0]), int(m[0])]


def test_statistics_rows_are_read_from_binary_copy() -> None:
    """Two rows in PostgreSQL's binary COPY format become the arrays; the weeks follow from the days."""
    sizes = {"int4": (">i", 4), "float8": (">d", 8), "int8": (">q", 8)}
    types = {name: sql_type for name, _e, sql_type in statistics._COLUMNS}

    def row(client_id: int, **values: float) -> bytes:
        out = struct.pack(">h", len(statistics.NAMES) + 1) + struct.pack(">iq", 8, client_id)
        for name in statistics.NAMES:
            code, size = sizes[types[name]]
            out += struct.pack(">i", size) + struct.pack(code, values.get(name, 0))
        return out

    first = {"n": 3, "first_age": 140, "last_age": 14, "n_cal": 2, "last_cal_age": 7, "gross": 300.0,
             "first_amount": 100.0, "returned": 20.0, "deals": 4, "payments": 2, "wa": 12.5, "months": 0b101,
             "years": 1, "quarters": 2 ** 63 - 1, "ytd_last": 1}
    second = {"first_age": -1, "last_age": -1, "last_cal_age": -1, "returned": 5.0, "returns": 1, "months": -(2 ** 63)}
    head = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    # two ranges of ids, each its own COPY stream (a big company's pass is split): one Stats in id order
    end = struct.pack(">h", -1)
    stats = statistics.parse([bytearray(head + row(7, **first) + end), bytearray(head + row(9, **second) + end)],
                             date(2026, 6, 30), date(2026, 3, 31))
    assert stats.ids.tolist() == [7, 9] and stats.holdout_days == 91
    assert stats.x.tolist() == [2.0, -1.0] and stats.bought.tolist() == [True, False]
    assert stats.T[0] == pytest.approx(20.0) and stats.t_x[0] == pytest.approx(18.0)
    assert stats.repeat_mean[0] == pytest.approx(100.0)  # (300 − 100) / 2 repeat purchases
    assert stats.revenue.tolist() == [280.0, -5.0]
    assert stats.holdout.tolist() == [1.0, 0.0]  # 3 purchase days, 2 by the cut-off
    assert stats.T_cal[0] == pytest.approx((140 - 91) / 7) and stats.t_x_cal[0] == pytest.approx((49 - 7) / 7)
    assert stats.deals.tolist() == [4, 0] and stats.factors["returns"].tolist() == [0, 1]
    assert stats.factors["payments"].tolist() == [2, 0] and stats.factors["wa"].tolist() == [12.5, 0.0]
    assert stats.months.tolist() == [5, -(2 ** 63)] and stats.quarters[0] == 2 ** 63 - 1
    assert stats.ytd_last.tolist() == [True, False]


def test_payment_sums_are_read_in_the_reliability_fields_order() -> None:
    from saas.analytics import payments, reliability

    assert tuple(name for name, _e, _t in payments.AGGREGATES) == reliability.FIELDS


def test_growth_lookup_counts_months_years_and_quarters_back() -> None:
    start, months, years, quarters = statistics.growth_lookup(date(2026, 2, 3))
    assert start == date(2026 - statistics.HISTORY_YEARS, 1, 1)
    day = lambda d: (d - start).days
    assert len(months) == day(date(2026, 2, 3)) + 1
    ago = lambda d: (months[day(d)], years[day(d)], quarters[day(d)])
    assert ago(date(2026, 2, 3)) == (0, 0, 0) and ago(date(2026, 1, 31)) == (1, 0, 0)
    assert ago(date(2025, 12, 31)) == (2, 1, 1) and ago(date(2025, 9, 30)) == (5, 1, 2)
    assert months[0] == statistics.OLDER and years[0] == statistics.HISTORY_YEARS


@pytest.mark.parametrize("model, params", [
    ("pareto-nbd", {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}),
    ("pareto-nbd", {"r": 0.8, "alpha": 5.0, "s": 1.0, "beta": 20.0}),  # s = 1: the logarithmic form
    ("bg-nbd", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}),
])
def test_clv_month_path_equals_the_model_expectation(model: str, params: dict) -> None:
    """forecast.expected_path (P(alive) once for all months) gives selection.expected's numbers."""
    from saas.analytics import btyd, selection

    fit = btyd.Fit(model, params, 0.0, 0, 0.0, True)
    x, t_x, T = np.array([0.0, 2.0, 10.0]), np.array([0.0, 15.0, 70.0]), np.array([30.0, 40.0, 80.0])
    path = forecast.expected_path(fit, x, t_x, T, selection.p_alive(fit, x, t_x, T))
    for weeks in (4.35, 26.1, 52.2):
        assert path(weeks) == pytest.approx(selection.expected(fit, weeks, x, t_x, T), rel=1e-10)


def test_a_fit_started_from_yesterdays_parameters_is_the_same_fit() -> None:
    """The refresh starts each fit from the last refresh's (selection.fit_candidates' `starts`):
    from the optimum it ends at the same optimum; from a start that leads nowhere usable, it is
    fitted again from the default start, so a start never changes the outcome."""
    from saas.analytics import btyd, selection, simulate

    T = np.random.default_rng(3).uniform(26, 156, 3000)
    x, t_x, T = simulate.pareto_nbd(3000, 0.55, 10.58, 0.61, 11.67, T, seed=3)
    (gx, gt, gT), w, _inverse = btyd.compress(x, np.round(t_x), np.round(T))
    for model in selection.PURCHASE_MODELS:
        cold = selection.fit_candidates(gx, gt, gT, w, (model,))[0]
        assert cold.usable, model
        far = dict.fromkeys(cold.params, 1e9)  # beyond btyd.PARAM_RANGE
        for start in (cold.params, far):
            warm = selection.fit_candidates(gx, gt, gT, w, (model,), {model: start})[0]
            assert warm.usable and warm.log_likelihood == pytest.approx(cold.log_likelihood, rel=1e-9), model
            for name, value in cold.params.items():  # tolerance: the optimiser's, on a flat optimum
                assert warm.params[name] == pytest.approx(value, rel=1e-3), (model, name)
