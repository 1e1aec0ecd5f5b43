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

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1, logsumexp
from threadpoolctl import threadpool_limits

from saas.core.i18n import lazy

Array = np.ndarray
Objective = Callable[[Array], float]  # log-parameters -> mean negative log-likelihood
PARAMS = {
    "bg-nbd": ("r", "alpha", "a", "b"),
    "mbg-nbd": ("r", "alpha", "a", "b"),
    "pareto-nbd": ("r", "alpha", "s", "beta"),
    "gamma-gamma": ("p", "q", "gamma"),
}


# A fitted parameter outside this range is taken as "ran to the boundary": the likelihood kept
# improving as the parameter went to 0 or infinity, which means the data cannot identify it (e.g.
# r and α both → ∞ when purchase rates look homogeneous, r = 2.7e19 on one-time buyers only).
# In weeks or days, real time-scale parameters (α, β, γ) sit between ~0.01 and ~10^4, shape
# parameters between ~0.01 and ~100, so the range leaves two to four orders of magnitude of room.
PARAM_RANGE = (1e-6, 1e6)

# Why a fit is not used: a code, stored with the fit; `Fit.facts` holds the numbers behind it and
# `Fit.detail` the same in one English line (logs, the CLI). REASONS: each code's words, an English
# msgid that a page translates (selection.reason_text gives them for every reason code).
NOT_CONVERGED = "not_converged"
AT_BOUNDARY = "at_boundary"
BAD_LIKELIHOOD = "bad_likelihood"
NOT_IDENTIFIED = "not_identified"
INFINITE_SPEND = "infinite_spend"
REASONS = {
    NOT_CONVERGED: lazy("The optimiser did not converge."),
    AT_BOUNDARY: lazy("A parameter ran to the edge of its range: the data cannot pin it down."),
    BAD_LIKELIHOOD: lazy("The log-likelihood at the optimum is not a finite, non-zero number."),
    NOT_IDENTIFIED: lazy("The likelihood is flat in some direction: the parameters are not identified."),
    INFINITE_SPEND: lazy("The spend model has q ≤ 1, so its expected spend is infinite."),
}


@dataclass
class Fit:
    """One maximum-likelihood fit and the evidence for trusting it.

    usable/reason: False with a reason code when the fit must not be used (see `judge`); `facts` holds
    its numbers for a page to format ({"params": {"r": 2.7e19}}, {"se_log": {"s": 10.5}},
    {"gradient": 0.02}, {"log_likelihood": None}, {"positive_definite": False}) and `detail` the
    same in one English line ("r = 2.7e+19"). bic = k ln(n) − 2 LL, n = clients. se: standard
    errors on the natural scale, from the inverse numerical Hessian of the negative log-likelihood
    in log-parameters (the parameterisation the optimiser works in), mapped back by the delta method
    SE(θ) = θ · SE(log θ); None for a parameter whose variance is not positive.
    """
    model: str
    params: dict[str, float]
    log_likelihood: float
    clients: int
    seconds: float
    converged: bool
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    usable: bool = True
    reason: str | None = None
    detail: str = ""
    bic: float = float("nan")
    se: dict[str, float | None] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def reject(self, reason: str, detail: str = "", facts: dict[str, Any] | None = None) -> None:
        if self.usable:  # the first reason found is the one reported
            self.usable, self.reason, self.detail, self.facts = False, reason, detail, facts or {}

    def as_dict(self) -> dict:
        return {"model": self.model, "params": {k: _num(v) for k, v in self.params.items()},
                "log_likelihood": _num(self.log_likelihood), "bic": _num(self.bic), "clients": self.clients,
                "seconds": round(self.seconds, 3), "converged": self.converged, "usable": self.usable,
                "reason": self.reason, "detail": self.detail, "facts": _plain(self.facts),
                "se": {k: _num(v) for k, v in self.se.items()}}


def _num(v: float | None) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _plain(facts: Any) -> Any:
    """Facts as JSON holds them: floats (None when not finite), nested dicts, booleans kept."""
    if isinstance(facts, dict):
        return {k: _plain(v) for k, v in facts.items()}
    if isinstance(facts, bool | str) or facts is None:
        return facts
    return _num(float(facts))


