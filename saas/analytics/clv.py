"""Customer lifetime value: expected purchases month by month, valued and discounted.

    CLV = Σ_{m=1..H} (E[X(m)] − E[X(m−1)]) · spend · margin / (1 + annual_rate)^(m/12)

E[X(m)] is the expected number of purchases in the first m months after the end of the history
(E[X(0)] = 0), spend the expected value of one purchase, margin the gross margin as a share of
revenue (1.0 = revenue), annual_rate the yearly discount rate. Purchases of month m are discounted
from the end of that month. The models run in weeks (or days): a month is 365.25 / 12 days, i.e.
365.25 / 12 / 7 weeks.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from saas.analytics import btyd, selection

Array = np.ndarray
DAYS_PER_MONTH = 365.25 / 12
WEEKS_PER_MONTH = DAYS_PER_MONTH / 7


def discounted_clv(expected_cum: Callable[[Any], Array] | Array, spend: Array | float, months: int = 12,
                   annual_rate: float = 0.10, margin: float = 1.0, unit_days: float = 7.0) -> Array:
    """The discounted sum above, per client.

    expected_cum: either a function of a horizon t (in model units: weeks when unit_days = 7)
    returning cumulative expected purchases per client in (T, T + t] (one marked `broadcasts` takes a
    column of horizons and returns months × clients at once), or a matrix whose row m − 1
    holds E[X(m)] for m = 1..months (shape months × clients)."""
    if months < 1 or annual_rate <= -1:
        raise ValueError("months must be ≥ 1 and annual_rate > −1")
    if callable(expected_cum) and getattr(expected_cum, "broadcasts", False):  # all the months in one call
        month = DAYS_PER_MONTH / unit_days
        cumulative = np.asarray(expected_cum(np.arange(1, months + 1)[:, None] * month), dtype=float)
    elif callable(expected_cum):
        month = DAYS_PER_MONTH / unit_days
        cumulative = np.array([np.asarray(expected_cum(m * month), dtype=float) for m in range(1, months + 1)])
    else:
        cumulative = np.asarray(expected_cum, dtype=float)
        if cumulative.shape[0] != months:
            raise ValueError(f"expected {months} rows of cumulative purchases, got {cumulative.shape[0]}")
    cumulative = cumulative.reshape(months, -1)
    per_month = np.diff(np.vstack([np.zeros((1, cumulative.shape[1])), cumulative]), axis=0)
    discount = (1.0 + annual_rate) ** (-np.arange(1, months + 1) / 12.0)
    purchases = discount @ per_month  # discounted expected purchases per client
    return purchases * np.asarray(spend, dtype=float) * margin


def model_clv(fit: btyd.Fit, x: Array, t_x: Array, T: Array, spend: Array | float, months: int = 12,
              annual_rate: float = 0.10, margin: float = 1.0, unit_days: float = 7.0) -> Array:
    """discounted_clv with E[X(m)] from a fitted purchase model (selection.expected)."""
    return discounted_clv(lambda t: selection.expected(fit, t, x, t_x, T), spend, months, annual_rate, margin,
                          unit_days)
