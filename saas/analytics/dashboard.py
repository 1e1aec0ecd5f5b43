"""The dashboard's figures (growth per year and month, year to date, cohorts), computed at refresh
time and stored in one settings row, so the page reads one row instead of scanning operations.

The refresh reads operations once (statistics.py) and gets, per client, bit sets of the months and
years it bought in; `figures_from_stats` counts the series from them with numpy (no second scan).
The SQL below reads operations itself, for a company whose history is older than those bit sets
hold (and as the reference the tests compare with): it reduces them to the distinct (client,
month) pairs of purchases (`cm`, with the first purchase day of that month, for the year-to-date
cut), makes one window pass over them per client (the month before, the first month ever), and
derives every series from that: years and quarters from a client's first month in each.

Purchases are sales and services with a positive amount; returns are never activity. See
growth.py for the definitions.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import growth
from saas.analytics.models import Setting
from saas.analytics.statistics import HISTORY_YEARS, OLDER, Stats, history_limit

Row = tuple[int, int, int, int, int]
Rows = dict[str, list[Row]]  # per series: (key, a, b, c, e) as the SQL returns them

SERIES = text("""
    WITH cm AS (
        SELECT client_id, (extract(year FROM occurred_on) * 12 + extract(month FROM occurred_on) - 1)::int AS k,
               min(extract(day FROM occurred_on))::int AS d
        FROM operations
        WHERE kind <> 'return' AND amount > 0 AND occurred_on <= :today
        GROUP BY 1, 2
    ), m AS MATERIALIZED (  -- one window pass over the whole history: "new" means the first purchase ever
        SELECT k, d, lag(k) OVER w AS prev, first_value(k) OVER w AS k0
        FROM cm WINDOW w AS (PARTITION BY client_id ORDER BY k)
    ), y AS (  -- a client's first month in each year: its year and the year it bought before
        SELECT k / 12 AS y, k, d, prev / 12 AS prev FROM m WHERE prev IS NULL OR prev / 12 <> k / 12
    ), q AS (  -- a client's first month in each quarter, with its first quarter
        SELECT k / 3 AS q, k0 / 3 AS q0 FROM m WHERE prev IS NULL OR prev / 3 <> k / 3
    )
    SELECT 'year' AS series, y AS key, count(*) AS a, count(*) FILTER (WHERE prev IS NULL) AS b,
           count(*) FILTER (WHERE prev = y - 1) AS c, count(*) FILTER (WHERE prev < y - 1) AS e
    FROM y GROUP BY y
    UNION ALL
    SELECT 'month', k, count(*), count(*) FILTER (WHERE prev IS NULL), count(*) FILTER (WHERE prev = k - 1),
           count(*) FILTER (WHERE prev < k - 1)
    FROM m WHERE k >= :from_month GROUP BY k
    UNION ALL
    SELECT 'cohort', q0, q - q0, count(*), 0, 0
    FROM q WHERE q0 >= (SELECT max(k0) / 3 FROM m WHERE prev IS NULL) - 11
    GROUP BY q0, q
    UNION ALL  -- year to date: a client's first month of the year is its earliest, so one row per client
    SELECT 'ytd', 0, count(*) FILTER (WHERE y = :year_start / 12),
           count(*) FILTER (WHERE y = :year_start / 12 - 1 AND (k < :ly_month OR (k = :ly_month AND d <= :ly_day))),
           0, 0
    FROM y WHERE y >= :year_start / 12 - 1
    UNION ALL
    (SELECT 'start', k, d, 0, 0, 0 FROM m WHERE prev IS NULL ORDER BY k, d LIMIT 1)