# ---- sufficient statistics -------------------------------------------------------------------


def summarise(client_ids: Array, days: Array, amounts: Array, calibration_end: int,
              unit: float = 1.0) -> tuple[Array, Array, Array, Array, Array]:
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
    """Group identical rows: (unique columns, weights, inverse index to expand results back), the
    groups in lexicographic order of the rows.

    Each column's values are ranked (np.unique), the ranks make one integer key per row, and one
    sort of the keys finds the groups: twice as fast as a lexicographic sort of the columns
    themselves (np.lexsort, the way taken when the keys could overflow or a column holds NaN,
    which that way never groups)."""
    cols = [np.asarray(c) for c in columns]
    n = len(cols[0]) if cols else 0
    if n == 1:  # one row (a client scored live after a write): its own group, nothing to rank
        return [c.copy() for c in cols], np.ones(1), np.zeros(1, dtype=np.int64)
    ranked = []
    span = 1
    for c in cols:
        if span > 2**62 or (c.dtype.kind == "f" and np.isnan(c).any()):
            return _compress_lexsort(cols)
        rank, size = _whole_ranks(c)
        ranked.append((rank, size))
        span *= max(size, 1)
    if span > 2**62:
        return _compress_lexsort(cols)
    key = np.zeros(n, dtype=np.int64)
    for rank, size in ranked:
        key = key * size + rank
    order = np.argsort(key)
    sorted_key = key[order]
    new = np.ones(n, dtype=bool)
    new[1:] = sorted_key[1:] != sorted_key[:-1]
    group = np.cumsum(new) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    weights = np.bincount(group).astype(float)
    firsts = order[new]
    return [c[firsts] for c in cols], weights, inverse


def _whole_ranks(c: Array) -> tuple[Array, int]:
    """Integers that order the column's values as the values do, one per distinct value, and how
    many there can be: the value itself (or 7 times it: days in weeks) less the smallest, when the
    column holds only such exact numbers - the models' data do - else the rank among the distinct
    values (a sort)."""
    if len(c) and c.dtype.kind in "iuf":
        for scale in (1.0, 7.0):
            whole = np.rint(c * scale)
            if np.array_equal(whole / scale, c) and np.abs(whole).max() < 2**50:
                low = whole.min()
                return (whole - low).astype(np.int64), int(whole.max() - low) + 1
    _values, rank = np.unique(c, return_inverse=True)
    return rank.reshape(-1), len(_values)


def _compress_lexsort(cols: list[Array]) -> tuple[list[Array], Array, Array]:
    order = np.lexsort(cols[::-1])
    ordered = [c[order] for c in cols]
    new = np.ones(len(order), dtype=bool)
    if len(order):
        new[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in ordered])
    group = np.cumsum(new) - 1
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = group
    weights = np.bincount(group).astype(float)
    return [c[new] for c in ordered], weights, inverse


@dataclass(frozen=True)
class Pairs:
    """Distinct (x, t_x) and (x, T) pairs and distinct x of a data set, with the indexes expanding
    each back to rows. The likelihoods are sums of terms in x, (x, t_x) and (x, T) alone; on grouped
    data of a million clients (10^5 distinct rows) there are only ~10^3-10^4 of each, so the special
    functions run on those and a gather builds the rows."""
    x_tx: Array
    tx: Array
    tx_index: Array
    x_T: Array
    T: Array
    T_index: Array
    xs: Array
    x_index: Array

    @classmethod
    def of(cls, x: Array, t_x: Array, T: Array) -> Pairs:
        (xa, ta), _w, ia = compress(x, t_x)
        (xb, tb), _w, ib = compress(x, T)
        (xs,), _w, ix = compress(x)
        return cls(xa, ta, ia, xb, tb, ib, xs, ix)


# ---- BG/NBD and MBG/NBD ----------------------------------------------------------------------


