"""RFM cells and quintiles (among buyers), the reliability score and its reason, growth and cohorts.

Expected numbers are computed here by hand (or by plain Python from an explicit history), not by
calling the code under test a second time.
"""
from __future__ import annotations

import itertools
import math
from datetime import date

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
    assert rfm.quintile(np.array([3.0])).tolist() == [3]  # a lone buyer is in the middle, not "worst"


def test_quintile_gives_ties_the_same_score() -> None:
    # a thousand one-time buyers are not split across scores at random
    values = np.r_[np.ones(1000), np.arange(2.0, 202.0)]
    scores = rfm.quintile(values)
    assert set(scores[:1000].tolist()) == {1}
    assert scores[-1] == 5
    # all equal: nothing tells them apart, everyone gets the middle score
    assert rfm.quintile(np.full(7, 4.0)).tolist() == [3] * 7
    # fewer than MIN_BUYERS (5) buyers: the middle score, whatever the values
    assert rfm.quintile(np.array([1.0, 50.0, 400.0, 9.0])).tolist() == [3] * 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60), st.booleans())
def test_quintile_properties(values, higher_is_better) -> None:
    v = np.array(values, dtype=float)
    q = rfm.quintile(v, higher_is_better=higher_is_better)
    assert ((q >= 1) & (q <= 5)).all()
    if len(v) < rfm.MIN_BUYERS or len(set(values)) == 1:
        assert set(q.tolist()) == {3}
    key = v if higher_is_better else -v
    same, below = key[:, None] == key[None, :], key[:, None] < key[None, :]
    assert (q[:, None] == q[None, :])[same].all()  # ties share a score
    assert (q[:, None] <= q[None, :])[below].all()  # better never scores lower
    if len(set(values)) == len(values) >= 5:
        assert set(q.tolist()) == {1, 2, 3, 4, 5}




