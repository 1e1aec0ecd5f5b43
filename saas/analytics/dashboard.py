"""The dashboard's figures (growth per year and month, cohorts), computed at refresh time and
stored in one settings row, so the page reads one row instead of scanning operations."""
from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import growth
from saas.analytics.models import Setting

YEARLY = text("""
    WITH cy AS (SELECT DISTINCT client_id, extract(year FROM occurred_on)::int AS k
                FROM operations WHERE kind <> 'return' AND occurred_on <= :today),
    l AS (SELECT k, lag(k) OVER (PARTITION BY client_id ORDER BY k) AS prev FROM cy)
    SELECT k, count(*), count(*) FILTER (WHERE prev IS NULL), count(*) FILTER (WHERE prev = k - 1),
           count(*) FILTER (WHERE prev < k - 1)
    FROM l GROUP BY k ORDER BY k
""")
MONTHLY = text("""
    WITH cm AS (SELECT DISTINCT client_id,
                       (extract(year FROM occurred_on) * 12 + extract(month FROM occurred_on) - 1)::int AS k
                FROM operations WHERE kind <> 'return' AND occurred_on <= :today
                  AND occurred_on > :today - interval '3 years'),
    l AS (SELECT k, lag(k) OVER (PARTITION BY client_id ORDER BY k) AS prev FROM cm)
    SELECT k, count(*), count(*) FILTER (WHERE prev IS NULL), count(*) FILTER (WHERE prev = k - 1),
           count(*) FILTER (WHERE prev < k - 1)
    FROM l GROUP BY k ORDER BY k
""")
COHORTS = text("""
    WITH cq AS (SELECT DISTINCT client_id,
                       (extract(year FROM occurred_on) * 4 + extract(quarter FROM occurred_on) - 1)::int AS q
                FROM operations WHERE kind <> 'return' AND occurred_on <= :today),
    f AS (SELECT client_id, min(q) AS q0 FROM cq GROUP BY client_id)
    SELECT f.q0, cq.q - f.q0, count(*) FROM cq JOIN f USING (client_id)
    WHERE f.q0 >= (SELECT max(q0) FROM f) - 11
    GROUP BY 1, 2 ORDER BY 1, 2
""")


async def store_dashboard(db: AsyncSession, today: date, method: str, repeat_buyers: int, buyers: int) -> None:
    yearly = [tuple(r) for r in (await db.execute(YEARLY, {"today": today})).all()]
    monthly = [tuple(r) for r in (await db.execute(MONTHLY, {"today": today})).all()]
    cohorts = [tuple(r) for r in (await db.execute(COHORTS, {"today": today})).all()]
    years = growth.periods(yearly)
    summary = growth.summary(years, today.year)
    value = {
        "computed_for": today.isoformat(), "method": method, "repeat_buyers": repeat_buyers, "buyers": buyers,
        "years": [p.__dict__ for p in years], "months": [p.__dict__ for p in growth.periods(monthly)],
        "summary": summary.__dict__, "cohorts": growth.cohort_matrix(cohorts),
    }
    row = await db.get(Setting, "dashboard")
    if row is None:
        db.add(Setting(key="dashboard", value=value))
    else:
        row.value = value
