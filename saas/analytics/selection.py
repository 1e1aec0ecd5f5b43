"""Which purchase model to believe, and whether the data can carry one at all.

Pure functions over numpy arrays (the sufficient statistics x, t_x, T of btyd, optionally grouped
with weights). Why a model cannot be used is a reason code (stored as it is); `REASONS` gives its
words, an English msgid that a page shows through `_()` (saas.core.i18n) and the CLI prints as it
is. Numbers that go with a reason are kept apart (`Fit.facts`, `Fit.extra`), so one msgid serves
every company.

The rule for choosing (`choose`): among the fits that are usable (see btyd.judge), the one with the
lowest holdout error when a backtest measured it (backtest.holdout_error: the mean absolute error,
per client, of predicted against actual holdout purchases within each number of calibration
repeat purchases 0, 1, … 6, 7+); otherwise the lowest BIC. Ties on the holdout error (within
1e-12) go to the lower BIC.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from saas.analytics import btyd
from saas.core.i18n import lazy

Array = np.ndarray
FIT_THREADS = 2  # candidate models fitted at once (fit_candidates)
PURCHASE_MODELS = ("pareto-nbd", "bg-nbd", "mbg-nbd")
MODEL_NAMES = {"pareto-nbd": "Pareto/NBD", "bg-nbd": "BG/NBD", "mbg-nbd": "MBG/NBD", "gamma-gamma": "Gamma-Gamma"}
# Gamma-Gamma needs this many repeat buyers with a positive mean repeat spend.
MIN_SPEND_CLIENTS = 10
# |Pearson correlation| between repeat frequency and mean repeat spend above this breaks the
# model's independence assumption enough to say so.
SPEND_CORRELATION_WARNING = 0.3

NO_CLIENTS = "no_clients"
ONE_CLIENT = "one_client"
NO_REPEAT = "no_repeat"
NO_TIME = "no_time"
BAD_NUMBERS = "bad_numbers"
TOO_FEW_REPEAT = "too_few_repeat"  # fewer repeat buyers than the company's minimum (evidence.assess)
TOO_FEW_SPENDERS = "too_few_spenders"
SPEND_CORRELATED = "spend_correlated"
NONE_USABLE = "none_usable"
REASONS = {
    **btyd.REASONS,
    NO_CLIENTS: lazy("There are no clients with purchases to fit a model to."),
    ONE_CLIENT: lazy("There is only one client with purchases: a model of a client base needs many."),
    NO_REPEAT: lazy("No client has bought a second time yet, so the models cannot learn how often clients buy "
                    "or when they leave."),
    NO_TIME: lazy("All purchases fall on the last day of the history (T = 0 for everyone), so there is no "
                  "time in which to observe anything."),
    BAD_NUMBERS: lazy("The purchase statistics contain negative or non-finite numbers, or a last purchase after "
                      "the end of the history."),
    TOO_FEW_REPEAT: lazy("Too few repeat buyers for a reliable statistical model."),
    TOO_FEW_SPENDERS: lazy("Too few clients with repeat purchases of positive value to fit the spend model."),
    SPEND_CORRELATED: lazy("Spend per purchase and purchase frequency are correlated; the spend model assumes "
                           "they are not, so its figures are less reliable."),
    NONE_USABLE: lazy("No purchase model fits these data."),
}
# Records stored before the codes held these words themselves: read back, they mean their code.
_CODES_OF_WORDS = {words: code for code, words in REASONS.items()}
WHY_HOLDOUT = lazy("lowest holdout error")
WHY_BIC = lazy("lowest BIC (no holdout error to compare)")
WHY_ONLY = lazy("the only usable model")


def reason_code(stored: str | None) -> str | None:
    """The code of a stored reason: a code as it is, an older record's English words as their code
    (words no longer known stay as they are)."""
    return _CODES_OF_WORDS.get(stored, stored) if stored else None


def reason_text(stored: str | None) -> str | None:
    """A reason's English words (a msgid), for logs and the CLI; a page translates them."""
    code = reason_code(stored)
    return REASONS.get(code, code) if code else None


def _weights(x: Array, weights: Array | None) -> Array:
    return np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)


