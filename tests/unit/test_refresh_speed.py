"""The refresh's faster paths give exactly what the plain ones give (issue 15's speed goal): grouping
by ranked keys, candidate fits in threads, refits started ahead, P(alive) over distinct pairs,
the objective's memory, words factorized, compact jsonb, and the dashboard's counts from arrays."""
from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from saas.analytics import btyd, dashboard, evidence, pgcopy, selection, simulate, statistics
from saas.analytics import settings as analytics_settings


def _lexsort_compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    return btyd._compress_lexsort([np.asarray(c) for c in columns])


def test_grouping_by_ranked_keys_equals_the_lexicographic_sort() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 12, 5000).astype(float)
    t_x, T = np.round(rng.uniform(0, 50, 5000)) / 7, np.round(rng.uniform(50, 80, 5000)) / 7
    noise = rng.normal(size=5000).round(2)  # not days in weeks: ranked by a sort
    for columns in ((x,), (x, t_x), (x, t_x, T), (x.astype(int), T), (noise, x), (t_x, noise, T)):
        got, want = btyd.compress(*columns), _lexsort_compress(*columns)
        assert all(np.array_equal(a, b) for a, b in zip(got[0], want[0], strict=True))
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2])
    # NaN never groups (the lexicographic way is taken); an empty input stays empty
    values, weights, inverse = btyd.compress(np.array([1.0, np.nan, 1.0, np.nan]))
    assert weights.tolist() == [2.0, 1.0, 1.0] and inverse.tolist() == [0, 1, 0, 2]
    assert [len(c) for c in btyd.compress(np.array([]), np.array([]))[0]] == [0, 0]