""")


async def growth_figures(db: AsyncSession, today: date) -> dict | None:
    """The growth part of the dashboard cache from its own scan of operations; None when nobody
    has bought anything."""
    last_year = growth.same_day_last_year(today)
    rows = (await db.execute(SERIES, {
        "today": today, "from_month": growth.months_window(today), "year_start": today.year * 12,
        "ly_month": growth.month_key(last_year), "ly_day": last_year.day,
    })).all()
    by_series: Rows = {}
    for series, a, b, c, d, e in rows:  # the SQL returns five numbers per row of a series
        by_series.setdefault(series, []).append((int(a), int(b), int(c), int(d), int(e)))
    return _figures(by_series, today)


def _figures(by_series: Rows, today: date) -> dict | None:
    if "start" not in by_series:
        return None
    start_k, start_d = by_series["start"][0][:2]
    history_start = date(start_k // 12, start_k % 12 + 1, start_d)
    years = growth.yearly(sorted(by_series.get("year", [])), history_start, today)
    months = growth.monthly(sorted(by_series.get("month", [])), history_start, today)
    ytd_now, ytd_before = by_series["ytd"][0][1:3]
    return {
        "history_start": history_start.isoformat(),
        "first_complete_year": growth.first_complete_year(history_start),
        "years": growth.as_dicts(years), "months": growth.as_dicts(months),
        "ytd": growth.year_to_date(ytd_now, ytd_before, history_start, today),
        "summary": asdict(growth.summary(years)),
        "cohorts": growth.cohort_matrix(sorted((r[0], r[1], r[2]) for r in by_series.get("cohort", []))),
    }


# ---- the same figures from the statistics pass's bit sets ---------------------------------------

_CHUNK = 65536  # clients per unpacking step (64 bytes each)


def _bit_counts(masks: np.ndarray) -> np.ndarray:
    """How many of the masks have each bit 0..63 set."""
    counts = np.zeros(64, dtype=np.int64)
    for lo in range(0, len(masks), _CHUNK):
        chunk = np.ascontiguousarray(masks[lo:lo + _CHUNK]).astype("<u8").view(np.uint8).reshape(-1, 8)
        counts += np.unpackbits(chunk, axis=1, bitorder="little").sum(axis=0, dtype=np.int64)
    return counts


def _series(masks: np.ndarray, firsts_ago: np.ndarray, keys: range,
            key_of_bit: Callable[[int], int]) -> list[Row]:
    """(key, active, new, retained, reactivated) for each bit (periods ago) with anyone active;
    bit j + 1 is the period before bit j's."""
    bits = masks.astype(np.uint64)
    active, retained = _bit_counts(bits), _bit_counts(bits & (bits >> np.uint64(1)))
    new = np.bincount(firsts_ago[firsts_ago < 64], minlength=64)
    return [(key_of_bit(j), int(active[j]), int(new[j]), int(retained[j]), int(active[j] - new[j] - retained[j]))
            for j in keys if active[j]]


def covers(stats: Stats) -> bool:
    """Whether the bit sets hold every figure: the history is within HISTORY_YEARS, and the oldest
    cohort shown (12 quarters before the newest) is fewer than OLDER quarters old."""
    if stats.months is None:
        return False
    bought = stats.n > 0
    if not bought.any():
        return True
    first = stats.today - timedelta(days=int(stats.first_age[bought].max()))
    newest = stats.today - timedelta(days=int(stats.first_age[bought].min()))
    quarters = growth.month_key(stats.today) // 3 - (growth.month_key(newest) // 3 - 11)
    return first >= history_limit(stats.today) and quarters < OLDER


def figures_from_stats(stats: Stats) -> dict | None:
    """growth_figures' result, from the statistics pass (see `covers` for when it applies)."""
    today, bought = stats.today, stats.n > 0
    if not bought.any() or stats.months is None or stats.years is None or stats.quarters is None \
            or stats.ytd_last is None:
        return None
    first_day = np.datetime64(today, "D") - stats.first_age[bought].astype("timedelta64[D]")
    first_month = first_day.astype("datetime64[M]").astype(np.int64) + 1970 * 12  # growth.month_key
    now_month = growth.month_key(today)
    months, years = stats.months[bought], stats.years[bought]
    history_start = today - timedelta(days=int(stats.first_age[bought].max()))
    by_series: Rows = {
        "year": _series(years, today.year - first_month // 12, range(HISTORY_YEARS + 1), lambda j: today.year - j),
        "month": _series(months, now_month - first_month, range(now_month - growth.months_window(today) + 1),
                         lambda j: now_month - j),
        "ytd": [(0, int((years & 1).astype(bool).sum()), int(stats.ytd_last[bought].sum()), 0, 0)],
        "start": [(growth.month_key(history_start), history_start.day, 0, 0, 0)],
        "cohort": _cohorts(stats.quarters[bought], first_month // 3),
    }
    return _figures(by_series, today)


def _cohorts(quarters: np.ndarray, first_quarter: np.ndarray) -> list[Row]:
    """(first quarter, quarters since, clients who bought then) for the last 12 first quarters, as
    the SQL's 'cohort' rows; bit i of `quarters` is a purchase i quarters after the first."""
    recent = first_quarter >= first_quarter.max() - 11
    cohorts, cohort = np.unique(first_quarter[recent], return_inverse=True)
    masks = quarters[recent].astype(np.uint64)
    out: list[Row] = []
    for i in range(OLDER):
        counts = np.bincount(cohort[((masks >> np.uint64(i)) & np.uint64(1)) > 0], minlength=len(cohorts))
        out += [(int(c), i, int(k), 0, 0) for c, k in zip(cohorts, counts, strict=True) if k]
    return out


async def store_dashboard(db: AsyncSession, today: date, method: str, repeat_buyers: int, buyers: int,
                          stats: Stats | None = None) -> None:
    """Store the dashboard's figures: from the refresh's statistics when they cover them, else by SQL."""
    figures = figures_from_stats(stats) if stats is not None and covers(stats) else await growth_figures(db, today)
    figures = figures or {
        "years": [], "months": [], "ytd": None, "summary": asdict(growth.GrowthSummary(None, None, None, None)),
        "cohorts": [], "history_start": None, "first_complete_year": None}
    value = {"computed_for": today.isoformat(), "method": method, "repeat_buyers": repeat_buyers, "buyers": buyers,
             **figures}
    row = await db.get(Setting, "dashboard")
    if row is None:
        db.add(Setting(key="dashboard", value=value))
    else:
        row.value = value
