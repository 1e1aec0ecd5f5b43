"""Per-client purchase statistics, today and at the backtest's cut-off, from one pass over operations.

One statement reduces a company's operations to a dozen numbers per client; every figure of the
refresh (the backtest's calibration data and holdout counts, the models' inputs, CLV's spend, RFM's
inputs) comes from them. The same statement serves a few clients (live scoring after a write) or
all of them (the refresh): only the `client_id = ANY(...)` filter differs.

Purchases are sales and services with a positive amount, grouped per day (several on one day are
one purchase). Returns never make a purchase day: they only reduce net revenue. A client whose only
operations are returns has no purchase (n = 0).

The rows come back as binary COPY and are read with numpy in one call (fixed-width columns, no
NULLs), so no Python object is made per client.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

WEEK = 7.0

# Days are counted back from `today` (ages); -1 where a client has no such purchase.
_SQL = """
    WITH o AS (  -- in index order (client_id, occurred_on): the window and the grouping stream, no sort
        SELECT client_id, occurred_on AS day, amount, kind = 'return' AS returned,
               kind <> 'return' AND amount > 0 AS bought,
               min(occurred_on) FILTER (WHERE kind <> 'return' AND amount > 0)
                   OVER (PARTITION BY client_id) AS first_day
        FROM operations
        WHERE occurred_on <= $1::date {ops_filter}
    ), p AS (
        SELECT client_id,
               count(DISTINCT day) FILTER (WHERE bought) AS n,
               $1::date - min(first_day) AS first_age,
               $1::date - max(day) FILTER (WHERE bought) AS last_age,
               count(DISTINCT day) FILTER (WHERE bought AND day <= $2::date) AS n_cal,
               $2::date - max(day) FILTER (WHERE bought AND day <= $2::date) AS last_cal_age,
               count(*) FILTER (WHERE bought) AS deals,
               sum(amount) FILTER (WHERE bought) AS gross,
               sum(amount) FILTER (WHERE bought AND day = first_day) AS first_amount,
               sum(amount) FILTER (WHERE returned) AS returned
        FROM o GROUP BY client_id
    )
    SELECT c.id::int8, coalesce(p.n, 0)::int4, coalesce(p.first_age, -1)::int4, coalesce(p.last_age, -1)::int4,
           coalesce(p.n_cal, 0)::int4, coalesce(p.last_cal_age, -1)::int4, coalesce(p.deals, 0)::int4,
           coalesce(p.gross, 0)::float8, coalesce(p.first_amount, 0)::float8, coalesce(p.returned, 0)::float8
    FROM clients c LEFT JOIN p ON p.client_id = c.id
    WHERE c.erased_at IS NULL {clients_filter}
    ORDER BY c.id
"""
ALL_CLIENTS = _SQL.format(ops_filter="", clients_filter="")
SOME_CLIENTS = _SQL.format(ops_filter="AND client_id = ANY($3::bigint[])", clients_filter="AND c.id = ANY($3::bigint[])")

_INT4 = ("n", "first_age", "last_age", "n_cal", "last_cal_age", "deals")
_FLOAT8 = ("gross", "first_amount", "returned")
# Binary COPY: per row an int16 field count, then per field an int32 length and the value.
ROW = np.dtype([("fields", ">i2"), ("l_id", ">i4"), ("id", ">i8")]
               + [item for name in _INT4 for item in ((f"l_{name}", ">i4"), (name, ">i4"))]
               + [item for name in _FLOAT8 for item in ((f"l_{name}", ">i4"), (name, ">f8"))])
HEADER = 19  # signature (11) + flags (4) + header extension length (4, zero)


@dataclass
class Stats:
    """Arrays, one entry per client, sorted by id. Days are whole days; see `derived` for weeks."""

    today: date
    cutoff: date
    ids: np.ndarray
    n: np.ndarray             # purchase days up to today
    first_age: np.ndarray     # today − first purchase day (−1: none)
    last_age: np.ndarray      # today − last purchase day (−1: none)
    n_cal: np.ndarray         # purchase days up to the cut-off
    last_cal_age: np.ndarray  # cut-off − last purchase day up to it (−1: none)
    deals: np.ndarray         # sales and services (positive) up to today
    gross: np.ndarray         # their total
    first_amount: np.ndarray  # the first purchase day's total
    returned: np.ndarray      # returns' total up to today

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def holdout_days(self) -> int:
        return (self.today - self.cutoff).days

    # ---- today (the models' inputs: x, t_x, T in weeks) ----
    @property
    def bought(self) -> np.ndarray:
        return self.n > 0

    @property
    def x(self) -> np.ndarray:
        """Repeat purchases (−1 for a client with none)."""
        return self.n.astype(float) - 1

    @property
    def T(self) -> np.ndarray:
        return np.maximum(self.first_age, 0) / WEEK

    @property
    def t_x(self) -> np.ndarray:
        return np.maximum(self.first_age - self.last_age, 0) / WEEK

    @property
    def revenue(self) -> np.ndarray:
        """Net revenue: purchases less returns."""
        return self.gross - self.returned

    @property
    def repeat_mean(self) -> np.ndarray:
        """Mean value of the repeat purchase days (Gamma-Gamma's m_x; 0 without repeats)."""
        x = self.x
        return np.where(x > 0, (self.gross - self.first_amount) / np.maximum(x, 1), 0.0)

    # ---- the cut-off (the backtest's calibration data and what happened after) ----
    @property
    def calibrated(self) -> np.ndarray:
        """Clients who had bought by the cut-off: the backtest's population."""
        return self.n_cal > 0

    @property
    def x_cal(self) -> np.ndarray:
        return self.n_cal.astype(float) - 1

    @property
    def T_cal(self) -> np.ndarray:
        return np.maximum(self.first_age - self.holdout_days, 0) / WEEK

    @property
    def t_x_cal(self) -> np.ndarray:
        first_cal_age = self.first_age - self.holdout_days
        return np.maximum(first_cal_age - self.last_cal_age, 0) / WEEK

    @property
    def holdout(self) -> np.ndarray:
        """Purchase days in (cut-off, today]."""
        return (self.n - self.n_cal).astype(float)


def parse(buffer: bytes | bytearray | memoryview, today: date, cutoff: date) -> Stats:
    body = memoryview(buffer)[HEADER:len(buffer) - 2]  # the trailer is an int16 −1
    rows = np.frombuffer(body, dtype=ROW)
    if len(rows) and (rows["fields"] != 10).any():
        raise ValueError("unexpected statistics row layout")
    columns = {name: rows[name].astype(np.int64 if name in _INT4 else float) for name in (*_INT4, *_FLOAT8)}
    return Stats(today, cutoff, rows["id"].astype(np.int64), **columns)


async def read(db: AsyncSession, today: date, cutoff: date, ids: list[int] | None = None) -> Stats:
    """The statistics of every client (ids None) or of the given ones, in the session's transaction."""
    raw = (await (await db.connection()).get_raw_connection()).driver_connection
    chunks = bytearray()

    async def collect(chunk: bytes) -> None:
        chunks.extend(chunk)

    if ids is None:
        await raw.copy_from_query(ALL_CLIENTS, today, cutoff, output=collect, format="binary")
    else:
        await raw.copy_from_query(SOME_CLIENTS, today, cutoff, sorted(set(ids)), output=collect, format="binary")
    return parse(chunks, today, cutoff)
