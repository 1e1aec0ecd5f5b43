"""Reliability from payment discipline: a PAYDEX-like 0–100 score, with its reason in words.

A *due payment* is a sale or service with a due date that is either paid or past its due date
(returns never count: they are shown beside the score as a separate signal). For each one:
    a = its amount (negative amounts count as 0),
    d = days beyond terms = max(0, paid_on (or today while unpaid) − due_on),
    w = 2 ^ (−(today − due_on) / 180): the recency weight, a half-life of HALF_LIFE_DAYS = 180 days
        (a payment due a year ago counts a quarter of one due today).

Points lost (the company's weights; they must sum to 100):
- beyond_terms (60):  Σ w·a·min(d, 90) / (90 · Σ w·a) — money-days of credit taken beyond terms,
                      as a share of the worst case (everything 90+ days late). Linear in days, so
                      one day late costs 1/90 of the weight: twenty payments one day late cost
                      0.67 points, the same as one payment one day late.
                      (If every amount is 0, the same ratio with w alone.)
- overdue_share (25): the unpaid amount past its due date ÷ the amount of all due payments.
- overdue_age (15):   the amount-weighted age of that unpaid debt, full cost at 180 days.
score = round(100 − points lost), 0–100.

Bands (the company's): reliable ≥ 80, watch ≥ 50, risk group below. A client with fewer than
MIN_PAYMENTS = 3 due payments is `unknown` ("not enough history"): no evidence is not good
evidence. Bad evidence is enough, though: with little history, a score below the watch band
(e.g. one payment 90 days late) is still the risk group.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from saas.clients.models import RISK_GROUPS

Array = np.ndarray
HALF_LIFE_DAYS = 180.0
TERMS_FULL_DAYS = 90.0  # days beyond terms at which a payment costs its full weight
AGE_FULL_DAYS = 180.0   # age of an unpaid debt at which it costs its full weight
MIN_PAYMENTS = 3
DEFAULT_WEIGHTS = {"beyond_terms": 60.0, "overdue_share": 25.0, "overdue_age": 15.0}
DEFAULT_BANDS = {"reliable": 80.0, "watch": 50.0}
GROUPS = RISK_GROUPS

# Per-client sums from the payment SQL (payments.py), one array each.
FIELDS = (
    "payments",        # due payments
    "late",            # of them paid late or unpaid past due
    "wa",              # Σ w·a
    "wa_terms",        # Σ w·a·min(d, 90)
    "wa_days",         # Σ w·a·d (for the average days beyond terms shown to people)
    "w",               # Σ w
    "w_terms",         # Σ w·min(d, 90)
    "w_days",          # Σ w·d
    "due_amount",      # Σ a
    "overdue",         # Σ a unpaid past due
    "overdue_days",    # Σ a·(today − due_on) unpaid past due
    "overdue_items",   # count unpaid past due
    "returns",         # returns (separate signal)
    "deals",           # sales and services
)


def _ratio(num: Array, den: Array) -> Array:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def measures(f: dict[str, Array]) -> dict[str, Array]:
    """Shares in 0–1 per factor, plus the days figures people read."""
    by_amount = f["wa"] > 0
    terms = np.where(by_amount, _ratio(f["wa_terms"], f["wa"]), _ratio(f["w_terms"], f["w"])) / TERMS_FULL_DAYS
    days = np.where(by_amount, _ratio(f["wa_days"], f["wa"]), _ratio(f["w_days"], f["w"]))
    age = _ratio(f["overdue_days"], f["overdue"])
    return {
        "beyond_terms": np.clip(terms, 0.0, 1.0),
        "overdue_share": np.clip(_ratio(f["overdue"], f["due_amount"]), 0.0, 1.0),
        "overdue_age": np.clip(age / AGE_FULL_DAYS, 0.0, 1.0),
        "days_beyond_terms": days, "overdue_age_days": age,
    }


def penalties(f: dict[str, Array], weights: dict[str, float]) -> dict[str, Array]:
    """Points lost per factor (each at most its weight)."""
    m = measures(f)
    return {key: weights[key] * m[key] for key in DEFAULT_WEIGHTS}


def score(f: dict[str, Array], weights: dict[str, float] | None = None,
          bands: dict[str, float] | None = None) -> tuple[Array, Array, dict[str, Array]]:
    """(points 0–100, group, points lost per factor) for every client in `f`."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    bands = {**DEFAULT_BANDS, **(bands or {})}
    lost = penalties(f, weights)
    points = np.clip(np.rint(100.0 - sum(lost.values())), 0, 100).astype(int)
    group = np.where(points >= bands["reliable"], "reliable", np.where(points >= bands["watch"], "watch", "risk"))
    group = np.where((f["payments"] < MIN_PAYMENTS) & (points >= bands["watch"]), "unknown", group)
    return points, group.astype(object), lost