def data_problem(x: Array, t_x: Array, T: Array, weights: Array | None = None) -> str | None:
    """Why these data cannot support a purchase model (a reason code), or None when fitting makes sense.

    Only what no fit could overcome is refused here; subtler failures (a parameter running to the
    boundary, a flat likelihood) show up as rejected fits with their reason."""
    x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
    w = _weights(x, weights)
    present = w > 0
    x, t_x, T, w = x[present], t_x[present], T[present], w[present]
    if w.sum() < 1:
        return NO_CLIENTS
    if not all(np.isfinite(a).all() and (a >= 0).all() for a in (x, t_x, T)) or (t_x > T + 1e-9).any():
        return BAD_NUMBERS
    if w.sum() < 2:
        return ONE_CLIENT
    if not (T > 0).any():
        return NO_TIME
    if not (x > 0).any():
        return NO_REPEAT
    return None


def fit_candidates(x: Array, t_x: Array, T: Array, weights: Array | None = None,
                   models: tuple[str, ...] = PURCHASE_MODELS,
                   starts: dict[str, dict[str, float]] | None = None) -> list[btyd.Fit]:
    """Pareto/NBD, BG/NBD and MBG/NBD fitted to the same data, each judged (usable, reason, bic, se).

    `starts`: per model, parameters to start the optimiser from (the same model fitted on nearly
    the same data: it then needs a few steps instead of dozens). A fit so started that is not
    usable is fitted again from the default start, so a start can save time but not change a
    rejection. When `data_problem` finds a problem, every fit comes back unusable with that reason,
    unfitted."""
    x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
    problem = data_problem(x, t_x, T, weights)
    if problem is not None:
        clients = round(float(_weights(x, weights).sum()))
        fits = []
        for model in models:
            fit = btyd.Fit(model, dict.fromkeys(btyd.PARAMS[model], math.nan), math.nan, clients, 0.0, False,
                           "not fitted")
            fit.se = dict.fromkeys(btyd.PARAMS[model])
            fit.reject(problem)
            fits.append(fit)
        return fits
    fitters = {
        "pareto-nbd": lambda start: btyd.fit_pareto(x, t_x, T, weights, start=start),
        "bg-nbd": lambda start: btyd.fit_bgnbd(x, t_x, T, weights, start=start),
        "mbg-nbd": lambda start: btyd.fit_bgnbd(x, t_x, T, weights, modified=True, start=start),
    }
    def fit_one(model: str) -> btyd.Fit:
        start = (starts or {}).get(model)
        fit = fitters[model](start)
        return fit if fit.usable or start is None else fitters[model](None)

    if len(models) == 1:
        return [fit_one(models[0])]
    # The models at once, in threads: the likelihoods are numpy over whole arrays, which runs
    # without the GIL, so two cores fit two models at a time. Each fit is the same computation
    # as alone (the same floating-point operations in the same order): the results do not change.
    with btyd.single_threaded_blas(), ThreadPoolExecutor(max_workers=FIT_THREADS) as pool:
        return list(pool.map(fit_one, models))


def p_alive(fit: btyd.Fit, x: Array, t_x: Array, T: Array) -> Array:
    """P(alive at T | x, t_x, T) under the fit's model."""
    with np.errstate(all="ignore"):
        if fit.model == "pareto-nbd":
            return btyd.pareto_p_alive(fit.params, x, t_x, T)
        if fit.model == "bg-nbd":
            return btyd.bgnbd_p_alive(fit.params, x, t_x, T)
        if fit.model == "mbg-nbd":
            return btyd.mbgnbd_p_alive(fit.params, x, t_x, T)
    raise ValueError(f"not a purchase model: {fit.model}")


