"""RFM cells and quintiles, the reliability score and its reason, growth per year and cohorts.

Expected numbers are computed here by hand (or by plain Python from an explicit history), not by
calling the code under test a second time.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.analytics import growth, reliability, rfm

# ---- RFM -------------------------------------------------------------------------------------

CELLS = np.array(list(itertools.product(range(1, 6), repeat=3)))


def test_each_of_the_125_cells_has_exactly_one_segment() -> None:
    r, f, m = CELLS.T
    hits = np.array([np.asarray(rule(r, f, m), dtype=bool) for rule in rfm.SEGMENTS.values()])  # segment × cell
    per_cell = hits.sum(axis=0)
    bad = [(tuple(cell), [name for name, h in zip(rfm.SEGMENTS, hits[:, i], strict=True) if h])
           for i, cell in enumerate(CELLS) if per_cell[i] != 1]
    assert not bad, f"cells without exactly one segment: {bad}"
    assert len(CELLS) == 125
    assert set(rfm.segment_of(r, f, m)) <= set(rfm.SEGMENTS) and "" not in set(rfm.segment_of(r, f, m))
    # every segment is reachable
    assert hits.any(axis=1).all(), [n for n, h in zip(rfm.SEGMENTS, hits.any(axis=1), strict=True) if not h]


@pytest.mark.parametrize(("cell", "segment"), [
    ((5, 5, 5), "champions"), ((4, 4, 3), "loyal"), ((5, 3, 1), "potential_loyalists"), ((5, 1, 5), "new"),
    ((4, 2, 2), "promising"), ((3, 5, 1), "need_attention"), ((3, 3, 3), "about_to_sleep"),
    ((1, 5, 5), "cant_lose"), ((2, 4, 4), "at_risk"), ((1, 3, 5), "at_risk"), ((2, 1, 5), "hibernating"),
    ((1, 1, 1), "lost"),
])
def test_segment_of_known_cells(cell, segment) -> None:
    r, f, m = (np.array([v]) for v in cell)
    assert rfm.segment_of(r, f, m)[0] == segment


def test_quintile_of_distinct_values_spans_one_to_five_in_equal_fifths() -> None:
    scores = rfm.quintile(np.arange(100.0))
    assert scores.min() == 1 and scores.max() == 5
    assert np.bincount(scores, minlength=6)[1:].tolist() == [20, 20, 20, 20, 20]
    assert (np.diff(scores) >= 0).all()
    # lower is better (recency in days): the most recent gets 5
    rec = rfm.quintile(np.array([1.0, 400.0, 30.0, 90.0, 7.0]), higher_is_better=False)
    assert rec.tolist() == [5, 1, 3, 2, 4]
    assert rfm.quintile(np.array([])).tolist() == []
    assert rfm.quintile(np.array([3.0])).tolist() == [1]


def test_quintile_gives_ties_the_same_score() -> None:
    # a thousand one-time buyers are not split across scores at random
    values = np.r_[np.ones(1000), np.arange(2.0, 202.0)]
    scores = rfm.quintile(values)
    assert set(scores[:1000].tolist()) == {1}
    assert scores[-1] == 5
    assert rfm.quintile(np.full(7, 4.0)).tolist() == [1] * 7


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60), st.booleans())
def test_quintile_properties(values, higher_is_better) -> None:
    v = np.array(values, dtype=float)
    q = rfm.quintile(v, higher_is_better=higher_is_better)
    assert ((q >= 1) & (q <= 5)).all()
    key = v if higher_is_better else -v
    same, below = key[:, None] == key[None, :], key[:, None] < key[None, :]
    assert (q[:, None] == q[None, :])[same].all()  # ties share a score
    assert (q[:, None] <= q[None, :])[below].all()  # better never scores lower
    if len(set(values)) == len(values) >= 5:
        assert set(q.tolist()) == {1, 2, 3, 4, 5}


# ---- reliability -----------------------------------------------------------------------------


def _factors(**columns) -> dict[str, np.ndarray]:
    base = {"payments": 0, "late": 0, "avg_days_late": 0.0, "days_late_std": 0.0, "overdue": 0.0,
            "overdue_age": 0.0, "gross": 0.0, "returns": 0, "deals": 0}
    base.update(columns)
    return {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in base.items()}


ON_TIME = {"payments": 5, "late": 0, "gross": 60_000.0, "deals": 5}
# 3 of 5 payments late by 45 days each (spread 0), 12,000 of 60,000 overdue for 40 days, no returns.
LATE = {"payments": 5, "late": 3, "avg_days_late": 45.0, "days_late_std": 0.0, "overdue": 12_000.0,
        "overdue_age": 40.0, "gross": 60_000.0, "returns": 0, "deals": 5}
# By the documented formula with the default weights:
#   late      35 × 3/5           = 21
#   days_late 20 × 45/60         = 15
#   overdue   20 × 12000/60000   =  4
#   age       10 × 40/90         =  4.444…
#   returns, irregular             0
# 100 − 44.444… = 55.56 → 56 points: 'watch' (50 ≤ 56 < 80).
LATE_LOST = 21 + 15 + 4 + 40 / 9
LATE_POINTS = 56


def test_always_on_time_without_returns_scores_100_reliable() -> None:
    points, group, lost = reliability.score(_factors(**ON_TIME))
    assert points.tolist() == [100] and group.tolist() == ["reliable"]
    assert all(float(v[0]) == 0.0 for v in lost.values())


def test_late_payer_scores_by_the_formula() -> None:
    assert round(100 - LATE_LOST) == LATE_POINTS
    points, group, lost = reliability.score(_factors(**LATE))
    assert points.tolist() == [LATE_POINTS]
    assert group[0] in ("watch", "risk") and group[0] == "watch"
    assert lost["late"][0] == pytest.approx(21.0)
    assert lost["days_late"][0] == pytest.approx(15.0)
    assert lost["overdue"][0] == pytest.approx(4.0)
    assert lost["age"][0] == pytest.approx(40 / 9)
    assert lost["returns"][0] == 0 and lost["irregular"][0] == 0


def test_scores_are_vectorised_and_factors_saturate() -> None:
    f = _factors(payments=[5, 5, 0, 4], late=[0, 3, 0, 4], avg_days_late=[0, 45, 0, 200],
                 days_late_std=[0, 0, 0, 90], overdue=[0, 12_000, 0, 500_000], overdue_age=[0, 40, 0, 365],
                 gross=[60_000, 60_000, 10_000, 100_000], returns=[0, 0, 1, 10], deals=[5, 5, 4, 2])
    points, group, _lost = reliability.score(f)
    # client 3: no deferred payments, pays only for returns: 10 × 1/4 = 2.5 → 97.5 → 98 (round half to even)
    # client 4: every factor saturated (shares clipped to 1, days to their saturation) → 0
    assert points.tolist() == [100, LATE_POINTS, 98, 0]
    assert group.tolist() == ["reliable", "watch", "reliable", "risk"]


def test_weights_and_bands_are_honoured() -> None:
    f = _factors(**LATE)
    # late weighs 70: 70 × 3/5 = 42 → 100 − (42 + 15 + 4 + 4.444) = 34.56 → 35, 'risk'
    points, group, lost = reliability.score(f, weights={"late": 70.0})
    assert points.tolist() == [35] and group.tolist() == ["risk"] and lost["late"][0] == pytest.approx(42.0)
    # a weight of zero removes the factor: 100 − (21 + 15 + 4) = 60
    assert reliability.score(f, weights={"age": 0.0})[0].tolist() == [60]
    assert reliability.score(f, bands={"watch": 60.0})[1].tolist() == ["risk"]
    assert reliability.score(f, bands={"reliable": 56.0})[1].tolist() == ["reliable"]
    assert reliability.score(f, bands={"reliable": 57.0})[1].tolist() == ["watch"]


def _translate(msgid: str, **params) -> str:
    return msgid % params


def _money(v: float) -> str:
    return f"{v:.0f} ₽"


def test_reason_lists_the_factors_biggest_first() -> None:
    factors = {"payments": 5, "late": 3, "late30_last": 3, "last_n": 5, "p_late": 21.0,
               "overdue": 12_000, "overdue_age": 40, "p_overdue": 4.0, "p_age": 40 / 9}
    assert reliability.reason(factors, _money, _translate) == (
        "3 of the last 5 payments were more than 30 days late; 12000 ₽ overdue for 40 days")
    # the overdue debt outweighs the lateness: it comes first
    heavy = {**factors, "p_late": 7.0, "p_overdue": 20.0, "p_age": 10.0, "returns": 2, "deals": 10, "p_returns": 2.0}
    assert reliability.reason(heavy, _money, _translate) == (
        "12000 ₽ overdue for 40 days; 3 of the last 5 payments were more than 30 days late; 2 returns out of 10 deals")


def test_reason_without_problems_and_with_mild_lateness() -> None:
    assert reliability.reason({"payments": 7}, _money, _translate) == "All 7 payments on time"
    assert reliability.reason({}, _money, _translate) == "No deferred payments recorded"
    assert reliability.reason({"payments": 5, "late": 2, "p_late": 14.0}, _money, _translate) == (
        "2 of 5 payments were late")


# ---- growth ----------------------------------------------------------------------------------

# Purchase years per client, chosen so that every kind of movement happens.
HISTORY = {
    "a": {2019, 2020, 2021, 2022, 2023, 2024},  # always there
    "b": {2019, 2021, 2022},                    # gap in 2020: reactivated in 2021, lost in 2023
    "c": {2019},                                # lost in 2020
    "d": {2020, 2021, 2024},                    # reactivated in 2024
    "e": {2020, 2022, 2023},                    # reactivated in 2022, lost 2021 and 2024
    "f": {2021, 2022, 2023, 2024},
    "g": {2022},
    "h": {2023, 2024},
    "i": {2024},
}
CURRENT_YEAR = 2024


def _rows(history: dict[str, set[int]]) -> list[tuple[int, int, int, int, int]]:
    years = sorted(set().union(*history.values()))
    rows = []
    for y in range(years[0], years[-1] + 1):
        active = [c for c, ys in history.items() if y in ys]
        new = [c for c in active if min(history[c]) == y]
        retained = [c for c in active if y - 1 in history[c]]
        reactivated = [c for c in active if c not in new and y - 1 not in history[c]]
        if active:
            rows.append((y, len(active), len(new), len(retained), len(reactivated)))
    return rows


def test_rows_built_from_the_history() -> None:
    assert _rows(HISTORY) == [
        (2019, 3, 3, 0, 0), (2020, 3, 2, 1, 0), (2021, 4, 1, 2, 1),
        (2022, 5, 1, 3, 1), (2023, 4, 1, 3, 0), (2024, 5, 1, 3, 1)]


def test_periods_new_active_lost_net_rate() -> None:
    out = growth.periods(_rows(HISTORY))
    assert [p.key for p in out] == list(range(2019, 2025))
    for p in out:
        active_now = {c for c, ys in HISTORY.items() if p.key in ys}
        active_before = {c for c, ys in HISTORY.items() if p.key - 1 in ys}
        assert p.active == len(active_now)
        assert p.new == len({c for c in active_now if min(HISTORY[c]) == p.key})
        assert p.lost == len(active_before - active_now)
        assert p.net == len(active_now) - len(active_before)
        assert p.net == p.new + p.reactivated - p.lost
        if active_before:
            assert p.rate == pytest.approx(len(active_now) / len(active_before) - 1)
        else:
            assert p.rate is None
    # by hand
    assert [(p.active, p.new, p.lost, p.net) for p in out] == [
        (3, 3, 0, 3), (3, 2, 2, 0), (4, 1, 1, 1), (5, 1, 1, 1), (4, 1, 2, -1), (5, 1, 1, 1)]
    assert [p.rate for p in out[1:]] == pytest.approx([0.0, 1 / 3, 0.25, -0.2, 0.25])


def test_summary_over_complete_years() -> None:
    s = growth.summary(growth.periods(_rows(HISTORY)), CURRENT_YEAR)
    # complete years 2019..2023 (2024 is running): active 3 → 4 over 4 years
    assert (s.first_year, s.last_year) == (2019, 2023)
    assert s.cagr == pytest.approx((4 / 3) ** (1 / 4) - 1)
    assert s.cagr == pytest.approx(0.074570, abs=1e-6)
    # yearly rates 2020..2023: 0, +1/3, +1/4, −1/5
    assert s.mean_rate == pytest.approx((0 + 1 / 3 + 0.25 - 0.2) / 4)
    assert s.mean_rate == pytest.approx(0.0958333, abs=1e-6)
    # one complete year is not enough
    assert growth.summary(growth.periods(_rows(HISTORY)), 2020) == growth.GrowthSummary(None, None, None, None)


def test_gap_years_are_filled_with_zeros() -> None:
    out = growth.periods([(2018, 2, 2, 0, 0), (2020, 1, 0, 0, 1)])
    assert [(p.key, p.active, p.lost, p.net, p.rate) for p in out] == [
        (2018, 2, 0, 2, None), (2019, 0, 2, -2, -1.0), (2020, 1, 0, 1, None)]
    s = growth.summary(out, 2021)
    assert s.cagr == pytest.approx(math.sqrt(0.5) - 1) and s.mean_rate == pytest.approx(-1.0)


def test_cohort_matrix_shares() -> None:
    # purchase quarters (year*4 + quarter-1) per client
    q = 2023 * 4
    history = {
        "a": {q, q + 1, q + 2}, "b": {q, q + 2}, "c": {q}, "d": {q, q + 1},
        "e": {q + 1, q + 2}, "f": {q + 1},
    }
    counts: dict[tuple[int, int], int] = {}
    for quarters in history.values():
        first = min(quarters)
        for quarter in quarters:
            counts[(first, quarter - first)] = counts.get((first, quarter - first), 0) + 1
    rows = [(c, k, n) for (c, k), n in sorted(counts.items())]
    assert growth.cohort_matrix(rows) == [
        (q, 4, [1.0, 0.5, 0.5]),   # a, b, c, d; two back in the next quarter (a, d), two after (a, b)
        (q + 1, 2, [1.0, 0.5]),    # e, f; e comes back
    ]
    assert growth.quarter_label(q) == "2023 Q1" and growth.quarter_label(q + 3) == "2023 Q4"
