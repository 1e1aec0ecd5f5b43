"""Per-client payment statistics for the reliability score, as arrays from one SQL pass."""
from __future__ import annotations

from datetime import date

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PAYMENTS = text("""
    WITH due AS (
        SELECT client_id, amount, paid_on,
               coalesce(paid_on, :today) - due_on AS days_late,
               (paid_on > due_on OR (paid_on IS NULL AND due_on < :today)) AS late,
               row_number() OVER (PARTITION BY client_id ORDER BY due_on DESC) AS recent
        FROM operations
        WHERE kind <> 'return' AND due_on IS NOT NULL AND (paid_on IS NOT NULL OR due_on < :today)
    ), pay AS (
        SELECT client_id, count(*) AS payments, count(*) FILTER (WHERE late) AS late,
               coalesce(avg(greatest(days_late, 0)) FILTER (WHERE late), 0) AS avg_days_late,
               coalesce(stddev_pop(greatest(days_late, 0)), 0) AS days_late_std,
               coalesce(sum(amount) FILTER (WHERE paid_on IS NULL), 0) AS overdue,
               coalesce(max(days_late) FILTER (WHERE paid_on IS NULL), 0) AS overdue_age,
               count(*) FILTER (WHERE recent <= 5) AS last_n,
               count(*) FILTER (WHERE recent <= 5 AND days_late > 30) AS late30_last
        FROM due GROUP BY client_id
    ), ret AS (
        SELECT client_id, count(*) FILTER (WHERE kind = 'return') AS returns,
               count(*) FILTER (WHERE kind <> 'return') AS deals,
               coalesce(sum(amount) FILTER (WHERE kind <> 'return'), 0) AS gross
        FROM operations GROUP BY client_id
    ), s AS (
        SELECT ret.client_id AS id, coalesce(pay.payments, 0) AS payments, coalesce(pay.late, 0) AS late,
               coalesce(pay.avg_days_late, 0)::float8 AS avg_days_late,
               coalesce(pay.days_late_std, 0)::float8 AS days_late_std,
               coalesce(pay.overdue, 0)::float8 AS overdue, coalesce(pay.overdue_age, 0) AS overdue_age,
               coalesce(pay.last_n, 0) AS last_n, coalesce(pay.late30_last, 0) AS late30_last,
               ret.returns, ret.deals, ret.gross::float8 AS gross
        FROM ret LEFT JOIN pay USING (client_id)
    )
    SELECT array_agg(id ORDER BY id), array_agg(payments ORDER BY id), array_agg(late ORDER BY id),
           array_agg(avg_days_late ORDER BY id), array_agg(days_late_std ORDER BY id),
           array_agg(overdue ORDER BY id), array_agg(overdue_age ORDER BY id), array_agg(last_n ORDER BY id),
           array_agg(late30_last ORDER BY id), array_agg(returns ORDER BY id), array_agg(deals ORDER BY id),
           array_agg(gross ORDER BY id)
    FROM s
""")
PAYMENT_FIELDS = ("payments", "late", "avg_days_late", "days_late_std", "overdue", "overdue_age", "last_n",
                  "late30_last", "returns", "deals", "gross")


async def payment_factors(db: AsyncSession, ids: np.ndarray, today: date) -> dict[str, np.ndarray]:
    """The PAYMENT_FIELDS of each client in `ids` (sorted), zero where a client has no operations."""
    pay_row = (await db.execute(PAYMENTS, {"today": today})).one()
    pay_ids = np.asarray(pay_row[0] or [], dtype=np.int64)
    factors = {name: np.zeros(len(ids)) for name in PAYMENT_FIELDS}
    if len(pay_ids):
        pos = np.searchsorted(ids, pay_ids)
        ok = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == pay_ids)
        for name, col in zip(PAYMENT_FIELDS, pay_row[1:], strict=True):
            factors[name][pos[ok]] = np.asarray(col, dtype=float)[ok]
    return factors
