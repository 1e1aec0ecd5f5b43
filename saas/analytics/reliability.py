"""Reliability from payment discipline: a PAYDEX-like 0–100 score, with its reason in words.

Each factor costs at most its weight in points (weights sum to 100 by default and are the
company's to change):
- late:       the share of due payments paid late or still unpaid after the due date;
- days_late:  the average days late of those payments, full cost at 60 days;
- overdue:    the overdue amount as a share of the client's gross purchases;
- age:        the age of the oldest overdue payment, full cost at 90 days;
- returns:    returns as a share of deals;
- irregular:  the spread (standard deviation) of days late, full cost at 30 days.
Clients without deferred payments only pay for returns. 80+ is reliable, 50–79 watch, below risk.
"""
from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray
DEFAULT_WEIGHTS = {"late": 35.0, "days_late": 20.0, "overdue": 20.0, "age": 10.0, "returns": 10.0, "irregular": 5.0}
DEFAULT_BANDS = {"reliable": 80.0, "watch": 50.0}
SATURATION = {"days_late": 60.0, "age": 90.0, "irregular": 30.0}


def penalties(f: dict[str, Array], weights: dict[str, float]) -> dict[str, Array]:
    """Points lost per factor. `f` holds arrays: payments, late, avg_days_late, days_late_std,
    overdue, overdue_age, gross, returns, deals."""
    with np.errstate(divide="ignore", invalid="ignore"):
        late_share = np.where(f["payments"] > 0, f["late"] / np.maximum(f["payments"], 1), 0.0)
        overdue_share = np.where(f["gross"] > 0, f["overdue"] / np.maximum(f["gross"], 1e-9), 0.0)
        return_share = np.where(f["deals"] > 0, f["returns"] / np.maximum(f["deals"], 1), 0.0)
    clip = lambda v: np.clip(np.nan_to_num(v), 0.0, 1.0)  # noqa: E731
    return {
        "late": weights["late"] * clip(late_share),
        "days_late": weights["days_late"] * clip(f["avg_days_late"] / SATURATION["days_late"]),
        "overdue": weights["overdue"] * clip(overdue_share),
        "age": weights["age"] * clip(f["overdue_age"] / SATURATION["age"]),
        "returns": weights["returns"] * clip(return_share),
        "irregular": weights["irregular"] * clip(f["days_late_std"] / SATURATION["irregular"]),
    }


def score(f: dict[str, Array], weights: dict[str, float] | None = None,
          bands: dict[str, float] | None = None) -> tuple[Array, Array, dict[str, Array]]:
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    bands = {**DEFAULT_BANDS, **(bands or {})}
    lost = penalties(f, weights)
    total = sum(lost.values())
    points = np.clip(np.rint(100.0 - total), 0, 100).astype(int)
    group = np.where(points >= bands["reliable"], "reliable", np.where(points >= bands["watch"], "watch", "risk"))
    return points, group, lost


def reason(factors: dict[str, Any], money, translate) -> str:  # noqa: ANN001
    """Words for the factors that moved the score, biggest first. `money` formats an amount;
    `translate(msgid, **params)` is gettext (so the reason follows the reader's language)."""
    parts: list[tuple[float, str]] = []
    if factors.get("late30_last"):
        parts.append((factors.get("p_late", 0), translate(
            "%(late)s of the last %(n)s payments were more than 30 days late",
            late=factors["late30_last"], n=factors["last_n"])))
    elif factors.get("late"):
        parts.append((factors.get("p_late", 0), translate(
            "%(late)s of %(n)s payments were late", late=factors["late"], n=factors["payments"])))
    if factors.get("overdue"):
        parts.append((factors.get("p_overdue", 0) + factors.get("p_age", 0), translate(
            "%(amount)s overdue for %(days)s days", amount=money(factors["overdue"]), days=factors["overdue_age"])))
    if factors.get("returns"):
        parts.append((factors.get("p_returns", 0), translate(
            "%(n)s returns out of %(deals)s deals", n=factors["returns"], deals=factors["deals"])))
    if not parts:
        if factors.get("payments"):
            return translate("All %(n)s payments on time", n=factors["payments"])
        return translate("No deferred payments recorded")
    parts.sort(key=lambda p: -p[0])
    return "; ".join(text for _w, text in parts)
