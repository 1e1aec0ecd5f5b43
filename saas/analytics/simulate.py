"""Generative processes of the models, for parameter-recovery tests, benchmarks and demo data."""
from __future__ import annotations

import numpy as np

Array = np.ndarray


def _poisson_until(rng: np.random.Generator, lam: Array, end: Array, max_events: int) -> tuple[Array, Array]:
    """Repeat-purchase times of a Poisson process per client on (0, end]: (count, last time)."""
    n = len(lam)
    gaps = rng.exponential(1.0, size=(n, max_events)) / lam[:, None]
    times = np.cumsum(gaps, axis=1)
    inside = times <= end[:, None]
    count = inside.sum(axis=1)
    last = np.where(count > 0, np.take_along_axis(times, np.maximum(count - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    return count.astype(float), last


def pareto_nbd(n: int, r: float, alpha: float, s: float, beta: float, T: Array | float,
               seed: int = 0, max_events: int = 400) -> tuple[Array, Array, Array]:
    """Each client buys at rate λ ~ Γ(r, α) until a lifetime τ ~ Exp(μ), μ ~ Γ(s, β)."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    tau = rng.exponential(1 / mu)
    x, t_x = _poisson_until(rng, lam, np.minimum(tau, T), max_events)
    return x, t_x, T


def bg_nbd(n: int, r: float, alpha: float, a: float, b: float, T: Array | float,
           seed: int = 0, max_events: int = 400, modified: bool = False) -> tuple[Array, Array, Array]:
    """Poisson purchases at λ ~ Γ(r, α); after each purchase the client drops out with p ~ B(a, b).
    Under MBG/NBD the client may also drop out right after the first purchase (at time 0)."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    # Number of repeat purchases made before dropping out (geometric), counted from time 0.
    survive_first = np.ones(n, dtype=bool) if not modified else rng.random(n) >= p
    allowed = rng.geometric(p) - 1  # purchases made while alive, each followed by a dropout coin
    allowed = np.where(survive_first, allowed + (1 if modified else 0), 0)
    gaps = rng.exponential(1.0, size=(n, max_events)) / lam[:, None]
    times = np.cumsum(gaps, axis=1)
    k = np.arange(1, max_events + 1)[None, :]
    inside = (times <= T[:, None]) & (k <= allowed[:, None] + (0 if modified else 1))
    x = inside.sum(axis=1)
    last = np.where(x > 0, np.take_along_axis(times, np.maximum(x - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    return x.astype(float), last, T


def gamma_gamma(x: Array, p: float, q: float, gamma: float, seed: int = 0) -> Array:
    """Mean spend of x transactions, each z ~ Γ(p, ν), with ν ~ Γ(q, γ) per client."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1 / gamma, len(x))
    safe_x = np.maximum(x, 1)
    total = rng.gamma(p * safe_x, 1 / nu)  # the sum of x Γ(p, ν) draws is Γ(p x, ν)
    return np.where(x > 0, total / safe_x, 0.0)


def transactions(model: str, n: int, params: dict[str, float], *, join_days: int, end_day: int, seed: int = 0,
                 spend: dict[str, float] | None = None, max_events: int = 400) -> tuple[Array, Array, Array]:
    """A company with a known process, as transaction rows (client id, day number, amount).

    Client i makes a first purchase on a day uniform in [0, join_days) and then follows `model`
    ("pareto-nbd", "bg-nbd" or "mbg-nbd", params in weeks) until `end_day`: purchases at the times of
    a Poisson process of rate λ ~ Γ(r, α) per week while alive; Pareto/NBD: alive for τ ~ Exp(μ),
    μ ~ Γ(s, β); BG/NBD: leaves after each repeat purchase with probability p ~ B(a, b); MBG/NBD:
    also right after the first purchase. A purchase lands on day first + ⌊7 t⌋ (two on one day are one
    purchase day). Amounts follow Gamma-Gamma (z ~ Γ(p, ν), ν ~ Γ(q, γ) per client) when `spend` is
    given, else 1.0. Times after `max_events` purchases are cut (raise it for heavy buyers)."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, join_days, n)
    horizon = (end_day - first) / 7.0  # weeks each client can be observed
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    times = np.cumsum(rng.exponential(1.0, size=(n, max_events)), axis=1) / lam[:, None]
    if model == "pareto-nbd":
        death = rng.exponential(1 / rng.gamma(params["s"], 1 / params["beta"], n))
        alive = times <= death[:, None]
    elif model in ("bg-nbd", "mbg-nbd"):
        p = rng.beta(params["a"], params["b"], n)
        repeats = rng.geometric(p) - (1 if model == "mbg-nbd" else 0)  # repeat purchases before leaving
        alive = np.arange(1, max_events + 1)[None, :] <= repeats[:, None]
    else:
        raise ValueError(model)
    inside = alive & (times <= horizon[:, None])
    row, col = np.nonzero(inside)
    client = np.r_[np.arange(n), row]
    day = np.r_[first, first[row] + np.floor(times[row, col] * 7).astype(np.int64)]
    if spend is None:
        amount = np.ones(len(client))
    else:
        nu = rng.gamma(spend["q"], 1 / spend["gamma"], n)
        amount = rng.gamma(spend["p"], 1 / nu[client])
    return client, day, amount