def expected(fit: btyd.Fit, horizon: float, x: Array, t_x: Array, T: Array, alive: Array | None = None) -> Array:
    """Expected purchases in (T, T + horizon] under the fit's model (horizon in the fit's unit);
    `alive`: `p_alive` of these clients when already computed (it is part of the formula)."""
    if horizon <= 0:
        return np.zeros(np.shape(x))
    with np.errstate(all="ignore"):
        if fit.model == "pareto-nbd":
            return btyd.pareto_expected(fit.params, horizon, x, t_x, T, p_alive=alive)
        if fit.model in ("bg-nbd", "mbg-nbd"):
            return btyd.bgnbd_expected(fit.params, horizon, x, t_x, T, modified=fit.model == "mbg-nbd",
                                       p_alive=alive)
    raise ValueError(f"not a purchase model: {fit.model}")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def choose(fits: list[btyd.Fit], holdout_error: dict[str, float] | None = None) -> tuple[btyd.Fit | None, str]:
    """The fit to use and why, in one short English line (for logs and the CLI).

    The evidence goes into the chosen fit's extra["choice"], ready for a page to format:
    {"by": "holdout" | "bic" | "only", "why": msgid, "errors": {model: error}, "bic": {model: bic},
     "rejected": {model: [reason code, detail]}}."""
    usable = [f for f in fits if f.usable and _finite(f.bic)]
    errors = {m: float(e) for m, e in (holdout_error or {}).items() if _finite(e)}
    evidence = {
        "errors": errors,
        "bic": {f.model: float(f.bic) for f in fits if _finite(f.bic)},
        "rejected": {f.model: [f.reason, f.detail] for f in fits if not f.usable},
    }
    if not usable:
        reasons = "; ".join(f"{MODEL_NAMES.get(f.model, f.model)}: {reason_text(f.reason)}"
                            + (f" ({f.detail})" if f.detail else "") for f in fits)
        return None, f"{REASONS[NONE_USABLE]} {reasons}".strip()
    scored = [f for f in usable if f.model in errors]
    if len(usable) == 1:
        chosen, by, why = usable[0], "only", WHY_ONLY
    elif len(scored) == len(usable):
        chosen = min(scored, key=lambda f: (round(errors[f.model], 12), f.bic))
        by, why = "holdout", WHY_HOLDOUT
    else:
        chosen = min(usable, key=lambda f: f.bic)
        by, why = "bic", WHY_BIC
    chosen.extra["choice"] = {"by": by, "why": why, **evidence}
    name = MODEL_NAMES.get(chosen.model, chosen.model)
    if by == "holdout":
        others = ", ".join(f"{errors[f.model]:.3g} ({MODEL_NAMES.get(f.model, f.model)})"
                           for f in usable if f is not chosen)
        text = f"{name}: {why}: {errors[chosen.model]:.3g} vs {others}"
    elif by == "bic":
        others = ", ".join(f"{f.bic:.1f} ({MODEL_NAMES.get(f.model, f.model)})" for f in usable if f is not chosen)
        text = f"{name}: {why}: {chosen.bic:.1f} vs {others}"
    else:
        text = f"{name}: {why}"
    rejected = [f for f in fits if not f.usable]
    if rejected:
        text += "; rejected: " + ", ".join(f"{MODEL_NAMES.get(f.model, f.model)} ({reason_text(f.reason)})"
                                           for f in rejected)
    return chosen, text


def fit_spend(x: Array, m_x: Array, weights: Array | None = None) -> tuple[btyd.Fit | None, str | None, float]:
    """Gamma-Gamma on repeat buyers with a positive mean repeat spend.

    Returns (fit, message, correlation): the fit only when usable (converged, identified, q > 1);
    message is the reason code when there is no fit, else the correlation warning's code (or None);
    correlation is the Pearson correlation between repeat purchases and mean repeat spend among
    those clients (nan when undefined)."""
    x, m_x = np.asarray(x, dtype=float), np.asarray(m_x, dtype=float)
    w = _weights(x, weights)
    keep = (x > 0) & np.isfinite(m_x) & (m_x > 0) & (w > 0)
    x, m_x, w = x[keep], m_x[keep], w[keep]
    correlation = btyd.weighted_correlation(x, m_x, w)
    if w.sum() < MIN_SPEND_CLIENTS:
        return None, TOO_FEW_SPENDERS, correlation
    fit = btyd.fit_gamma_gamma(x, m_x, w)
    if not fit.usable:
        return None, fit.reason, correlation
    warning = SPEND_CORRELATED if _finite(correlation) and abs(correlation) > SPEND_CORRELATION_WARNING else None
    return fit, warning, correlation
