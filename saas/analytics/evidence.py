"""Which model to believe, on the company's own evidence: the backtest and the model choice (pure).

Every refresh holds out the last `holdout_weeks` (13 by default): the candidates (Pareto/NBD,
BG/NBD, MBG/NBD) are fitted on the history up to the cut-off, predict each client's purchases in
the held-out weeks, and are compared with what the clients did (backtest.compare). The model with
the lowest holdout error wins (selection.choose); with fewer than MIN_HOLDOUT_PURCHASES purchases
in the holdout the error is mostly noise, so the lowest BIC decides instead. The winner is then
refitted on the whole history for today's scores (if that refit is not usable, every candidate is
fitted on the whole history and the lowest BIC among the usable ones is taken).

No model at all (status by rules, with the reason kept and shown) when: fewer repeat buyers than
the company's `min_repeat_buyers`; data a model cannot learn from (selection.data_problem); or no
candidate fit usable (each rejection's reason is kept).

The status thresholds are checked on the same backtest (status.choose_shares), so the shares "of
clients marked at risk at the cut-off, N% bought again" are measured, never assumed.

Speed (the refresh's budget, bench/analytics.py): the candidates are fitted in threads
(selection.fit_candidates), their predictions too, and today's refit starts before the choice
when its start is already known (_Ahead); each is the same computation as one after the other,
so the results do not depend on it.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saas.analytics import backtest, btyd, selection
from saas.analytics import status as status_rules
from saas.analytics.statistics import WEEK, Stats

# At least this many purchases in the holdout for its error to choose the model. With 100, the
# holdout total has a Poisson relative error near 10%, about the size of the differences between
# the candidates on real data; below that, BIC (fit on the calibration data) decides.
MIN_HOLDOUT_PURCHASES = 100
TOO_FEW_REPEAT = selection.TOO_FEW_REPEAT  # a reason code, with the others in selection.REASONS

Array = np.ndarray


@dataclass
class Evidence:
    method: str                           # the chosen model, or "rules"
    fit: btyd.Fit | None = None           # fitted on the whole history: today's scores
    reason: str | None = None             # why rules: a reason code (selection.REASONS)
    reason_detail: str = ""               # its specifics in one English line, for logs
    limits: dict[str, float] = field(default_factory=dict)   # status thresholds (model) or the typical gap (rules)
    candidates: list[btyd.Fit] = field(default_factory=list)  # as compared (calibration fits, or whole history)
    refits: list[btyd.Fit] = field(default_factory=list)      # fitted on the whole history
    backtest: dict[str, Any] = field(default_factory=dict)    # for the validation page
    seconds: dict[str, float] = field(default_factory=dict)   # backtest (fits, predictions, tables) and fit


def grouped_fit_data(x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    """Identical rows grouped (t_x and T rounded to whole weeks: the fit is then fast)."""
    (ux, utx, uT), weights, _inverse = btyd.compress(x, np.round(t_x), np.round(T))
    return ux, utx, uT, weights


Groups = tuple[list[Array], Array, Array]  # btyd.compress's (unique columns, weights, inverse)


def predict(fit: btyd.Fit, horizon_weeks: float, x: Array, t_x: Array, T: Array,
            groups: Groups | None = None) -> tuple[Array, Array, Array]:
    """(P(alive), expected purchases, p_buy) over the horizon, per client; `groups`: btyd.compress
    of (x, t_x, T) when already made (the same for every model)."""
    def all_three(ux: Array, utx: Array, uT: Array) -> Array:
        alive = selection.p_alive(fit, ux, utx, uT)
        return np.stack([alive, selection.expected(fit, horizon_weeks, ux, utx, uT, alive),
                         status_rules.p_buy(fit.params, horizon_weeks, ux, uT, alive)])

    (ux, utx, uT), _w, inverse = groups if groups is not None else btyd.compress(x, t_x, T)
    out = all_three(ux, utx, uT)[:, inverse] if len(ux) else np.zeros((3, 0))
    return out[0], out[1], out[2]


def _fits(x: Array, t_x: Array, T: Array, models: tuple[str, ...] = selection.PURCHASE_MODELS,
          starts: dict[str, dict[str, float]] | None = None) -> list[btyd.Fit]:
    ux, utx, uT, w = grouped_fit_data(x, t_x, T)
    return selection.fit_candidates(ux, utx, uT, w, models=models, starts=starts)


Starts = dict[str, dict[str, dict[str, float]]]  # per stage ("calibration", "whole history"), per model


def assess(stats: Stats, cfg: dict[str, Any], previous: Starts | None = None,
           fitted: Callable[[], None] | None = None) -> Evidence:
    """See _assess. `fitted` is called once the backtest's candidates are fitted (the first run's
    busiest part, two fits at a time): a caller may start other work then."""
    with btyd.single_threaded_blas():
        return _assess(stats, cfg, previous, fitted or (lambda: None))


def _assess(stats: Stats, cfg: dict[str, Any], previous: Starts | None, fitted: Callable[[], None]) -> Evidence:
    """The backtest, the model choice and today's fit for one company's statistics.

    `previous`: the last refresh's fits per stage and model, where the optimiser starts (the data
    moved by a day or so; see selection.fit_candidates); today's fit of a model the last refresh
    did not fit on the whole history starts from the backtest's fit of it."""
    previous = previous or {}
    horizon = stats.holdout_days / WEEK
    cal = stats.calibrated
    x_c, actual = stats.x_cal[cal], stats.holdout[cal]
    report: dict[str, Any] = {
        "cutoff": stats.cutoff.isoformat(), "today": stats.today.isoformat(), "holdout_weeks": horizon,
        "clients": int(cal.sum()), "repeat_buyers": int((x_c > 0).sum()), "holdout_purchases": float(actual.sum()),
        "min_holdout_purchases": MIN_HOLDOUT_PURCHASES, "compare": {}, "errors": {},
    }
    started = time.perf_counter()
    ahead = _Ahead(stats, cfg)
    try:
        for model, params in (previous.get("whole history") or {}).items():
            ahead.start(model, params)
        return _backtest_and_today(stats, cfg, previous, report, started, ahead, fitted)
    finally:  # a refit ahead that is not needed (another model won) is not waited for
        ahead.pool.shutdown(wait=False, cancel_futures=True)


