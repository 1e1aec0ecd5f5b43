"""RFM scores (1–5 quintiles per company) and named segments.

Scores are quintiles of each client's rank within the company: recency (more recent is higher),
frequency (deals) and monetary value (revenue). Ties share a score (percent rank), so a thousand
one-time buyers are not split across scores at random as ntile() would do.

Segments are defined by explicit, mutually exclusive predicates over the (R, F, M) cell — not a
first-match list — and a test checks that each of the 125 cells satisfies exactly one of them.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

Array = np.ndarray

# name -> predicate over (r, f, m); each reads like the definition shown to users.
SEGMENTS: dict[str, Callable[[Array, Array, Array], Array]] = {
    "champions": lambda r, f, m: (r >= 4) & (f >= 4) & (m >= 4),
    "loyal": lambda r, f, m: (r >= 4) & (f >= 4) & (m <= 3),
    "potential_loyalists": lambda r, f, m: (r >= 4) & (f == 3),
    "new": lambda r, f, m: (r == 5) & (f <= 2),
    "promising": lambda r, f, m: (r == 4) & (f <= 2),
    "need_attention": lambda r, f, m: (r == 3) & (f >= 4),
    "about_to_sleep": lambda r, f, m: (r == 3) & (f <= 3),
    "cant_lose": lambda r, f, m: (r <= 2) & (f >= 4) & (m == 5),
    "at_risk": lambda r, f, m: (r <= 2) & (f >= 3) & ~((f >= 4) & (m == 5)),
    "hibernating": lambda r, f, m: (r == 2) & (f <= 2),
    "lost": lambda r, f, m: (r == 1) & (f <= 2),
}


def quintile(values: Array, *, higher_is_better: bool = True) -> Array:
    """1..5 by percent rank; equal values get equal scores."""
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    v = values if higher_is_better else -values
    ranks = rankdata(v, method="min") - 1
    pct = ranks / max(len(v) - 1, 1)
    return np.minimum(5, 1 + np.floor(pct * 5)).astype(int)


def rfm_scores(recency_days: Array, frequency: Array, monetary: Array) -> tuple[Array, Array, Array]:
    return (quintile(recency_days, higher_is_better=False), quintile(frequency), quintile(monetary))


def segment_of(r: Array, f: Array, m: Array) -> Array:
    out = np.full(len(r), "", dtype=object)
    for name, rule in SEGMENTS.items():
        out[rule(r, f, m)] = name
    return out