def stored_factors(f: dict[str, Array], lost: dict[str, Array]) -> dict[str, Array]:
    """The per-client figures kept in client_scores.risk_factors (what the reason needs)."""
    m = measures(f)
    return {
        "payments": f["payments"], "late": f["late"], "overdue": f["overdue"], "overdue_items": f["overdue_items"],
        "days_beyond_terms": np.round(m["days_beyond_terms"], 1), "overdue_age": np.round(m["overdue_age_days"]),
        "returns": f["returns"], "deals": f["deals"],
        "p_terms": np.round(lost["beyond_terms"], 2), "p_overdue": np.round(lost["overdue_share"], 2),
        "p_age": np.round(lost["overdue_age"], 2),
    }


Translate = Callable[..., str]


def reason(factors: dict[str, Any], group: str, *, money: Callable[[float], str], number: Callable[[float], str],
           translate: Translate, plural: Callable[..., str]) -> str:
    """Words for the score, biggest loss first. `translate(msgid, **params)` and
    `plural(singular, plural, n, **params)` are gettext (the reader's language; `%(num)s` is n);
    `money` and `number` format in the reader's locale."""
    n = int(factors.get("payments") or 0)
    parts: list[tuple[float, str]] = []
    late = int(factors.get("late") or 0)  # paid late, or unpaid past due
    overdue = float(factors.get("overdue") or 0)
    if late > int(factors.get("overdue_items") or 0) or (late and overdue <= 0):  # else the debt says it all
        days = max(1, round(float(factors.get("days_beyond_terms") or 0)))
        parts.append((float(factors.get("p_terms") or 0), translate(
            "late: %(late)s of %(n)s", late=number(late), n=number(n)) + ", " + plural(
            "%(num)s day beyond terms on average", "%(num)s days beyond terms on average", days, num=number(days))))
    if overdue > 0:
        age = round(float(factors.get("overdue_age") or 0))
        items = int(factors.get("overdue_items") or 1)
        if items > 1:
            text = plural("%(amount)s overdue in %(num)s payment", "%(amount)s overdue in %(num)s payments", items,
                          amount=money(overdue), num=number(items)) + ", " + plural(
                "%(num)s day on average", "%(num)s days on average", age, num=number(age))
        else:
            text = plural("%(amount)s overdue for %(num)s day", "%(amount)s overdue for %(num)s days", age,
                          amount=money(overdue), num=number(age))
        parts.append((float(factors.get("p_overdue") or 0) + float(factors.get("p_age") or 0), text))
    parts.sort(key=lambda p: -p[0])
    words = [text for _w, text in parts]
    if group == "unknown":
        head = (plural("only %(num)s deferred payment: not enough history to judge",
                       "only %(num)s deferred payments: not enough history to judge", n, num=number(n))
                if n else translate("no deferred payments yet: not enough history to judge"))
        words.insert(0, head)
    elif not words:
        words.append(plural("%(num)s payment, all on time", "%(num)s payments, all on time", n, num=number(n)))
    text = "; ".join(words)
    return text[:1].upper() + text[1:]


def returns_note(factors: dict[str, Any], *, number: Callable[[float], str], translate: Translate) -> str:
    """Returns, shown beside the score (not part of it); empty without returns."""
    returns = int(factors.get("returns") or 0)
    if not returns:
        return ""
    return translate("Returns: %(returns)s; purchases: %(deals)s", returns=number(returns),
                     deals=number(int(factors.get("deals") or 0)))