class _Ahead:
    """Today's fits (on the whole history) started before the backtest has chosen, in a thread
    beside it. A fit depends only on the data and where the optimiser starts, so a refit started
    ahead from the start _today would use is the very fit _today would make, ready sooner:
    - the models the last refresh fitted on the whole history, from those fits (nightly: _today
      starts the winner's refit there whatever the backtest finds);
    - on a first refresh, the calibration fit with the lowest BIC, from that fit, as soon as the
      candidates are fitted (the winner by holdout error is most often the same model).
    Nothing when today's data cannot carry a model (_today then takes the rules)."""

    def __init__(self, stats: Stats, cfg: dict[str, Any]) -> None:
        b = stats.bought
        self.data = stats.x[b], stats.t_x[b], stats.T[b]
        x, t_x, T = self.data
        self.usable = int((x > 0).sum()) >= cfg["min_repeat_buyers"] and selection.data_problem(x, t_x, T) is None
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.started: dict[str, tuple[dict[str, float], Future[btyd.Fit]]] = {}

    def start(self, model: str, params: dict[str, float]) -> None:
        if self.usable and model in selection.PURCHASE_MODELS and model not in self.started:
            x, t_x, T = self.data
            start = dict(params)
            self.started[model] = start, self.pool.submit(lambda: _fits(x, t_x, T, (model,), {model: start})[0])

    def take(self, model: str, params: dict[str, float]) -> btyd.Fit | None:
        """The fit of `model` started from `params`, when it was started ahead from there."""
        start, future = self.started.get(model, (None, None))
        return future.result() if future is not None and start == params else None


