"""A client's status, from the model's own forecast of the next few weeks (pure numpy).

Status answers "is this client still ours?" in a way the backtest can check: the clients marked
active must buy again more often than those at risk, and those more often than the lost.

P(alive) alone does not order that: a weekly buyer silent for two months has a low P(alive) and
still buys far more often than a once-a-year buyer with a high one. So status ranks the chance of
buying at least once within the horizon H (the holdout's length, 13 weeks by default):

    p_buy = P(alive) · (1 − ((α + T) / (α + T + H)) ^ (r + x))

the chance of being alive times the chance that a client with this history, while alive, buys at
least once in H: given alive, the purchase rate λ is Gamma(r + x, α + T) in all three models, and
P(no purchase in H | alive) = E[e^(−λH)] = ((α + T) / (α + T + H))^(r + x). (Leaving during H is
ignored, so p_buy slightly overstates; the backtest reports what actually happened.)

The thresholds follow the company's own rhythm, not fixed probabilities: `typical` is the chance
that a client who is still a client buys within H (Σ p_buy / Σ P(alive) over buyers). Active: p_buy
at least `active_share` (default ½) of typical; lost: below `lost_share` (default 1/10) of typical;
at risk in between. New: one purchase, made within `new_days`. A client without purchases is new;
one whose only operations are returns is lost (no purchase to forecast from).

Without a model (little history), rules: recency against the company's typical gap between
purchases (median over repeat buyers): active within 2 gaps, at risk within 4, lost beyond.
"""
from __future__ import annotations

import numpy as np

from saas.clients.models import STATUSES

Array = np.ndarray
ORDERED = ("active", "at_risk", "lost")  # the share buying again must fall along this order
DEFAULT_ACTIVE_SHARE = 0.5
DEFAULT_LOST_SHARE = 0.1
# Thresholds tried, in this order after the company's own, when those do not order the backtest.
FALLBACK_SHARES = ((0.5, 0.1), (0.75, 0.2), (1.0, 0.25), (0.5, 0.2), (0.35, 0.1), (0.75, 0.35), (1.0, 0.5))


def p_buy(params: dict[str, float], horizon: float, x: Array, T: Array, p_alive: Array) -> Array:
    """The chance of at least one purchase in (T, T + horizon] (see the module doc)."""
    r, alpha = params["r"], params["alpha"]
    x = np.maximum(np.asarray(x, dtype=float), 0)
    T = np.asarray(T, dtype=float)
    with np.errstate(all="ignore"):
        none = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon)))
    return np.clip(np.nan_to_num(p_alive, nan=0.0) * (1 - none), 0.0, 1.0)


def typical(p_buy_: Array, p_alive: Array) -> float:
    """The chance that a client who is still a client buys within the horizon."""
    alive = float(np.nansum(p_alive))
    return float(np.nansum(p_buy_) / alive) if alive > 0 else 0.0


def thresholds(typical_: float, active_share: float, lost_share: float) -> dict[str, float]:
    return {"typical": typical_, "active_share": active_share, "lost_share": lost_share,
            "active_from": typical_ * active_share, "lost_below": typical_ * lost_share}


def classify(p_buy_: Array, n: Array, first_age: Array, limits: dict[str, float], new_days: int) -> Array:
    """Status of buyers from p_buy and the thresholds (`thresholds`); see `non_buyers` for the rest."""
    status = np.where(p_buy_ >= limits["active_from"], "active",
                      np.where(p_buy_ >= limits["lost_below"], "at_risk", "lost")).astype(object)
    return _new(status, n, first_age, new_days)


def _new(status: Array, n: Array, first_age: Array, new_days: int) -> Array:
    status[(n == 1) & (first_age <= new_days)] = "new"
    return status


def non_buyers(status: Array, n: Array, returned: Array) -> Array:
    """No purchase yet: new (a prospect); only returns: lost (nothing to forecast from, and not new)."""
    none = n <= 0
    status[none] = np.where(returned[none] > 0, "lost", "new")
    return status


def typical_gap(n: Array, first_age: Array, last_age: Array, fallback_days: float) -> float:
    """Median days between purchases of the repeat buyers (at least a day)."""
    repeat = n > 1
    if not repeat.any():
        return max(float(fallback_days), 1.0)
    gaps = (first_age[repeat] - last_age[repeat]) / (n[repeat] - 1)
    return max(float(np.median(gaps)), 1.0)


def rule_status(n: Array, first_age: Array, last_age: Array, gap_days: float, new_days: int) -> Array:
    """Recency against the typical gap: active within 2 gaps, at risk within 4, lost beyond."""
    status = np.where(last_age <= 2 * gap_days, "active", np.where(last_age <= 4 * gap_days, "at_risk", "lost"))
    return _new(status.astype(object), n, first_age, new_days)


def shares(status: Array, holdout: Array) -> dict[str, dict[str, float | int | None]]:
    """Per status: clients, the share who bought again in the holdout, mean purchases there."""
    out: dict[str, dict[str, float | int | None]] = {}
    bought_again = (holdout > 0).astype(float)
    for s in STATUSES:
        inside = status == s
        k = int(inside.sum())
        out[s] = {"clients": k, "bought_again": float(bought_again[inside].mean()) if k else None,
                  "purchases": float(holdout[inside].mean()) if k else None}
    return out


def is_ordered(by_status: dict[str, dict]) -> bool:
    """Strictly decreasing share buying again from active to at risk to lost (each group present)."""
    active, at_risk, lost = (by_status.get(s, {}).get("bought_again") for s in ORDERED)
    if active is None or at_risk is None or lost is None:
        return False
    return active > at_risk > lost


def choose_shares(p_buy_: Array, p_alive: Array, n: Array, first_age: Array, holdout: Array, new_days: int,
                  preferred: tuple[float, float]) -> tuple[dict[str, float], Array, bool]:
    """Thresholds for the company, checked on the backtest: the company's own (`preferred`) when
    they order the shares; else the first of FALLBACK_SHARES that does (with every group present);
    else the company's own, reported as not ordered. Returns (thresholds, status at the cut-off,
    ordered)."""
    typical_ = typical(p_buy_[n > 0], p_alive[n > 0])
    first_try = None
    for active_share, lost_share in (preferred, *FALLBACK_SHARES):
        if lost_share >= active_share:
            continue
        limits = thresholds(typical_, active_share, lost_share)
        status = classify(p_buy_, n, first_age, limits, new_days)
        if first_try is None:
            first_try = (limits, status)
        if is_ordered(shares(status, holdout)):
            return limits, status, True
    if first_try is None:  # not reached: every fallback has lost_share < active_share
        raise ValueError(f"no usable (active, lost) shares: {preferred}, {FALLBACK_SHARES}")
    return first_try[0], first_try[1], False
