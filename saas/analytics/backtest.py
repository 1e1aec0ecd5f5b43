"""Backtest: fit on the history up to a cut-off, predict the held-out period, compare with what happened.

Pure numpy over transaction rows (client id, day number, amount) and per-client arrays; the app's
SQL and the CLI's CSV reading stay outside. Every dict returned is JSON-serialisable (plain floats,
ints, str and None).

Returns and purchases (`purchase_days`): a purchase day is a day with a positive amount (one client's
purchases on one day are one purchase). A negative amount is a return: it is never a purchase day,
so a purchase and its refund is x = 0, not 1. It reduces spend: it refunds the same day's purchases
first, then the client's earlier purchase days, latest first, down to zero (spend is never negative;
a return larger than everything bought before it leaves the excess unmatched, and counted). A day
refunded in full stays a purchase day: the client came and bought, which is what the purchase
models count; only its spend is gone. Zero amounts are neither purchases nor returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from saas.analytics import btyd, pgcopy
from saas.clients.models import STATUSES

Array = np.ndarray
REPEAT_BUCKETS = ("0", "1", "2", "3", "4", "5", "6", "7+")
STATUS_ORDER = STATUSES


# ---- from transactions to calibration statistics and holdout counts ----------------------------


@dataclass
class Purchases:
    """One row per purchase day (client, day, amount net of returns, ≥ 0), plus what the returns did."""
    client: Array
    day: Array
    amount: Array
    stats: dict[str, float] = field(default_factory=dict)


def purchase_days(client_ids: Array, days: Array, amounts: Array, returns: str = "returns") -> Purchases:
    """Purchase days from transaction rows; `returns` is "returns" (see the module doc) or "ignore"
    (negative amounts are dropped: they neither count nor reduce spend)."""
    if returns not in ("returns", "ignore"):
        raise ValueError(f"returns must be 'returns' or 'ignore', not {returns!r}")
    ids, d, amt = (np.asarray(a) for a in (client_ids, days, amounts))
    amt = amt.astype(float)
    negative = amt < 0
    stats: dict[str, float] = {"return_rows": int(negative.sum()), "zero_rows": int((amt == 0).sum()),
                               "returned": float(np.abs(amt[negative]).sum()), "refunded_in_full": 0,
                               "unmatched_returns": 0.0}
    order = np.lexsort((d, ids))
    ids, d, amt = ids[order], d[order], amt[order]
    new_day = np.ones(len(ids), dtype=bool)
    new_day[1:] = (ids[1:] != ids[:-1]) | (d[1:] != d[:-1])
    index = np.cumsum(new_day) - 1
    bought = np.bincount(index, weights=np.where(amt > 0, amt, 0.0), minlength=int(new_day.sum()))
    refunded = np.bincount(index, weights=np.where(amt < 0, -amt, 0.0), minlength=int(new_day.sum()))
    day_client, day = ids[new_day], d[new_day]
    net = bought.copy()
    if returns == "returns" and refunded.any():
        starts = np.flatnonzero(np.r_[True, day_client[1:] != day_client[:-1]])
        ends = np.r_[starts[1:], len(day_client)]
        group = np.repeat(np.arange(len(starts)), ends - starts)
        # Only clients with a return need the walk back in time; they are few.
        for g in np.unique(group[refunded > 0]):
            pending = 0.0
            for k in range(ends[g] - 1, starts[g] - 1, -1):  # latest day first
                pending += refunded[k]
                taken = min(net[k], pending)
                net[k] -= taken
                pending -= taken
            stats["unmatched_returns"] += float(pending)
        stats["refunded_in_full"] = int(((bought > 0) & (net <= 1e-9)).sum())
    keep = bought > 0
    return Purchases(day_client[keep], day[keep], np.maximum(net[keep], 0.0), stats)


@dataclass
class Split:
    """Calibration statistics per client (those who bought by the calibration end) and their
    purchase days in the holdout (calibration_end, holdout_end]; times in model units."""
    client: Array
    x: Array
    t_x: Array
    T: Array
    m_x: Array
    holdout: Array
    holdout_length: float
    spend: Array  # net spend of all calibration purchase days (the first included)
    stats: dict[str, float] = field(default_factory=dict)


def split(client_ids: Array, days: Array, amounts: Array, calibration_end: int, holdout_end: int,
          unit: float = 7.0, returns: str = "returns") -> Split:
    """Calibration (x, t_x, T, m_x) from rows up to calibration_end, holdout purchase counts from
    rows in (calibration_end, holdout_end]. Returns made after the calibration end do not change the
    calibration figures: nobody knew of them at the cut-off."""
    ids, d, amt = (np.asarray(a) for a in (client_ids, days, amounts))
    early = d <= calibration_end
    cal = purchase_days(ids[early], d[early], amt[early], returns)
    if len(cal.client) == 0:
        empty = np.zeros(0)
        return Split(empty.astype(ids.dtype), empty, empty, empty, empty, empty,
                     (holdout_end - calibration_end) / unit, empty, cal.stats)
    client, x, t_x, T, m_x = btyd.summarise(cal.client, cal.day, cal.amount, calibration_end, unit=unit)
    spend = np.bincount(np.searchsorted(client, cal.client), weights=cal.amount, minlength=len(client))
    upto = d <= holdout_end
    everything = purchase_days(ids[upto], d[upto], amt[upto], returns)
    later = everything.day > calibration_end
    later_clients = everything.client[later]
    position = np.searchsorted(client, later_clients)
    position = np.minimum(position, len(client) - 1)
    known = client[position] == later_clients  # clients new in the holdout are not in the backtest
    holdout = np.bincount(position[known], minlength=len(client)).astype(float)
    stats = {**cal.stats, "holdout_new_clients": len(np.unique(later_clients[~known]))}
    return Split(client, x, t_x, T, m_x, holdout, (holdout_end - calibration_end) / unit, spend, stats)


# ---- comparing predictions with what happened ---------------------------------------------------


def repeat_bucket(x: Array) -> Array:
    """0, 1, … 6 repeat purchases in calibration, and 7 for "7+"."""
    return np.minimum(np.asarray(x, dtype=float), 7).astype(int)


def holdout_error(x_cal: Array, predicted: Array, actual: Array, weights: Array | None = None) -> float:
    """Mean absolute error, per client, of predicted against actual holdout purchases within each
    repeat bucket: Σ_b |Σ_{i∈b} predicted_i − Σ_{i∈b} actual_i| / N.

    Per bucket, not per client: a per-client absolute error rewards predicting the median (0 for
    most clients) instead of the mean, while bucket totals are what the page shows and what a
    mean-unbiased model gets right."""
    w = np.ones(len(x_cal)) if weights is None else np.asarray(weights, dtype=float)
    b = repeat_bucket(x_cal)
    gap = np.bincount(b, weights=w * (np.asarray(predicted, float) - np.asarray(actual, float)), minlength=8)
    total = float(w.sum())
    return float(np.abs(gap).sum() / total) if total > 0 else float("nan")


def _mean(values: Array, weights: Array) -> float | None:
    total = float(weights.sum())
    return float((weights * values).sum() / total) if total > 0 else None


def compare(x_cal: Array, predicted: Array, actual: Array, status: Array | None = None,
            weights: Array | None = None) -> dict:
    """Predicted against actual holdout purchases.

    {"clients": n,
     "by_repeat": [{"repeat": "0".."7+", "clients", "predicted", "actual"}, …]  (means per client),
     "total": {"predicted", "actual", "error": predicted/actual − 1, "mae": holdout_error},
     "by_status": [{"status", "clients", "bought_again": share with ≥ 1 holdout purchase,
                    "actual": mean purchases, "predicted": mean predicted}, …]  (only with status)}"""
    x_cal = np.asarray(x_cal, dtype=float)
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    w = np.ones(len(x_cal)) if weights is None else np.asarray(weights, dtype=float)
    bucket = repeat_bucket(x_cal)
    by_repeat = []
    for k, (ws, ps, acts) in enumerate(_groups(bucket, len(REPEAT_BUCKETS), w, predicted, actual)):
        by_repeat.append({"repeat": REPEAT_BUCKETS[k], "clients": round(float(ws.sum())),
                          "predicted": _mean(ps, ws), "actual": _mean(acts, ws)})
    total_predicted, total_actual = float((w * predicted).sum()), float((w * actual).sum())
    error = holdout_error(x_cal, predicted, actual, w)
    out: dict = {
        "clients": round(float(w.sum())),
        "by_repeat": by_repeat,
        "total": {"predicted": total_predicted, "actual": total_actual,
                  "error": total_predicted / total_actual - 1 if total_actual > 0 else None,
                  "mae": error if np.isfinite(error) else None},
    }
    if status is not None:
        words, code = pgcopy.factorize(np.asarray(status, dtype=object))
        groups = dict(zip(words, _groups(code, len(words), w, actual, predicted), strict=True))
        ordered = [s for s in STATUS_ORDER if s in groups] + sorted(set(groups) - set(STATUS_ORDER))
        rows = []
        for s in ordered:
            ws, acts, ps = groups[s]
            rows.append({"status": s, "clients": round(float(ws.sum())),
                         "bought_again": _mean((acts > 0).astype(float), ws),
                         "actual": _mean(acts, ws), "predicted": _mean(ps, ws)})
        out["by_status"] = rows
    return out


def _groups(code: Array, count: int, *columns: Array) -> list[list[Array]]:
    """Per code 0..count-1, each column's values of the rows with that code, in the rows' order:
    what `column[code == k]` gives (so every sum adds the same numbers in the same order), from
    one stable sort instead of a pass over all rows per code."""
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(count + 1))
    sorted_columns = [c[order] for c in columns]
    return [[c[bounds[k]:bounds[k + 1]] for c in sorted_columns] for k in range(count)]