def _backtest_and_today(stats: Stats, cfg: dict[str, Any], previous: Starts, report: dict[str, Any],
                        started: float, ahead: _Ahead, fitted: Callable[[], None]) -> Evidence:
    horizon = stats.holdout_days / WEEK
    cal = stats.calibrated
    x_c, tx_c, T_c, actual = stats.x_cal[cal], stats.t_x_cal[cal], stats.T_cal[cal], stats.holdout[cal]
    preferred = (float(cfg["status_active_share"]), float(cfg["status_lost_share"]))
    enough_cal = report["repeat_buyers"] >= cfg["min_repeat_buyers"] and horizon > 0
    cal_fits: list[btyd.Fit] = []
    chosen_cal: btyd.Fit | None = None
    predictions: dict[str, tuple[Array, Array, Array]] = {}
    if enough_cal and selection.data_problem(x_c, tx_c, T_c) is None:
        cal_fits = _fits(x_c, tx_c, T_c, starts=previous.get("calibration"))
    fitted()
    by_bic = sorted((f for f in cal_fits if f.usable and np.isfinite(f.bic)), key=lambda f: f.bic)
    if by_bic:  # the likely winner's refit, from where _today would start it
        best = by_bic[0]
        ahead.start(best.model, {best.model: best.params, **(previous.get("whole history") or {})}[best.model])
    if cal_fits:
        usable = [fit for fit in cal_fits if fit.usable]
        groups = btyd.compress(x_c, tx_c, T_c)
        with ThreadPoolExecutor(max_workers=selection.FIT_THREADS) as pool:  # numpy: without the GIL
            made = list(pool.map(lambda fit: predict(fit, horizon, x_c, tx_c, T_c, groups), usable))
        for fit, prediction in zip(usable, made, strict=True):
            predictions[fit.model] = prediction
            report["errors"][fit.model] = backtest.holdout_error(x_c, prediction[1], actual)
        use_errors = report["holdout_purchases"] >= MIN_HOLDOUT_PURCHASES
        chosen_cal, _text = selection.choose(cal_fits, report["errors"] if use_errors else None)

    backtested = time.perf_counter()
    evidence = _today(stats, cfg, chosen_cal, cal_fits, previous.get("whole history") or {}, ahead)
    refitted = time.perf_counter()
    report.update({"method": evidence.method, "reason": evidence.reason, "reason_detail": evidence.reason_detail,
                   "backtested": bool(cal_fits)})
    # Status on the backtest: the chosen model's own forecast at the cut-off, or the rules.
    n_c, first_c = stats.n_cal[cal], stats.first_age[cal] - stats.holdout_days
    if evidence.method != "rules" and evidence.method in predictions:
        alive, _expected, buy = predictions[evidence.method]
        limits, status_c, ordered = status_rules.choose_shares(buy, alive, n_c, first_c, actual, cfg["new_days"],
                                                               preferred)
        evidence.limits = {**limits, "horizon_weeks": horizon}
    elif evidence.fit is not None:  # a model without a backtest: the company's thresholds, unchecked
        alive, _expected, buy = predict(evidence.fit, horizon, stats.x[stats.bought], stats.t_x[stats.bought],
                                       stats.T[stats.bought])
        evidence.limits = {**status_rules.thresholds(status_rules.typical(buy, alive), *preferred),
                           "horizon_weeks": horizon}
        status_c, ordered = None, None
    else:
        gap = status_rules.typical_gap(n_c, first_c, stats.last_cal_age[cal], cfg["new_days"])
        status_c = status_rules.rule_status(n_c, first_c, stats.last_cal_age[cal], gap, cfg["new_days"])
        ordered = status_rules.is_ordered(status_rules.shares(status_c, actual)) if len(actual) else None
        evidence.limits = {"typical_gap_days": status_rules.typical_gap(
            stats.n, stats.first_age, stats.last_age, cfg["new_days"])}
    if status_c is not None:
        report["status"] = status_rules.shares(status_c, actual)
        report["status_ordered"] = ordered
        report["status_limits"] = evidence.limits if evidence.method != "rules" else {"typical_gap_days": gap}
    for model, (_alive, predicted, _buy) in predictions.items():
        report["compare"][model] = backtest.compare(
            x_c, predicted, actual, status=status_c if model == evidence.method else None)
    report["candidates"] = [_fit_record(f, "calibration") for f in cal_fits]
    report["refits"] = [_fit_record(f, "whole history") for f in evidence.refits]
    report["choice"] = evidence.fit.extra.get("choice") if evidence.fit is not None else None
    report["chosen"] = evidence.method if evidence.method != "rules" else None
    evidence.candidates = cal_fits
    evidence.backtest = report
    # the backtest's cost: its fits and predictions, plus the status check and tables after the refit
    evidence.seconds = {"backtest": round(backtested - started + time.perf_counter() - refitted, 3),
                        "fit": round(refitted - backtested, 3)}
    return evidence


def _today(stats: Stats, cfg: dict[str, Any], chosen_cal: btyd.Fit | None, cal_fits: list[btyd.Fit],
           previous: dict[str, dict[str, float]], ahead: _Ahead | None = None) -> Evidence:
    """Today's fit on the whole history: the backtest's winner refitted, else the best by BIC.
    `ahead`: refits already started (_Ahead), taken when they started where this one would."""
    b = stats.bought
    x, t_x, T = stats.x[b], stats.t_x[b], stats.T[b]
    repeat = int((x > 0).sum())
    if repeat < cfg["min_repeat_buyers"]:
        return Evidence("rules", reason=TOO_FEW_REPEAT, reason_detail=f"{repeat} < {cfg['min_repeat_buyers']}")
    problem = selection.data_problem(x, t_x, T)
    if problem is not None:
        return Evidence("rules", reason=problem)
    refits: list[btyd.Fit] = []
    if chosen_cal is not None:
        starts = {chosen_cal.model: chosen_cal.params, **previous}
        refit = (ahead.take(chosen_cal.model, starts[chosen_cal.model]) if ahead is not None else None) \
            or _fits(x, t_x, T, (chosen_cal.model,), starts)[0]
        refits.append(refit)
        if refit.usable:
            refit.extra["choice"] = chosen_cal.extra.get("choice")
            return Evidence(refit.model, fit=refit, refits=refits)
    others = tuple(m for m in selection.PURCHASE_MODELS if m not in {f.model for f in refits})
    refits += _fits(x, t_x, T, others, {**{f.model: f.params for f in cal_fits if f.usable}, **previous})
    chosen, text = selection.choose(refits, None)
    if chosen is None:
        return Evidence("rules", reason=selection.NONE_USABLE, reason_detail=text, refits=refits)
    return Evidence(chosen.model, fit=chosen, refits=refits)


def _fit_record(fit: btyd.Fit, stage: str) -> dict[str, Any]:
    return {**fit.as_dict(), "stage": stage}