def _on_x(pairs: Pairs | None, fn: Callable[[Array], Array], x: Array) -> Array:
    """fn(x), evaluated once per distinct x when the distinct values are known."""
    return fn(x) if pairs is None else fn(pairs.xs)[pairs.x_index]


def _on_pairs(pairs: Pairs | None, fn: Callable[[Array, Array], Array], x: Array, t: Array, column: str) -> Array:
    """fn(x, t) with t = t_x or T, evaluated once per distinct (x, t) pair when they are known."""
    if pairs is None:
        return fn(x, t)
    if column == "t_x":
        return fn(pairs.x_tx, pairs.tx)[pairs.tx_index]
    return fn(pairs.x_T, pairs.T)[pairs.T_index]


def bgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array, pairs: Pairs | None = None) -> Array:
    r, alpha, a, b = params

    def head(xs: Array) -> Array:
        return gammaln(r + xs) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xs) - betaln(a, b)

    def died(xs: Array) -> Array:
        with np.errstate(divide="ignore"):
            return np.where(xs > 0, np.log(a) - np.log(np.maximum(b + xs - 1, 1e-300)), -np.inf)

    a3 = _on_pairs(pairs, lambda xs, t: -(r + xs) * np.log(alpha + t), x, T, "T")
    a4 = _on_pairs(pairs, lambda xs, t: -(r + xs) * np.log(alpha + t), x, t_x, "t_x")
    return _on_x(pairs, head, x) + np.logaddexp(a3, _on_x(pairs, died, x) + a4)


def mbgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array, pairs: Pairs | None = None) -> Array:
    r, alpha, a, b = params

    def head(xs: Array) -> Array:
        return gammaln(r + xs) - gammaln(r) + r * np.log(alpha) - betaln(a, b)

    a3 = _on_pairs(pairs, lambda xs, t: betaln(a, b + xs + 1) - (r + xs) * np.log(alpha + t), x, T, "T")
    a4 = _on_pairs(pairs, lambda xs, t: betaln(a + 1, b + xs) - (r + xs) * np.log(alpha + t), x, t_x, "t_x")
    return _on_x(pairs, head, x) + np.logaddexp(a3, a4)


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


def bgnbd_expected(params: dict, t: float, x: Array, t_x: Array, T: Array, *, modified: bool = False,
                   p_alive: Array | None = None) -> Array:
    """Expected purchases in (T, T + t] for a client with history (x, t_x, T); `p_alive`: the
    model's P(alive) of these clients when already computed."""
    r, alpha, a, b = (params[k] for k in PARAMS["bg-nbd"])
    shift = 1.0 if modified else 0.0
    z = t / (alpha + T + t)
    head = (a + b + x - 1 + shift) / (a - 1)
    # ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x+σ; a+b+x-1+σ; z) with 1-z = (α+T)/(α+T+t), rewritten by
    # Euler's transformation as (1-z)^(a-1) · 2F1(a+b-1+σ-r, a-1; a+b+x-1+σ; z): the original product is
    # 0 · inf = nan for heavy buyers (x in the thousands) over long horizons.
    tail = 1 - (1 - z) ** (a - 1) * hyp2f1(a + b - 1 + shift - r, a - 1, a + b + x - 1 + shift, z)
    if p_alive is None:
        p_alive = mbgnbd_p_alive(params, x, t_x, T) if modified else bgnbd_p_alive(params, x, t_x, T)
    return head * tail * p_alive


# ---- Pareto/NBD ------------------------------------------------------------------------------