def _data(n: int = 4000, seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    T = np.random.default_rng(seed).uniform(26, 156, n)
    return simulate.pareto_nbd(n, 0.55, 10.58, 0.61, 11.67, T, seed=seed)


def _same_fit(a: btyd.Fit, b: btyd.Fit) -> bool:
    return (a.model, a.params, a.se, a.usable, a.reason, a.converged) == (b.model, b.params, b.se, b.usable, b.reason,
                                                                         b.converged) \
        and a.log_likelihood == b.log_likelihood


def test_candidates_fitted_in_threads_are_the_fits_made_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    x, t_x, T = _data()
    (ux, utx, uT), w, _inverse = btyd.compress(x, np.round(t_x), np.round(T))
    threaded = selection.fit_candidates(ux, utx, uT, w)
    monkeypatch.setattr(selection, "FIT_THREADS", 1)
    alone = [selection.fit_candidates(ux, utx, uT, w, models=(m,))[0] for m in selection.PURCHASE_MODELS]
    assert [f.model for f in threaded] == list(selection.PURCHASE_MODELS)
    assert all(_same_fit(a, b) for a, b in zip(threaded, alone, strict=True))


def test_p_alive_over_distinct_pairs_equals_it_per_client(monkeypatch: pytest.MonkeyPatch) -> None:
    x, t_x, T = _data(20_000)
    params = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    paired = btyd.pareto_p_alive(params, x, t_x, T)
    monkeypatch.setattr(btyd, "PAIRS_FROM", 10**9)
    assert np.array_equal(paired, btyd.pareto_p_alive(params, x, t_x, T))
    # expected purchases given P(alive) equal those that compute it again
    assert np.array_equal(btyd.pareto_expected(params, 13.0, x, t_x, T, p_alive=paired),
                          btyd.pareto_expected(params, 13.0, x, t_x, T))


def test_blas_threads_are_restored_after_fitting() -> None:
    from threadpoolctl import threadpool_info

    def counts() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = counts()
    assert before  # numpy's and scipy's OpenBLAS are loaded: the test checks something
    with btyd.single_threaded_blas():
        with btyd.single_threaded_blas():  # nested (fits in threads): the outermost restores
            assert all(n == 1 for n in counts())
        assert all(n == 1 for n in counts())
    assert counts() == before


def _stats(n: int = 3000, seed: int = 5) -> statistics.Stats:
    """A company's statistics from a simulated Pareto/NBD process (days; 13-week holdout)."""
    rng = np.random.default_rng(seed)
    first_age = rng.integers(100, 900, n)
    x = simulate.pareto_nbd(n, 0.55, 10.58, 0.61, 11.67, first_age / 7.0, seed=seed)[0].astype(int)
    last_age = np.where(x > 0, (first_age * rng.uniform(0, 0.9, n)).astype(int), first_age)
    holdout = np.minimum(rng.poisson(0.3, n), x) * (last_age < 91)
    last_cal_age = np.where(holdout > 0, np.maximum(last_age - 91, 1) + 30, last_age - 91)
    n_cal = x + 1 - holdout
    cal_ok = first_age > 91
    stats = statistics.Stats(date(2026, 6, 1), date(2026, 3, 2), np.arange(1, n + 1), n=x + 1, first_age=first_age,
                             last_age=last_age, n_cal=np.where(cal_ok, n_cal, 0),
                             last_cal_age=np.where(cal_ok, np.maximum(last_cal_age, 0), -1),
                             gross=rng.uniform(10, 1000, n) * (x + 1), first_amount=rng.uniform(10, 1000, n),
                             returned=np.zeros(n))
    return stats


def test_a_refit_started_ahead_is_the_refit_made_after_the_backtest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first refresh (the lowest BIC's refit ahead) and the next (the last whole-history fits'
    refits ahead) give the fits made one after the other."""
    stats, cfg = _stats(), dict(analytics_settings.DEFAULTS)
    first_ahead = evidence.assess(stats, cfg)
    assert first_ahead.method != "rules" and first_ahead.refits
    previous: evidence.Starts = {}
    for record in [*first_ahead.backtest["candidates"], *first_ahead.backtest["refits"]]:
        previous.setdefault(record["stage"], {})[record["model"]] = record["params"]
    next_ahead = evidence.assess(stats, cfg, previous)
    monkeypatch.setattr(evidence._Ahead, "start", lambda *_a: None)
    pairs = ((first_ahead, evidence.assess(stats, cfg)), (next_ahead, evidence.assess(stats, cfg, previous)))
    for ahead, after in pairs:
        assert ahead.method == after.method and ahead.limits == after.limits
        assert all(_same_fit(a, b) for a, b in zip(ahead.refits, after.refits, strict=True))
        assert all(_same_fit(a, b) for a, b in zip(ahead.candidates, after.candidates, strict=True))


def test_the_objective_remembers_points_it_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The optimiser's last point, the convergence check and the Hessian's diagonal evaluate the
    same points (the same step): each point's likelihood is computed once."""
    x, t_x, T = _data(2000)
    points: list[bytes] = []
    plain = btyd.bgnbd_log_likelihood

    def recorded(params, *args, **kwargs):
        points.append(np.asarray(params, dtype=float).tobytes())
        return plain(params, *args, **kwargs)

    monkeypatch.setitem(btyd.LOG_LIKELIHOODS, "bg-nbd", recorded)
    fit = btyd.fit_bgnbd(x, t_x, T)
    assert fit.usable and fit.se["r"] is not None
    assert len(points) > 33 and len(set(points)) == len(points)  # (the Hessian alone takes 33 points)


def test_words_are_factorized_in_sorted_order() -> None:
    words, codes = pgcopy.factorize(np.array(["lost", "active", "lost", "new"], dtype=object))
    assert words == ["active", "lost", "new"] and codes.tolist() == [1, 0, 1, 2]
    assert pgcopy.factorize(np.array([3, 1], dtype=object)) == (["1", "3"], pytest.approx([1, 0]))
    assert pgcopy.factorize(np.array([], dtype=object))[0] == []


def test_jsonb_is_written_compact() -> None:
    factors = {"late": np.array([0.0, 2.0, 1234.567]), "overdue": np.array([np.nan, 0.0, -0.5]),
               "payments": np.array([0.0, 3.0, 10.0])}
    length, piece = pgcopy.jsonb(factors, omit_zeros=True)
    rows = [bytes(piece.mat[i][piece.keep[i]]) for i in range(3)]
    assert all(b" " not in r and r[:1] == b"\x01" for r in rows)
    assert [int.from_bytes(bytes(length.mat[i]), "big") for i in range(3)] == [len(r) for r in rows]
    assert [json.loads(r[1:]) for r in rows] == [{"overdue": None, "payments": 0}, {"late": 2, "payments": 3},
                                                 {"late": 1234.57, "overdue": -0.5, "payments": 10}]


def test_the_dashboard_counts_from_arrays_as_its_sql_counts() -> None:
    """Archived clients are left out; revenue per segment is the clients' stored revenue_total,
    summed exactly; the top of the risk group is by risk score, then the largest unpaid total."""
    ids = np.array([1, 2, 3, 4, 5, 6])
    stats = statistics.Stats(date(2026, 6, 1), date(2026, 3, 2), ids, *([np.zeros(6)] * 8))
    stats.totals = statistics.ClientTotals(archived=np.array([False, False, True, False, False, False]),
                                           revenue_cents=np.array([10, 20, 30, 45, 5, 1]),
                                           unpaid_cents=np.array([0, 500, 900, 100, 700, 0]))
    segment = np.array(["a", "b", "a", "a", "b", "c"], dtype=object)
    risk = np.array(["risk", "risk", "risk", "watch", "risk", "risk"], dtype=object)
    score = np.array([30, 30, 10, 60, 30, 20])
    figures, top = dashboard.mix_counts(stats, segment, risk, score)
    assert figures == {"segments": {"a": [2, 0.55], "b": [2, 0.25], "c": [1, 0.01]},
                       "risk": {"risk": 4, "watch": 1}, "clients": 5}
    assert top == [(6, 20), (5, 30), (2, 30), (1, 30)]  # 3 is archived
    status = np.array(["active", "lost", "active", "new", "lost", "lost"], dtype=object)
    assert dashboard.status_counts(stats, status, np.array([150, 1, 10**6, 0, 2, 3])) == {
        "status": {"active": 1, "lost": 3, "new": 1}, "clv_total": 1.56}
