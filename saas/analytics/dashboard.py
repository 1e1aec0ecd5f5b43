"""The dashboard's figures (growth per year and month, year to date, cohorts), computed at refresh
time and stored in one settings row, so the page reads one row instead of scanning operations.

One statement reads operations once: it reduces them to the distinct (client, month) pairs of
purchases (`cm`, with the first purchase day of that month, for the year-to-date cut), makes one
window pass over them per client (the month before, the first month ever), and derives every
series from that: years and quarters from a client's first month in each. Purchases are sales and services with a positive amount; returns are
never activity. See growth.py for the definitions.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import growth
from saas.analytics.models import Setting

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
    """The growth part of the dashboard cache; None when nobody has bought anything."""
    last_year = growth.same_day_last_year(today)
    rows = (await db.execute(SERIES, {
        "today": today, "from_month": growth.months_window(today), "year_start": today.year * 12,
        "ly_month": growth.month_key(last_year), "ly_day": last_year.day,
    })).all()
    by_series: dict[str, list[tuple[int, ...]]] = {}
    for series, *values in rows:
        by_series.setdefault(series, []).append(tuple(int(v) for v in values))
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
        "cohorts": growth.cohort_matrix(sorted(r[:3] for r in by_series.get("cohort", []))),
    }


async def store_dashboard(db: AsyncSession, today: date, method: str, repeat_buyers: int, buyers: int) -> None:
    figures = await growth_figures(db, today) or {
        "years": [], "months": [], "ytd": None, "summary": asdict(growth.GrowthSummary(None, None, None, None)),
        "cohorts": [], "history_start": None, "first_complete_year": None}
    value = {"computed_for": today.isoformat(), "method": method, "repeat_buyers": repeat_buyers, "buyers": buyers,
             **figures}
    row = await db.get(Setting, "dashboard")
    if row is None:
        db.add(Setting(key="dashboard", value=value))
    else:
        row.value = value