def _pareto_log_a0(r: float, alpha: float, s: float, beta: float, x: Array, t_x: Array, T: Array,
                   pairs: Pairs | None = None) -> Array:
    """log A0 of the Pareto/NBD likelihood, choosing the 2F1 form that converges (z in [0, 1)).

    A0 = F(t_x) − F(T), each F a function of (x, t) alone: with `pairs`, F is evaluated once per
    distinct (x, t_x) and (x, T) pair (a few thousand on a million clients) and expanded back."""
    # Euler's transformation 2F1(a, b; c; z) = (1 - z)^(c-a-b) 2F1(c-a, c-b; c; z) with a = r+s+x,
    # c = a + 1 turns the series into 2F1(1, ·; r+s+x+1; z), which stays near 1 however large x is;
    # the untransformed 2F1(r+s+x, r+x; r+s+x+1; z) grows like (1-z)^-(r+x) and overflows for
    # heavy buyers when alpha < beta. (1-z)^(c-a-b) is taken in logs.
    def log_f(xs: Array, t: Array) -> Array:
        rsx = r + s + xs
        b2: float | Array
        power: float | Array
        if alpha >= beta:
            big, b2, power = alpha, r + xs, -s         # 2F1(rsx, s+1; rsx+1; z) = (1-z)^-s 2F1(1, r+x; rsx+1; z)
        else:
            big, b2, power = beta, s + 1, 1 - r - xs   # 2F1(rsx, r+x; rsx+1; z) = (1-z)^(1-r-x) 2F1(1, s+1; rsx+1; z)
        z = abs(alpha - beta) / (big + t)
        return power * np.log1p(-z) + np.log(hyp2f1(1.0, b2, rsx + 1, z)) - rsx * np.log(big + t)

    if pairs is None:
        log_f_tx, log_f_T = log_f(x, t_x), log_f(x, T)
    else:
        log_f_tx = log_f(pairs.x_tx, pairs.tx)[pairs.tx_index]
        log_f_T = log_f(pairs.x_T, pairs.T)[pairs.T_index]
    # A0 = F(t_x) - F(T) > 0; in logs without cancelling to zero for long histories.
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.log1p(-np.exp(np.minimum(log_f_T - log_f_tx, 0.0)))
    return log_f_tx + diff


def pareto_log_likelihood(params: Array, x: Array, t_x: Array, T: Array, pairs: Pairs | None = None) -> Array:
    r, alpha, s, beta = params

    def head(xs: Array) -> Array:
        return gammaln(r + xs) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)

    alive_all_along = _on_pairs(pairs, lambda xs, t: -(r + xs) * np.log(alpha + t) - s * np.log(beta + t), x, T, "T")
    died = _on_x(pairs, lambda xs: np.log(s) - np.log(r + s + xs), x) + _pareto_log_a0(r, alpha, s, beta, x, t_x, T,
                                                                                         pairs)
    return _on_x(pairs, head, x) + np.logaddexp(alive_all_along, died)


# From this many clients, P(alive)'s 2F1 terms are evaluated per distinct (x, t_x) and (x, T) pair
# (Pairs): the same values per client, a third of the evaluations on a company's data.
PAIRS_FROM = 10_000


def pareto_p_alive(params: dict, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, s, beta = (params[k] for k in PARAMS["pareto-nbd"])
    x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
    pairs = Pairs.of(x, t_x, T) if x.ndim == 1 and len(x) >= PAIRS_FROM else None
    log_term = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                + _pareto_log_a0(r, alpha, s, beta, x, t_x, T, pairs))
    return expit(-np.nan_to_num(log_term, nan=-np.inf))


def pareto_expected(params: dict, t: float, x: Array, t_x: Array, T: Array, p_alive: Array | None = None) -> Array:
    """Expected purchases in (T, T + t]; `p_alive`: pareto_p_alive of these clients when already computed."""
    r, alpha, s, beta = (params[k] for k in PARAMS["pareto-nbd"])
    rate = (r + x) * (beta + T) / (alpha + T)
    if abs(s - 1) < 1e-6:
        horizon = np.log((beta + T + t) / (beta + T))
    else:
        horizon = (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1)
    return rate * horizon * (pareto_p_alive(params, x, t_x, T) if p_alive is None else p_alive)


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

LOG_LIKELIHOODS: dict[str, Callable[..., Array]] = {
    "bg-nbd": bgnbd_log_likelihood,
    "mbg-nbd": mbgnbd_log_likelihood,
    "pareto-nbd": pareto_log_likelihood,
}


