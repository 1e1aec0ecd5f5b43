"""Discounted CLV against sums written out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from saas.analytics import btyd, clv

BGNBD = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
PARETO = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}


def test_matrix_form_equals_the_hand_sum() -> None:
    # two clients, three months of cumulative expected purchases
    cumulative = np.array([[0.5, 0.0], [0.9, 0.1], [1.2, 0.1]])
    spend, rate, margin = np.array([100.0, 40.0]), 0.10, 0.3
    d = [1.1 ** (-1 / 12), 1.1 ** (-2 / 12), 1.1 ** (-3 / 12)]
    hand = [(0.5 * d[0] + 0.4 * d[1] + 0.3 * d[2]) * 100 * 0.3, (0.1 * d[1]) * 40 * 0.3]
    got = clv.discounted_clv(cumulative, spend, months=3, annual_rate=rate, margin=margin)
    assert got.tolist() == pytest.approx(hand, rel=1e-12)


def test_without_discount_it_is_expected_revenue() -> None:
    cumulative = np.array([[0.5], [0.9], [1.2]])
    assert clv.discounted_clv(cumulative, 100.0, months=3, annual_rate=0.0).tolist() == pytest.approx([120.0])
    assert clv.discounted_clv(cumulative, 100.0, months=3, annual_rate=0.0, margin=0.25).tolist() == pytest.approx(
        [30.0])


@pytest.mark.parametrize("unit_days", [7.0, 1.0])
def test_callable_in_weeks_or_days_equals_the_hand_sum(unit_days) -> None:
    """E[X(m)] from BG/NBD at m months = m · 365.25/12 days, written as an explicit loop."""
    params = {**BGNBD, "alpha": BGNBD["alpha"] * 7 / unit_days}  # the same process in the other unit
    x, t_x, T = np.array([0.0, 3.0, 10.0]), np.array([0.0, 20.0, 50.0]) * 7 / unit_days, np.full(3, 52 * 7 / unit_days)
    spend = np.array([30.0, 50.0, 70.0])
    hand = np.zeros(3)
    previous = np.zeros(3)
    for m in range(1, 25):
        t = m * 365.25 / 12 / unit_days
        cumulative = btyd.bgnbd_expected(params, t, x, t_x, T)
        hand += (cumulative - previous) * spend * 0.6 / 1.08 ** (m / 12)
        previous = cumulative
    got = clv.discounted_clv(lambda t: btyd.bgnbd_expected(params, t, x, t_x, T), spend, months=24,
                             annual_rate=0.08, margin=0.6, unit_days=unit_days)
    assert got.tolist() == pytest.approx(hand.tolist(), rel=1e-12)
    assert (got > 0).all()


def test_model_clv_uses_the_fitted_model_and_discounting_lowers_it() -> None:
    fit = btyd.Fit("pareto-nbd", PARETO, -1.0, 3, 0.0, True)
    x, t_x, T = np.array([1.0, 4.0]), np.array([10.0, 40.0]), np.array([52.0, 52.0])
    year = btyd.pareto_expected(PARETO, 365.25 / 7, x, t_x, T)
    flat = clv.model_clv(fit, x, t_x, T, 10.0, months=12, annual_rate=0.0)
    assert flat.tolist() == pytest.approx((year * 10.0).tolist(), rel=1e-12)
    discounted = clv.model_clv(fit, x, t_x, T, 10.0, months=12, annual_rate=0.10)
    # each month's purchases are discounted by between 1.1^(−1/12) and 1.1^(−1)
    assert ((discounted < flat * 1.1 ** (-1 / 12)) & (discounted > flat / 1.1)).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        clv.discounted_clv(np.zeros((2, 1)), 1.0, months=3)
    with pytest.raises(ValueError):
        clv.discounted_clv(np.zeros((3, 1)), 1.0, months=3, annual_rate=-1.0)
    with pytest.raises(ValueError):
        clv.discounted_clv(lambda t: np.zeros(2), 1.0, months=0)


def test_a_broadcasting_path_gives_the_month_by_month_sum_bit_for_bit() -> None:
    """Pareto/NBD's expected path takes every month at once (a live score's CLV in one numpy call
    instead of one per month); the sum is the one the month-by-month calls give."""
    from saas.analytics import forecast, selection

    rng = np.random.default_rng(3)
    x = rng.integers(0, 9, 40).astype(float)
    T = rng.uniform(1, 150, 40)
    t_x = T * rng.uniform(0, 1, 40) * (x > 0)
    for params in (PARETO, {**PARETO, "s": 1.0}):
        fit = btyd.Fit("pareto-nbd", params, float("nan"), 0, 0.0, True)
        path = forecast.expected_path(fit, x, t_x, T, selection.p_alive(fit, x, t_x, T))
        assert path.broadcasts  # type: ignore[attr-defined]
        at_once = clv.discounted_clv(path, 1.0, months=36, annual_rate=0.12)
        by_month = clv.discounted_clv(lambda t, path=path: path(t), 1.0, months=36, annual_rate=0.12)
        assert at_once.tolist() == by_month.tolist() and np.all(at_once > 0)


def test_one_row_is_its_own_group() -> None:
    """compress's shortcut for one row (live scoring) gives what the sorting ways give."""
    for row in ([3.0, 1.5, 20.0], [0.0, float("nan"), 7.0]):
        cols = [np.array([v]) for v in row]
        short, weights, inverse = btyd.compress(*cols)
        long_cols, long_weights, long_inverse = btyd._compress_lexsort(cols)
        for a, b in zip(short, long_cols, strict=True):
            np.testing.assert_array_equal(a, b)  # NaN equal to NaN
        assert weights.tolist() == long_weights.tolist() == [1.0] and weights.dtype == long_weights.dtype
        assert inverse.tolist() == long_inverse.tolist() == [0] and inverse.dtype == long_inverse.dtype
