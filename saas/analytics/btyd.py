"""Buy-till-you-die models, written from the papers, as pure functions over numpy arrays.

Inputs are the sufficient statistics of each client, in one time unit (days or weeks):
    x   = repeat purchases (distinct purchase days after the first one),
    t_x = time of the last purchase, counted from the first,
    T   = time from the first purchase to the end of the calibration period,
plus optional weights `w` when identical (x, t_x, T) rows are grouped. Parameters follow the
published conventions (not rescaled), so they compare with the papers in the same unit.

- BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way".
- MBG/NBD: Batislam, Denizel & Filiztekin (2007): like BG/NBD, but a client may drop out right
  after the first purchase, so one-time buyers are not "certainly alive".
- Pareto/NBD: Schmittlein, Morrison & Colombo (1987), with the likelihood as in Fader & Hardie's
  note "Deriving an expression for P(X(t)=x) under the Pareto/NBD model" / their 2005 likelihood
  note (the 2F1 form).
- Gamma-Gamma spend: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves".

Every likelihood is computed in logs; sums of exponentials go through logaddexp, so clients with
hundreds of repeat purchases neither overflow nor vanish.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1, logsumexp

Array = np.ndarray
PARAMS = {
    "bg-nbd": ("r", "alpha", "a", "b"),
    "mbg-nbd": ("r", "alpha", "a", "b"),
    "pareto-nbd": ("r", "alpha", "s", "beta"),
    "gamma-gamma": ("p", "q", "gamma"),
}


@dataclass
class Fit:
    model: str
    params: dict[str, float]
    log_likelihood: float
    clients: int
    seconds: float
    converged: bool
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"model": self.model, "params": self.params, "log_likelihood": self.log_likelihood,
                "clients": self.clients, "seconds": round(self.seconds, 3), "converged": self.converged}


# ---- sufficient statistics -------------------------------------------------------------------


def summarise(client_ids: Array, days: Array, amounts: Array, calibration_end: int, unit: float = 1.0):
    """Per client (x, t_x, T, m_x, ids) from transaction rows (client id, day number, amount).

    Transactions on the same day are one transaction (their amounts add up). Only rows up to
    `calibration_end` count. `unit` is the number of days per model time unit (7 for weeks).
    m_x is the mean value of the repeat transactions (the first is excluded, as Gamma-Gamma needs).
    """
    keep = days <= calibration_end
    ids, d, amt = client_ids[keep], days[keep], amounts[keep]
    order = np.lexsort((d, ids))
    ids, d, amt = ids[order], d[order], amt[order]
    # one row per (client, day)
    new_day = np.ones(len(ids), dtype=bool)
    new_day[1:] = (ids[1:] != ids[:-1]) | (d[1:] != d[:-1])
    day_index = np.cumsum(new_day) - 1
    day_amount = np.bincount(day_index, weights=amt)
    ids, d = ids[new_day], d[new_day]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    counts = ends - starts
    first, last = d[starts], d[ends - 1]
    first_amount = day_amount[starts]
    total = np.add.reduceat(day_amount, starts)
    x = (counts - 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_x = np.where(x > 0, (total - first_amount) / np.maximum(x, 1), 0.0)
    return ids[starts], x, (last - first) / unit, (calibration_end - first) / unit, m_x


def compress(*columns: Array) -> tuple[list[Array], Array, Array]:
    """Group identical rows: (unique columns, weights, inverse index to expand results back).

    A lexicographic sort plus boundary marks: several times faster than np.unique(axis=0).
    """
    order = np.lexsort(columns[::-1])
    ordered = [np.asarray(c)[order] for c in columns]
    new = np.ones(len(order), dtype=bool)
    if len(order):
        new[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in ordered])
    group = np.cumsum(new) - 1
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = group
    weights = np.bincount(group).astype(float)
    return [c[new] for c in ordered], weights, inverse


# ---- BG/NBD and MBG/NBD ----------------------------------------------------------------------


def _nbd_terms(r, alpha, x, t_x, T):  # noqa: ANN001, ANN202
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    return a1, -(r + x) * np.log(alpha + T), -(r + x) * np.log(alpha + t_x)


def bgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, a, b = params
    a1, a3, a4 = _nbd_terms(r, alpha, x, t_x, T)
    a2 = betaln(a, b + x) - betaln(a, b)
    with np.errstate(divide="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + a4, -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def mbgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, a, b = params
    a1, a3, a4 = _nbd_terms(r, alpha, x, t_x, T)
    first = betaln(a, b + x + 1) - betaln(a, b) + a3
    second = betaln(a + 1, b + x) - betaln(a, b) + a4
    return a1 + np.logaddexp(first, second)


def bgnbd_p_alive(params: dict, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, a, b = (params[k] for k in PARAMS["bg-nbd"])
    with np.errstate(divide="ignore"):
        log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (
            np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, expit(-log_ratio), 1.0)


def mbgnbd_p_alive(params: dict, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, a, b = (params[k] for k in PARAMS["mbg-nbd"])
    log_ratio = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return expit(-log_ratio)


def bgnbd_expected(params: dict, t: float, x: Array, t_x: Array, T: Array, *, modified: bool = False) -> Array:
    """Expected purchases in (T, T + t] for a client with history (x, t_x, T)."""
    r, alpha, a, b = (params[k] for k in PARAMS["bg-nbd"])
    shift = 1.0 if modified else 0.0
    z = t / (alpha + T + t)
    head = (a + b + x - 1 + shift) / (a - 1)
    # ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x+σ; a+b+x-1+σ; z) with 1-z = (α+T)/(α+T+t), rewritten by
    # Euler's transformation as (1-z)^(a-1) · 2F1(a+b-1+σ-r, a-1; a+b+x-1+σ; z): the original product is
    # 0 · inf = nan for heavy buyers (x in the thousands) over long horizons.
    tail = 1 - (1 - z) ** (a - 1) * hyp2f1(a + b - 1 + shift - r, a - 1, a + b + x - 1 + shift, z)
    alive = mbgnbd_p_alive(params, x, t_x, T) if modified else bgnbd_p_alive(params, x, t_x, T)
    return head * tail * alive


# ---- Pareto/NBD ------------------------------------------------------------------------------


def _pareto_log_a0(r, alpha, s, beta, x, t_x, T):  # noqa: ANN001, ANN202
    """log A0 of the Pareto/NBD likelihood, choosing the 2F1 form that converges (z in [0, 1))."""
    rsx = r + s + x
    # Euler's transformation 2F1(a, b; c; z) = (1 - z)^(c-a-b) 2F1(c-a, c-b; c; z) with a = r+s+x,
    # c = a + 1 turns the series into 2F1(1, ·; r+s+x+1; z), which stays near 1 however large x is;
    # the untransformed 2F1(r+s+x, r+x; r+s+x+1; z) grows like (1-z)^-(r+x) and overflows for
    # heavy buyers when alpha < beta. (1-z)^(c-a-b) is taken in logs.
    if alpha >= beta:
        big, b2, power = alpha, r + x, -s          # 2F1(rsx, s+1; rsx+1; z) = (1-z)^-s 2F1(1, r+x; rsx+1; z)
        z_tx, z_T = (alpha - beta) / (alpha + t_x), (alpha - beta) / (alpha + T)
    else:
        big, b2, power = beta, s + 1, 1 - r - x    # 2F1(rsx, r+x; rsx+1; z) = (1-z)^(1-r-x) 2F1(1, s+1; rsx+1; z)
        z_tx, z_T = (beta - alpha) / (beta + t_x), (beta - alpha) / (beta + T)
    log_f_tx = power * np.log1p(-z_tx) + np.log(hyp2f1(1.0, b2, rsx + 1, z_tx)) - rsx * np.log(big + t_x)
    log_f_T = power * np.log1p(-z_T) + np.log(hyp2f1(1.0, b2, rsx + 1, z_T)) - rsx * np.log(big + T)
    # A0 = F(t_x) - F(T) > 0; in logs without cancelling to zero for long histories.
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.log1p(-np.exp(np.minimum(log_f_T - log_f_tx, 0.0)))
    return log_f_tx + diff


def pareto_log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, s, beta = params
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive_all_along = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    died = np.log(s) - np.log(r + s + x) + _pareto_log_a0(r, alpha, s, beta, x, t_x, T)
    return head + np.logaddexp(alive_all_along, died)


def pareto_p_alive(params: dict, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, s, beta = (params[k] for k in PARAMS["pareto-nbd"])
    log_term = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                + _pareto_log_a0(r, alpha, s, beta, x, t_x, T))
    return expit(-np.nan_to_num(log_term, nan=-np.inf))


def pareto_expected(params: dict, t: float, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, s, beta = (params[k] for k in PARAMS["pareto-nbd"])
    rate = (r + x) * (beta + T) / (alpha + T)
    if abs(s - 1) < 1e-6:
        horizon = np.log((beta + T + t) / (beta + T))
    else:
        horizon = (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1)
    return rate * horizon * pareto_p_alive(params, x, t_x, T)


# ---- Gamma-Gamma -----------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: Array, x: Array, m_x: Array) -> Array:
    p, q, gamma = params
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(gamma) + (p * x - 1) * np.log(m_x)
            + p * x * np.log(x) - (p * x + q) * np.log(gamma + m_x * x))


def gamma_gamma_expected(params: dict, x: Array, m_x: Array) -> Array:
    """Expected mean transaction value; clients without repeats get the population mean."""
    p, q, gamma = (params[k] for k in PARAMS["gamma-gamma"])
    population = p * gamma / (q - 1) if q > 1 else np.nan
    with np.errstate(invalid="ignore"):
        conditional = (gamma + m_x * x) * p / (p * x + q - 1)
    return np.where(x > 0, conditional, population)


# ---- fitting ---------------------------------------------------------------------------------

LOG_LIKELIHOODS = {
    "bg-nbd": bgnbd_log_likelihood,
    "mbg-nbd": mbgnbd_log_likelihood,
    "pareto-nbd": pareto_log_likelihood,
}


def _fit(model: str, loglik, data: tuple[Array, ...], weights: Array, start: Array) -> Fit:  # noqa: ANN001
    """Maximum likelihood over log-parameters (so they stay positive), weighted by group sizes."""
    started = time.perf_counter()
    total = weights.sum()

    def objective(log_params: Array) -> float:
        values = loglik(np.exp(log_params), *data)
        ll = np.dot(weights, values)
        return -ll / total if np.isfinite(ll) else 1e100

    best = minimize(objective, np.log(start), method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-7})
    if not best.success:  # a rough surface: let the simplex find the basin, then polish
        rough = minimize(objective, best.x, method="Nelder-Mead", options={"maxfev": 3000, "adaptive": True})
        polished = minimize(objective, rough.x, method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-7})
        best = min((best, rough, polished), key=lambda res: res.fun)
    params = dict(zip(PARAMS[model], np.exp(best.x).tolist(), strict=True))
    return Fit(model, params, float(-best.fun * total), int(total), time.perf_counter() - started,
               bool(best.success), str(best.message))


def fit_bgnbd(x: Array, t_x: Array, T: Array, weights: Array | None = None, *, modified: bool = False) -> Fit:
    weights = np.ones_like(x, dtype=float) if weights is None else weights
    scale = float(np.average(T, weights=weights)) or 1.0
    start = np.array([1.0, scale, 1.0, 1.0])
    model = "mbg-nbd" if modified else "bg-nbd"
    return _fit(model, LOG_LIKELIHOODS[model], (x, t_x, T), weights, start)


def fit_pareto(x: Array, t_x: Array, T: Array, weights: Array | None = None) -> Fit:
    weights = np.ones_like(x, dtype=float) if weights is None else weights
    scale = float(np.average(T, weights=weights)) or 1.0
    return _fit("pareto-nbd", pareto_log_likelihood, (x, t_x, T), weights, np.array([1.0, scale, 1.0, scale]))


def fit_gamma_gamma(x: Array, m_x: Array, weights: Array | None = None) -> Fit:
    """Fit on clients with at least one repeat purchase and a positive mean spend."""
    keep = (x > 0) & (m_x > 0)
    x, m_x = x[keep], m_x[keep]
    weights = np.ones_like(x, dtype=float) if weights is None else weights[keep]
    mean = float(np.average(m_x, weights=weights)) if len(x) else 1.0
    fit = _fit("gamma-gamma", gamma_gamma_log_likelihood, (x, m_x), weights, np.array([2.0, 3.0, mean]))
    if len(x) > 2:
        fit.extra["frequency_spend_correlation"] = float(np.corrcoef(x, m_x)[0, 1])
    return fit


def total_log_likelihood(model: str, params: dict, *data: Array) -> float:
    loglik = LOG_LIKELIHOODS.get(model, gamma_gamma_log_likelihood)
    return float(np.sum(loglik(np.array([params[k] for k in PARAMS[model]]), *data)))


__all__ = [
    "Fit", "summarise", "compress", "fit_bgnbd", "fit_pareto", "fit_gamma_gamma",
    "bgnbd_p_alive", "mbgnbd_p_alive", "pareto_p_alive", "bgnbd_expected", "pareto_expected",
    "gamma_gamma_expected", "bgnbd_log_likelihood", "mbgnbd_log_likelihood", "pareto_log_likelihood",
    "gamma_gamma_log_likelihood", "total_log_likelihood", "logsumexp",
]