def _fit(model: str, loglik: Callable[..., Array], data: tuple[Array, ...], weights: Array, start: Array) -> Fit:
    """Maximum likelihood over log-parameters (so they stay positive), weighted by group sizes,
    then judged (see `judge`): every Fit says whether it may be used, and why not."""
    started = time.perf_counter()
    total = float(weights.sum())
    # Values by the exact parameters: the optimiser's last point, the convergence check's gradient
    # and the Hessian's diagonal (judge) evaluate the same points again, at the same step.
    seen: dict[bytes, float] = {}

    def objective(log_params: Array) -> float:
        key = np.asarray(log_params, dtype=float).tobytes()
        value = seen.get(key)
        if value is None:
            with np.errstate(all="ignore"):
                values = loglik(np.exp(log_params), *data)
                ll = (weights * values).sum()  # not np.dot: threaded BLAS stalls on a busy machine
            value = seen[key] = -ll / total if np.isfinite(ll) else 1e100
        return value

    if total <= 0:
        fit = Fit(model, dict(zip(PARAMS[model], start.tolist(), strict=True)), float("nan"), 0, 0.0, False,
                  "no data")
        fit.reject(BAD_LIKELIHOOD, "no clients")
        return fit
    with np.errstate(all="ignore"):
        best = minimize(objective, np.log(start), method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-7})
        if not best.success:  # a rough surface: let the simplex find the basin, then polish
            rough = minimize(objective, best.x, method="Nelder-Mead", options={"maxfev": 3000, "adaptive": True})
            polished = minimize(objective, rough.x, method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-7})
            best = min((best, rough, polished), key=lambda res: res.fun)
        for _restart in range(2):  # "converged" on a tiny relative change while the gradient is not ~0
            if _gradient(objective, best.x) < GRADIENT_TOLERANCE:
                break
            again = minimize(objective, best.x, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-9})
            best = again if again.fun <= best.fun else best
    params = dict(zip(PARAMS[model], np.exp(best.x).tolist(), strict=True))
    ll = float(-best.fun * total) if best.fun < 1e100 else float("nan")
    fit = Fit(model, params, ll, round(total), 0.0, bool(best.success), str(best.message))
    judge(fit, objective, np.asarray(best.x, dtype=float), total)
    fit.seconds = time.perf_counter() - started
    return fit


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """OpenBLAS on one thread while fitting: the optimiser's small matrix steps (L-BFGS-B calls
    BLAS on 4-10 element vectors) gain nothing from threads, and waking them cost more than the
    steps (measured: a third of a first refresh's fitting time on two busy cores); the threads'
    spinning also takes a core from the database server. Fits may run in several threads at once:
    the first to enter sets the limit (threadpoolctl, every BLAS loaded: numpy's and scipy's), the
    last to leave restores the previous counts."""
    with _BLAS_LOCK:
        if not _BLAS_STATE["depth"]:
            _BLAS_STATE["limit"] = threadpool_limits(limits=1, user_api="blas")
        _BLAS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["depth"] -= 1
            if not _BLAS_STATE["depth"]:
                _BLAS_STATE.pop("limit").restore_original_limits()


_BLAS_LOCK = threading.Lock()
_BLAS_STATE: dict[str, Any] = {"depth": 0}


def _hessian(f: Objective, at: Array, h: float) -> Array:
    """Central-difference Hessian of f at `at` (2k + 4·k(k−1)/2 + 1 evaluations)."""
    k = len(at)
    f0 = f(at)
    hess = np.zeros((k, k))
    step = np.eye(k) * h
    for i in range(k):
        hess[i, i] = (f(at + step[i]) - 2 * f0 + f(at - step[i])) / (h * h)
        for j in range(i + 1, k):
            hess[i, j] = hess[j, i] = (f(at + step[i] + step[j]) - f(at + step[i] - step[j])
                                       - f(at - step[i] + step[j]) + f(at - step[i] - step[j])) / (4 * h * h)
    return hess