def test_a_lone_buyer_is_not_lost_and_prospects_are_their_own_segment() -> None:
    # one buyer (bought 400 days ago, once, 1 000 ₽) and two clients who never bought
    bought = np.array([True, False, False])
    r, f, m = rfm.rfm_scores(np.array([400.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([1000.0, 0, 0]), bought)
    assert (r.tolist(), f.tolist(), m.tolist()) == ([3, 0, 0], [3, 0, 0], [3, 0, 0])
    segments = rfm.segment_of(r, f, m, bought).tolist()
    assert segments == ["about_to_sleep", "prospects", "prospects"]
    assert segments[0] != "lost"


def test_adding_as_many_prospects_as_buyers_changes_no_buyer() -> None:
    rng = np.random.default_rng(5)
    n = 400
    recency = rng.integers(1, 1000, n).astype(float)
    frequency = rng.geometric(0.4, n).astype(float)
    monetary = rng.gamma(2.0, 3000.0, n).round(2)
    alone = rfm.rfm_scores(recency, frequency, monetary, np.ones(n, dtype=bool))
    alone_segments = rfm.segment_of(*alone)
    # the same buyers, interleaved with n prospects whose figures are what a naive query would give them
    # (never bought: recency "infinite", frequency 0, revenue 0)
    order = rng.permutation(2 * n)
    rec2 = np.r_[recency, np.full(n, 1e9)][order]
    freq2 = np.r_[frequency, np.zeros(n)][order]
    mon2 = np.r_[monetary, np.zeros(n)][order]
    bought2 = np.r_[np.ones(n, dtype=bool), np.zeros(n, dtype=bool)][order]
    mixed = rfm.rfm_scores(rec2, freq2, mon2, bought2)
    mixed_segments = rfm.segment_of(*mixed, bought2)
    back = np.argsort(order)[:n]  # where each original buyer went
    for before, after in zip(alone, mixed, strict=True):
        assert after[back].tolist() == before.tolist()
    assert mixed_segments[back].tolist() == alone_segments.tolist()
    assert set(mixed_segments[~bought2].tolist()) == {"prospects"}
    assert all((s[~bought2] == 0).all() for s in mixed)
    # and the buyers' scores use the whole 1–5 range (not squeezed into 3–5 by the prospects)
    assert set(mixed[0][bought2].tolist()) == {1, 2, 3, 4, 5}


# ---- reliability -----------------------------------------------------------------------------
# The reference below is the docstring's definition written out in plain Python, payment by
# payment; the expected points in each test are worked out by hand in its comments.

DAY_WEIGHT = lambda age: 0.5 ** (age / 180)


def _sums(payments: list[tuple[float, int, int | None]], returns: int = 0, deals: int | None = None) -> dict:
    """payments: (amount, due N days ago, paid M days ago or None while unpaid)."""
    f = dict.fromkeys(reliability.FIELDS, 0.0)
    for amount, due_ago, paid_ago in payments:
        if paid_ago is None and due_ago <= 0:
            continue  # not due yet
        a = max(amount, 0.0)
        d = max(0, due_ago - (paid_ago if paid_ago is not None else 0))
        w = DAY_WEIGHT(max(due_ago, 0))
        f["payments"] += 1
        f["late"] += d > 0
        f["wa"] += w * a
        f["wa_terms"] += w * a * min(d, 90)
        f["wa_days"] += w * a * d
        f["w"] += w
        f["w_terms"] += w * min(d, 90)
        f["w_days"] += w * d
        f["due_amount"] += a
        if paid_ago is None:
            f["overdue"] += a
            f["overdue_days"] += a * due_ago
            f["overdue_items"] += 1
    f["returns"], f["deals"] = returns, len(payments) if deals is None else deals
    return f


def _score(*clients: dict, **kw):
    arrays = {k: np.array([c[k] for c in clients], dtype=float) for k in reliability.FIELDS}
    return reliability.score(arrays, **kw)


def test_twenty_payments_a_day_late_beat_two_of_twenty_ninety_days_late_with_large_amounts() -> None:
    habitual = _sums([(1000.0, 30, 29)] * 20)  # each paid one day after its due date
    # 18 × 1 000 on time and 2 × 10 000 paid 90 days late, all due 120 days ago (equal recency weights)
    two_late = _sums([(1000.0, 120, 120)] * 18 + [(10_000.0, 120, 30)] * 2)
    points, groups, lost = _score(habitual, two_late)
    # habitual: money-days beyond terms 1 of a possible 90 → 60 × 1/90 = 0.667 points → 99
    # two late: 20 000 × 90 / (90 × 38 000) = 0.5263 → 60 × 0.5263 = 31.58 points → 68.42 → 68
    assert lost["beyond_terms"].tolist() == pytest.approx([60 / 90, 60 * 20_000 / 38_000])
    assert points.tolist() == [99, 68]
    assert groups.tolist() == ["reliable", "watch"]


def test_one_payment_one_day_late_costs_well_under_a_point_and_is_not_enough_history() -> None:
    points, groups, lost = _score(_sums([(5000.0, 10, 9)]))
    assert lost["beyond_terms"][0] == pytest.approx(60 / 90)  # not 35 points
    assert points.tolist() == [99]
    assert groups.tolist() == ["unknown"]


def test_no_deferred_payment_is_not_enough_history_not_reliable() -> None:
    nothing = _sums([], deals=4)
    two_on_time = _sums([(1000.0, 40, 40), (1000.0, 10, 12)])  # paid on time and two days early
    three_on_time = _sums([(1000.0, 40, 40), (1000.0, 10, 12), (1000.0, 5, 5)])
    points, groups, _lost = _score(nothing, two_on_time, three_on_time)
    assert points.tolist() == [100, 100, 100]
    assert groups.tolist() == ["unknown", "unknown", "reliable"]  # 3 = MIN_PAYMENTS is enough


def test_a_serious_breach_is_the_risk_group_even_with_little_history() -> None:
    # one 5 000 debt, unpaid 120 days after its due date:
    # beyond terms min(120, 90)/90 = 1 → 60; overdue share 1 → 25; age 120/180 → 15 × 2/3 = 10 → 95 lost → 5
    points, groups, lost = _score(_sums([(5000.0, 120, None)]))
    assert [lost[k][0] for k in ("beyond_terms", "overdue_share", "overdue_age")] == pytest.approx([60, 25, 10])
    assert points.tolist() == [5] and groups.tolist() == ["risk"]


def test_recent_payments_count_more_than_old_ones() -> None:
    # both: three on-time payments and one paid 60 days late, all 1 000
    old_late = _sums([(1000.0, 0, 0)] * 3 + [(1000.0, 360, 300)])   # the late one due a year ago: w = 1/4
    new_late = _sums([(1000.0, 360, 360)] * 3 + [(1000.0, 60, 0)])  # the late one due 60 days ago
    points, groups, _lost = _score(old_late, new_late)
    # old_late: 0.25 × 60 / (90 × (3 + 0.25)) = 0.05128 → 60 × 0.05128 = 3.08 → 96.92 → 97
    w = 0.5 ** (60 / 180)  # 0.7937
    # new_late: w × 60 / (90 × (w + 3 × 0.25)) = 0.3428 → 20.57 → 79.43 → 79
    assert points.tolist() == [97, round(100 - 60 * w * 60 / (90 * (w + 0.75)))] == [97, 79]
    assert groups.tolist() == ["reliable", "watch"]


def test_overdue_debt_counts_by_amount_and_age() -> None:
    # four 1 000 payments on time, due today, and 2 000 unpaid 45 days after its due date
    f = _sums([(1000.0, 0, 0)] * 4 + [(2000.0, 45, None)])
    w = 0.5 ** (45 / 180)  # 0.8409
    terms = w * 2000 * 45 / (90 * (4000 + w * 2000))  # 0.1480 → 8.88 points
    share = 2000 / 6000                               # → 8.33 points
    age = 45 / 180                                    # → 3.75 points
    points, groups, lost = _score(f)
    assert lost["beyond_terms"][0] == pytest.approx(60 * terms)
    assert lost["overdue_share"][0] == pytest.approx(25 * share)
    assert lost["overdue_age"][0] == pytest.approx(15 * age)
    assert points.tolist() == [round(100 - 60 * terms - 25 * share - 15 * age)] == [79]
    assert groups.tolist() == ["watch"]
    # the same debt twice as old (90 days) costs more
    older = _score(_sums([(1000.0, 0, 0)] * 4 + [(2000.0, 90, None)]))[0][0]
    assert older < points[0]


def test_returns_are_not_in_the_payment_score() -> None:
    payments = [(1000.0, 30, 30)] * 5
    points, groups, _lost = _score(_sums(payments, returns=0), _sums(payments, returns=4))
    assert points.tolist() == [100, 100] and groups.tolist() == ["reliable", "reliable"]


def test_zero_amounts_fall_back_to_counting_payments() -> None:
    # three zero-amount payments, one 30 days late, same due date: 60 × (30/90) / 3 = 6.67 → 93
    points, _groups, lost = _score(_sums([(0.0, 50, 50), (0.0, 50, 50), (0.0, 50, 20)]))
    assert lost["beyond_terms"][0] == pytest.approx(60 * 30 / 90 / 3)
    assert points.tolist() == [93]


def test_weights_and_bands_are_honoured() -> None:
    two_late = _sums([(1000.0, 120, 120)] * 18 + [(10_000.0, 120, 30)] * 2)
    # all weight on days beyond terms: 100 × 0.5263 = 52.6 → 47, risk group
    points, groups, _lost = _score(two_late, weights={"beyond_terms": 100.0, "overdue_share": 0.0,
                                                      "overdue_age": 0.0})
    assert points.tolist() == [47] and groups.tolist() == ["risk"]
    assert _score(two_late, bands={"reliable": 68.0})[1].tolist() == ["reliable"]
    assert _score(two_late, bands={"watch": 69.0, "reliable": 80.0})[1].tolist() == ["risk"]


def test_settings_require_weights_that_sum_to_100() -> None:
    from saas.analytics import settings as analytics_settings
    from saas.core.errors import FormError

    def weight_errors(form: dict) -> dict:
        """The reliability weights' errors only (the rest of the form is other settings' business)."""
        try:
            values = analytics_settings.check(form)
        except FormError as exc:
            return {k: v for k, v in exc.errors.items() if k.startswith("w_")}
        assert values["weights"] == {k: float(form[f"w_{k}"]) for k in reliability.DEFAULT_WEIGHTS}
        return {}

    good = {"band_reliable": "80", "band_watch": "50", "w_beyond_terms": "50", "w_overdue_share": "30",
            "w_overdue_age": "20"}
    assert weight_errors(good) == {}
    bad = weight_errors({**good, "w_overdue_age": "25"})
    assert list(bad) == ["w_beyond_terms"] and "100" in bad["w_beyond_terms"] and "105" in bad["w_beyond_terms"]
    # weights saved for the earlier formula give way to the defaults
    assert analytics_settings.reliability_weights({"late": 35, "days_late": 20, "overdue": 20}) == \
        reliability.DEFAULT_WEIGHTS
    assert analytics_settings.reliability_weights({"beyond_terms": 70, "overdue_share": 15}) == {
        "beyond_terms": 70, "overdue_share": 15, "overdue_age": 15}


def _translate(msgid: str, **params) -> str:
    return msgid % params


def _plural(singular: str, plural: str, n: int, **params) -> str:
    return (singular if n == 1 else plural) % {"num": n, **params}


WORDS = {"money": lambda v: f"{v:,.0f} ₽".replace(",", " "), "number": lambda v: f"{v:,}".replace(",", " "),
         "translate": _translate, "plural": _plural}


def _factors(*clients: dict) -> list[tuple[dict, str]]:
    _points, groups, lost = _score(*clients)
    kept = reliability.stored_factors({k: np.array([c[k] for c in clients], dtype=float)
                                       for k in reliability.FIELDS}, lost)
    return [({k: v[i].item() for k, v in kept.items()}, str(groups[i])) for i in range(len(clients))]


def test_reasons_biggest_loss_first_in_the_readers_formats() -> None:
    (late, g1), (debt, g2), (fine, g3), (none, g4), (one, g5) = _factors(
        _sums([(1000.0, 120, 120)] * 18 + [(10_000.0, 120, 30)] * 2),
        _sums([(1000.0, 0, 0)] * 4 + [(2000.0, 45, None), (1500.0, 95, None)]),
        _sums([(1000.0, 30, 30)] * 1200),
        _sums([]),
        _sums([(5000.0, 10, 9)]),
    )
    assert reliability.reason(late, g1, **WORDS) == "Late: 2 of 20, 47 days beyond terms on average"
    # the unpaid debt alone: its lateness is the debt itself, so it is said once
    assert reliability.reason(debt, g2, **WORDS) == "3 500 ₽ overdue in 2 payments, 66 days on average"
    # add a 1 000 payment paid 30 days late (due 100 days ago). w45 = 0.8409, w95 = 0.6936, w100 = 0.6804;
    # Σw·a = 4000 + 1681.8 + 1040.4 + 680.4 = 7402.6
    # lateness: 60 × (w45·2000·45 + w95·1500·90 + w100·1000·30) / (90 × 7402.6) = 60 × 189 726 / 666 230 = 17.1
    # debt: 25 × 3500/8500 = 10.29 + 15 × 66.4/180 = 5.54 → 15.8, so the lateness comes first;
    # days beyond terms (75 681 + w95·1500·95 + 20 412) / 7402.6 = 26.3 → 26
    (both, g6), = _factors(_sums([(1000.0, 0, 0)] * 4 + [(2000.0, 45, None), (1500.0, 95, None), (1000.0, 100, 70)]))
    assert reliability.reason(both, g6, **WORDS) == (
        "Late: 3 of 7, 26 days beyond terms on average; 3 500 ₽ overdue in 2 payments, 66 days on average")
    assert reliability.reason(fine, g3, **WORDS) == "1 200 payments, all on time"
    assert reliability.reason(none, g4, **WORDS) == "No deferred payments yet: not enough history to judge"
    assert reliability.reason(one, g5, **WORDS) == (
        "Only 1 deferred payment: not enough history to judge; late: 1 of 1, 1 day beyond terms on average")
    assert reliability.returns_note({"returns": 3, "deals": 12}, number=WORDS["number"], translate=_translate) == (
        "Returns: 3; purchases: 12")
    assert reliability.returns_note({"returns": 0, "deals": 12}, number=WORDS["number"], translate=_translate) == ""


def test_reasons_are_in_russian_for_a_russian_reader() -> None:
    from saas.core import i18n

    i18n.set_locale("ru")
    try:
        score = type("S", (), {"risk_group": "watch", "risk_factors": {
            "payments": 5, "late": 2, "days_beyond_terms": 21.4, "overdue": 12000.0, "overdue_items": 1,
            "overdue_age": 40, "p_terms": 14.3, "p_overdue": 5.0, "p_age": 3.3}})()
        from saas.analytics.present import reliability_reason

        text = reliability_reason(score, "RUB")
    finally:
        i18n.set_locale("en")
    assert text == "Не в срок: 2 из 5, в среднем 21 день сверх срока; 12\xa0000,00\xa0₽ просрочено на 40 дней"

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
    # the history starts in January 2019, so 2019 is a complete year; 2024 is running
    years = growth.yearly(_rows(HISTORY), date(2019, 1, 14), date(CURRENT_YEAR, 6, 30))
    assert [(p.key, p.partial) for p in years] == [(y, y == 2024) for y in range(2019, 2025)]
    assert years[0].rate is None and years[0].lost is None  # nothing whole before it
    assert years[-1].rate is None and years[-1].lost is None  # running: compared year to date instead
    s = growth.summary(years)
    # complete years 2019..2023: active 3 → 4 over 4 years
    assert (s.first_year, s.last_year, s.first_active, s.last_active) == (2019, 2023, 3, 4)
    assert s.cagr == pytest.approx((4 / 3) ** (1 / 4) - 1)
    assert s.cagr == pytest.approx(0.074570, abs=1e-6)
    # yearly rates 2020..2023: 0, +1/3, +1/4, −1/5
    assert s.mean_rate == pytest.approx((0 + 1 / 3 + 0.25 - 0.2) / 4)
    assert s.mean_rate == pytest.approx(0.0958333, abs=1e-6)
    # one complete year is not enough
    one = growth.yearly(_rows(HISTORY), date(2019, 1, 14), date(2020, 3, 1))
    assert growth.summary(one) == growth.GrowthSummary(None, None, None, None)


def test_gap_years_are_filled_with_zeros() -> None:
    out = growth.periods([(2018, 2, 2, 0, 0), (2020, 1, 0, 0, 1)])
    assert [(p.key, p.active, p.lost, p.net, p.rate) for p in out] == [
        (2018, 2, 0, 2, None), (2019, 0, 2, -2, -1.0), (2020, 1, 0, 1, None)]
    s = growth.summary(growth.yearly([(2018, 2, 2, 0, 0), (2020, 1, 0, 0, 1)], date(2018, 1, 2), date(2021, 5, 1)))
    assert s.cagr == pytest.approx(math.sqrt(0.5) - 1) and s.mean_rate == pytest.approx(-1.0)


def _flat_rows(first_year_share: float) -> list[tuple[int, int, int, int, int]]:
    """1 000 clients buying once every year; in the first (partial) year only a share of them shows."""
    first = round(1000 * first_year_share)
    return [(2019, first, first, 0, 0), (2020, 1000, 1000 - first, first, 0),
            *[(y, 1000, 0, 1000, 0) for y in range(2021, 2025)], (2025, 480, 0, 480, 0)]


def test_a_partial_first_year_is_never_compared_with_a_whole_one() -> None:
    rows = _flat_rows(2 / 12)  # the history starts in November 2019
    naive = growth.periods(rows)
    assert naive[1].rate == pytest.approx(1000 / 167 - 1)  # what comparing with the partial year would say
    years = growth.yearly(rows, date(2019, 11, 3), date(2025, 6, 30))
    assert [p.key for p in years] == [2020, 2021, 2022, 2023, 2024, 2025]
    assert years[0].rate is None and years[-1].partial
    s = growth.summary(years)
    assert (s.first_year, s.last_year) == (2020, 2024)
    assert s.cagr == pytest.approx(0.0, abs=0.05) and s.mean_rate == pytest.approx(0.0, abs=0.05)
    assert s.cagr == 0.0 and s.mean_rate == 0.0  # exactly: the same 1 000 clients every whole year


def test_monthly_series_keeps_complete_months_and_not_the_first_one() -> None:
    # history from 10 March 2024; today 15 July 2025: months April 2024 .. June 2025
    key = growth.month_key
    rows = [(k, 10, 10 if k == key(date(2024, 3, 1)) else 0, 0 if k == key(date(2024, 3, 1)) else 10, 0)
            for k in range(key(date(2024, 3, 1)), key(date(2025, 7, 1)) + 1)]
    months = growth.monthly(rows, date(2024, 3, 10), date(2025, 7, 15))
    assert [m.key for m in months] == list(range(key(date(2024, 4, 1)), key(date(2025, 6, 1)) + 1))
    assert all(m.new == 0 and m.lost == 0 for m in months)
    # a long history: the last 36 complete months, and the SQL is asked for one more before them
    long_rows = [(k, 5, 0, 5, 0) for k in range(key(date(2015, 1, 1)), key(date(2025, 7, 1)) + 1)]
    months = growth.monthly(long_rows, date(2015, 1, 1), date(2025, 7, 15))
    assert len(months) == 36 and months[0].key == key(date(2022, 7, 1)) and months[-1].key == key(date(2025, 6, 1))
    assert growth.months_window(date(2025, 7, 15)) == key(date(2022, 6, 1))


def test_year_to_date_against_the_same_dates_last_year() -> None:
    ytd = growth.year_to_date(550, 500, date(2019, 11, 3), date(2025, 6, 30))
    assert ytd == {"year": 2025, "through": "2025-06-30", "active": 550, "last_year_through": "2024-06-30",
                   "last_year_active": 500, "rate": pytest.approx(0.1)}
    # last year (2024) is not complete when the history starts in March 2024: no comparison
    assert growth.year_to_date(550, 200, date(2024, 3, 1), date(2025, 6, 30))["rate"] is None
    assert growth.same_day_last_year(date(2024, 2, 29)) == date(2023, 2, 28)


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
