"""Per-client payment sums for the reliability score (reliability.FIELDS), as arrays from one SQL pass.

One scan of operations, grouped by client: each due payment's amount a, days beyond terms d and
recency weight w = 0.5 ^ (days since due / half-life) are computed per row and summed, so Python
only divides (see reliability.py for the formula).
"""
from __future__ import annotations

from datetime import date

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics.reliability import FIELDS, HALF_LIFE_DAYS, TERMS_FULL_DAYS

PAYMENTS_SQL = """
    WITH o AS (
        SELECT client_id, kind, amount,
               greatest(amount, 0)::float8 AS a,
               (kind <> 'return' AND due_on IS NOT NULL AND (paid_on IS NOT NULL OR due_on < :today)) AS due,
               paid_on IS NULL AS unpaid,
               greatest(least(coalesce(paid_on, :today), :today) - due_on, 0)::float8 AS d,
               greatest(:today - due_on, 0)::float8 AS age
        FROM operations WHERE occurred_on <= :today {only}
    ), r AS (
        SELECT *, power(0.5, age / :half_life) AS w FROM o
    ), s AS (
        SELECT client_id AS id,
               count(*) FILTER (WHERE due) AS payments,
               count(*) FILTER (WHERE due AND d > 0) AS late,
               coalesce(sum(w * a) FILTER (WHERE due), 0) AS wa,
               coalesce(sum(w * a * least(d, :cap)) FILTER (WHERE due), 0) AS wa_terms,
               coalesce(sum(w * a * d) FILTER (WHERE due), 0) AS wa_days,
               coalesce(sum(w) FILTER (WHERE due), 0) AS w,
               coalesce(sum(w * least(d, :cap)) FILTER (WHERE due), 0) AS w_terms,
               coalesce(sum(w * d) FILTER (WHERE due), 0) AS w_days,
               coalesce(sum(a) FILTER (WHERE due), 0) AS due_amount,
               coalesce(sum(a) FILTER (WHERE due AND unpaid), 0) AS overdue,
               coalesce(sum(a * age) FILTER (WHERE due AND unpaid), 0) AS overdue_days,
               count(*) FILTER (WHERE due AND unpaid) AS overdue_items,
               count(*) FILTER (WHERE kind = 'return') AS returns,
               count(*) FILTER (WHERE kind <> 'return' AND amount > 0) AS deals
        FROM r GROUP BY client_id
    )
    SELECT array_agg(id ORDER BY id), array_agg(payments ORDER BY id), array_agg(late ORDER BY id),
           array_agg(wa ORDER BY id), array_agg(wa_terms ORDER BY id), array_agg(wa_days ORDER BY id),
           array_agg(w ORDER BY id), array_agg(w_terms ORDER BY id), array_agg(w_days ORDER BY id),
           array_agg(due_amount ORDER BY id), array_agg(overdue ORDER BY id), array_agg(overdue_days ORDER BY id),
           array_agg(overdue_items ORDER BY id), array_agg(returns ORDER BY id), array_agg(deals ORDER BY id)
    FROM s
"""
PAYMENTS = text(PAYMENTS_SQL.format(only=""))
# The same for a few clients (live scoring after a write): the index on client_id, not a scan.
PAYMENTS_SOME = text(PAYMENTS_SQL.format(only="AND client_id = ANY(CAST(:only AS bigint[]))"))


async def payment_factors(db: AsyncSession, ids: np.ndarray, today: date,
                          only: list[int] | None = None) -> dict[str, np.ndarray]:
    """reliability.FIELDS of each client in `ids` (sorted), zero where a client has no operations."""
    query, only_param = (PAYMENTS, {}) if only is None else (PAYMENTS_SOME, {"only": list(only)})
    pay_row = (await db.execute(query, {**only_param, "today": today, "half_life": HALF_LIFE_DAYS,
                                           "cap": TERMS_FULL_DAYS})).one()
    pay_ids = np.asarray(pay_row[0] or [], dtype=np.int64)
    factors = {name: np.zeros(len(ids)) for name in FIELDS}
    if len(pay_ids) and len(ids):
        pos = np.searchsorted(ids, pay_ids)
        ok = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == pay_ids)
        for name, col in zip(FIELDS, pay_row[1:], strict=True):
            factors[name][pos[ok]] = np.asarray(col, dtype=float)[ok]
    return factors