# Converged means: the gradient of the mean negative log-likelihood per client, in log-parameters,
# is ~0 (a change of 1e-4 in any log-parameter moves it by < 1e-8). The optimiser's own flag is
# not enough either way: L-BFGS-B stops "successfully" on a tiny relative change while a parameter
# is still running off to infinity, and fails ("ABNORMAL_TERMINATION_IN_LNSRCH") at a flat optimum.
GRADIENT_TOLERANCE = 1e-4
# A standard error of a log-parameter above this means the data leave the parameter free over a
# factor of e^5 ≈ 150 per standard error: not identified (one client, or nobody ever leaving).
MAX_LOG_SE = 5.0


def _gradient(objective: Objective, at: Array, h: float = 1e-3) -> float:
    """Largest absolute central-difference partial derivative (inf when not finite)."""
    with np.errstate(all="ignore"):
        grad = np.array([(objective(at + h * e) - objective(at - h * e)) / (2 * h) for e in np.eye(len(at))])
    return float(np.max(np.abs(grad))) if np.isfinite(grad).all() else float("inf")


def judge(fit: Fit, objective: Objective, log_params: Array, total: float, h: float = 1e-3) -> None:
    """Fill bic and se, and reject the fit (usable = False, with a reason) when it is
    - not a finite, non-zero log-likelihood (0 means the data do not depend on the parameters,
      as when every client's T is 0),
    - at the boundary: a parameter outside PARAM_RANGE,
    - not converged: the gradient is not ~0 (GRADIENT_TOLERANCE),
    - not a maximum, or not identified: the Hessian of the negative log-likelihood is not positive
      definite, or a log-parameter's standard error exceeds MAX_LOG_SE."""
    k = len(log_params)
    fit.bic = k * np.log(max(total, 1.0)) - 2 * fit.log_likelihood if np.isfinite(fit.log_likelihood) else np.nan
    fit.se = dict.fromkeys(fit.params)
    lo, hi = PARAM_RANGE
    outside = {name: value for name, value in fit.params.items() if not lo <= value <= hi}
    if not np.isfinite(fit.log_likelihood) or fit.log_likelihood == 0.0:
        fit.reject(BAD_LIKELIHOOD, f"LL = {fit.log_likelihood}", {"log_likelihood": fit.log_likelihood})
    if outside:
        fit.reject(AT_BOUNDARY, ", ".join(f"{name} = {value:.3g}" for name, value in outside.items()),
                   {"params": outside})
    if not fit.usable:
        return
    gradient = _gradient(objective, log_params, h)
    fit.extra["gradient"] = gradient if np.isfinite(gradient) else None
    fit.converged = gradient < GRADIENT_TOLERANCE
    if not fit.converged:
        fit.reject(NOT_CONVERGED, f"gradient {gradient:.2g}; {fit.message}", {"gradient": gradient})
        return
    with np.errstate(all="ignore"):
        hess = _hessian(objective, log_params, h) * total  # of the total negative log-likelihood
    try:
        np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        fit.reject(NOT_IDENTIFIED, "the Hessian is not positive definite", {"positive_definite": False})
    try:
        cov = np.linalg.inv(hess) if np.isfinite(hess).all() else None
    except np.linalg.LinAlgError:
        cov = None
    if cov is not None:
        var = np.diag(cov)
        theta = np.exp(log_params)
        fit.se = {name: (float(theta[i] * np.sqrt(var[i])) if var[i] > 0 else None)
                  for i, name in enumerate(fit.params)}
        loose = {name: float(np.sqrt(var[i])) for i, name in enumerate(fit.params) if var[i] > MAX_LOG_SE ** 2}
        if loose:
            fit.reject(NOT_IDENTIFIED, ", ".join(f"SE(log {name}) = {v:.3g}" for name, v in loose.items()),
                       {"se_log": loose})


def _start(model: str, given: dict[str, float] | None, default: list[float]) -> Array:
    """The optimiser's starting point: `given` (e.g. the same model fitted on nearly the same data)
    when it names every parameter, else `default`."""
    names = PARAMS[model]
    return np.array([given[k] for k in names] if given and all(k in given for k in names) else default, dtype=float)


