"""RFM scores (1–5 quintiles per company, among buyers only) and named segments.

Only *buyers* are ranked: clients with at least one purchase (a sale or service with a positive
amount). Clients without one are their own segment, NO_PURCHASES ("no purchases yet"), with
scores 0 (not scored), so prospects never push buyers' scores around.

Scores are quintiles of each buyer's percent rank among the buyers: recency (more recent is
higher), frequency (purchase days) and monetary value (revenue). Ties share the lowest rank of
their block (percent rank, as PostgreSQL's percent_rank), so a thousand one-time buyers all get
F = 1 instead of being split across scores at random as ntile() would do.

Too little to rank: with fewer than MIN_BUYERS (5) buyers, or in a dimension where every buyer
has the same value, everyone gets the middle score 3 in that dimension (nothing tells them apart,
so nobody is "worst"): a lone buyer is 3-3-3, not 1-1-1 "lost".

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


MIN_BUYERS = 5
MIDDLE = 3
NO_PURCHASES = "prospects"


def quintile(values: Array, *, higher_is_better: bool = True) -> Array:
    """1..5 by percent rank; equal values get equal scores; all equal (or fewer than MIN_BUYERS)
    gives everyone the middle score."""
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    if len(values) < MIN_BUYERS or np.all(values == values[0]):
        return np.full(len(values), MIDDLE, dtype=int)
    v = values if higher_is_better else -values
    ranks = rankdata(v, method="min") - 1
    pct = ranks / (len(v) - 1)
    return np.minimum(5, 1 + np.floor(pct * 5)).astype(int)


def rfm_scores(recency_days: Array, frequency: Array, monetary: Array,
               bought: Array | None = None) -> tuple[Array, Array, Array]:
    """R, F, M per client; only clients with `bought` true are ranked (among themselves), the
    others score 0."""
    n = len(recency_days)
    bought = np.ones(n, dtype=bool) if bought is None else np.asarray(bought, dtype=bool)
    out = [np.zeros(n, dtype=int) for _ in range(3)]
    out[0][bought] = quintile(np.asarray(recency_days, dtype=float)[bought], higher_is_better=False)
    out[1][bought] = quintile(np.asarray(frequency, dtype=float)[bought])
    out[2][bought] = quintile(np.asarray(monetary, dtype=float)[bought])
    return out[0], out[1], out[2]


def segment_of(r: Array, f: Array, m: Array, bought: Array | None = None) -> Array:
    """The segment of each (R, F, M) cell; clients who never bought are NO_PURCHASES."""
    out = np.full(len(r), "", dtype=object)
    for name, rule in SEGMENTS.items():
        out[rule(r, f, m)] = name
    if bought is not None:
        out[~np.asarray(bought, dtype=bool)] = NO_PURCHASES
    return out