def fit_bgnbd(x: Array, t_x: Array, T: Array, weights: Array | None = None, *, modified: bool = False,
              start: dict[str, float] | None = None) -> Fit:
    weights = np.ones_like(x, dtype=float) if weights is None else weights
    scale = float(np.average(T, weights=weights)) or 1.0
    model = "mbg-nbd" if modified else "bg-nbd"
    begin = _start(model, start, [1.0, scale, 1.0, 1.0])
    pairs = Pairs.of(x, t_x, T)
    base = LOG_LIKELIHOODS[model]

    def loglik(params: Array, x: Array, t_x: Array, T: Array) -> Array:
        return base(params, x, t_x, T, pairs)

    return _fit(model, loglik, (x, t_x, T), weights, begin)


def fit_pareto(x: Array, t_x: Array, T: Array, weights: Array | None = None,
               start: dict[str, float] | None = None) -> Fit:
    weights = np.ones_like(x, dtype=float) if weights is None else weights
    scale = float(np.average(T, weights=weights)) or 1.0
    pairs = Pairs.of(x, t_x, T)

    def loglik(params: Array, x: Array, t_x: Array, T: Array) -> Array:
        return pareto_log_likelihood(params, x, t_x, T, pairs)

    return _fit("pareto-nbd", loglik, (x, t_x, T), weights, _start("pareto-nbd", start, [1.0, scale, 1.0, scale]))


def fit_gamma_gamma(x: Array, m_x: Array, weights: Array | None = None) -> Fit:
    """Fit on clients with at least one repeat purchase and a positive mean spend."""
    keep = (x > 0) & (m_x > 0)
    x, m_x = x[keep], m_x[keep]
    weights = np.ones_like(x, dtype=float) if weights is None else weights[keep]
    mean = float(np.average(m_x, weights=weights)) if len(x) else 1.0
    (xs,), _w, x_index = compress(x)
    log_m, total = np.log(m_x), m_x * x

    def loglik(params: Array, x: Array, m_x: Array) -> Array:
        # gamma_gamma_log_likelihood, with the terms in x alone computed once per distinct x and the
        # logs of the data taken once per fit
        p, q, gamma = params
        px = p * xs
        head = gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + px * np.log(xs)
        return head[x_index] + (p * x - 1) * log_m - (p * x + q) * np.log(gamma + total)

    fit = _fit("gamma-gamma", loglik, (x, m_x), weights, np.array([2.0, 3.0, mean]))
    if fit.params["q"] <= 1:
        fit.reject(INFINITE_SPEND, f"q = {fit.params['q']:.3g}", {"params": {"q": fit.params["q"]}})
    fit.extra["frequency_spend_correlation"] = weighted_correlation(x, m_x, weights)
    return fit


def weighted_correlation(a: Array, b: Array, weights: Array | None = None) -> float:
    """Pearson correlation of a and b, each row counted `weights` times; nan when undefined."""
    w = np.ones(len(a)) if weights is None else np.asarray(weights, dtype=float)
    if len(a) < 3 or w.sum() <= 0:
        return float("nan")
    da, db = a - np.average(a, weights=w), b - np.average(b, weights=w)
    denominator = np.sqrt((w * da * da).sum() * (w * db * db).sum())
    return float((w * da * db).sum() / denominator) if denominator > 0 else float("nan")


def total_log_likelihood(model: str, params: dict, *data: Array) -> float:
    loglik = LOG_LIKELIHOODS.get(model, gamma_gamma_log_likelihood)
    return float(np.sum(loglik(np.array([params[k] for k in PARAMS[model]]), *data)))


__all__ = [
    "PARAM_RANGE",
    "Fit",
    "bgnbd_expected",
    "bgnbd_log_likelihood",
    "bgnbd_p_alive",
    "compress",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_pareto",
    "gamma_gamma_expected",
    "gamma_gamma_log_likelihood",
    "judge",
    "logsumexp",
    "mbgnbd_log_likelihood",
    "mbgnbd_p_alive",
    "pareto_expected",
    "pareto_log_likelihood",
    "pareto_p_alive",
    "summarise",
    "total_log_likelihood",
    "weighted_correlation",
]
