"""Per-client statistics, today and at the backtest's cut-off, from one pass over operations.

One statement reads a company's operations once and reduces them to a few dozen numbers per
client; every figure of the refresh comes from them: the backtest's calibration data and holdout
counts, the models' inputs, CLV's spend, RFM's inputs, the reliability score's payment sums
(payments.py) and the dashboard's growth series (dashboard.py, from the month, year and quarter
bit sets).
The statement serves a few clients (live scoring after a write: their rows through the index),
leaving the growth bit sets out. The refresh reads every client with scan.py instead (the raw rows
by a sequential scan, reduced with numpy, measured at less than half this statement's time at
100,000 clients); the all-clients form (read_sql) stays as the definition scan.py is tested against.

Purchases are sales and services with a positive amount, grouped per day (several on one day are
one purchase). Returns never make a purchase day: they only reduce net revenue. A client whose only
operations are returns has no purchase (n = 0).

The operations stream in index order (client_id, occurred_on), so neither the window nor the
grouping sorts. The window gives each row the latest and the first purchase day before it, which
makes "a new purchase day" and "the first purchase day" plain filters (count(DISTINCT) and a
second grouping level were measured slower).

The rows come back as binary COPY and are read with numpy in one call (fixed-width columns, no
NULLs), so no Python object is made per client. A write's few clients (FETCH_UP_TO) are fetched
as records instead (`from_records`: the same values), which live scoring reads in one statement
with its settings (scoring._LIVE_READ_FEW).
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import growth, payments
from saas.core.db import same_snapshot_readers

WEEK = 7.0
# The growth bit sets: bit j of `months` is a purchase j months ago (bit 63: 63 or more), bit j of
# `years` a purchase in the year today.year − j, bit j of `quarters` a purchase j quarters after the
# client's first (bit 63: 63 or more). They hold HISTORY_YEARS years; a company with older
# purchases gets its growth from the SQL in dashboard.py instead.
HISTORY_YEARS = 62
OLDER = 63

# Per client: (name, expression over its rows, SQL type). Days are counted back from `today`
# (ages); -1 where a client has no such purchase.
_NEW_DAY = "bought AND (prev_day IS NULL OR prev_day < day)"
_STATS = (
    ("n", f"count(*) FILTER (WHERE {_NEW_DAY})", "int4"),
    ("first_age", "$1::date - min(day) FILTER (WHERE bought)", "int4"),
    ("last_age", "$1::date - max(day) FILTER (WHERE bought)", "int4"),
    ("n_cal", f"count(*) FILTER (WHERE {_NEW_DAY} AND day <= $2::date)", "int4"),
    ("last_cal_age", "$2::date - max(day) FILTER (WHERE bought AND day <= $2::date)", "int4"),
    ("gross", "sum(amount) FILTER (WHERE bought)", "float8"),
    # the rows of the first purchase day: no purchase day before them, or the same day
    ("first_amount", "sum(amount) FILTER (WHERE bought AND (prev_first IS NULL OR prev_first = day))", "float8"),
    ("returned", "sum(amount) FILTER (WHERE returned)", "float8"),
)
_MISSING = {"first_age": -1, "last_age": -1, "last_cal_age": -1}
# $3, $4, $8: months, years and quarters ago of each day from $5 (int2[], see growth_lookup); $6,
# $7: last year's 1 January and the same day as today, for the year to date. A purchase's first
# purchase day is coalesce(prev_first, day).
_AGO = "(${lut}::int2[])[{day} - $5::date + 1]"
_GROWTH = (
    ("months", f"bit_or(1::int8 << {_AGO.format(lut=3, day='day')}) FILTER (WHERE bought)", "int8"),
    ("years", f"bit_or(1::int8 << {_AGO.format(lut=4, day='day')}) FILTER (WHERE bought)", "int8"),
    ("quarters", (f"bit_or(1::int8 << least({_AGO.format(lut=8, day='coalesce(prev_first, day)')}"
                  f" - {_AGO.format(lut=8, day='day')}, {OLDER})) FILTER (WHERE bought)"), "int8"),
    ("ytd_last", "(count(*) FILTER (WHERE bought AND day BETWEEN $6::date AND $7::date) > 0)::int4", "int4"),
)
_ORDER = ("int4", "float8", "int8")  # output columns grouped by type (fixed offsets for numpy)
_COLUMNS = sorted((*_STATS, *payments.AGGREGATES, *_GROWTH), key=lambda c: _ORDER.index(c[2]))
_GROWTH_NAMES = {name for name, _e, _t in _GROWTH}

_SQL = """
    WITH o AS (
        SELECT client_id, day, amount, bought, returned, due, unpaid, a, d, age, {weight},
               max(CASE WHEN bought THEN day END) OVER w AS prev_day,   -- the latest purchase day before
               min(CASE WHEN bought THEN day END) OVER w AS prev_first  -- the first purchase day before
        FROM (SELECT client_id, occurred_on AS day, amount, kind <> 'return' AND amount > 0 AS bought,
                     kind = 'return' AS returned, {payment_columns}
              FROM operations WHERE occurred_on <= $1::date {ops_filter}) x
        WINDOW w AS (PARTITION BY client_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ), p AS (
        SELECT client_id, {aggregates} FROM o GROUP BY client_id
    )
    SELECT c.id::int8, {outputs}
    FROM clients c LEFT JOIN p ON p.client_id = c.id
    WHERE c.erased_at IS NULL {clients_filter}
    ORDER BY c.id
"""


def _sql(*, some: bool) -> str:
    """All clients (with the growth bit sets), or those in $3 (the bit sets left at 0)."""
    aggregates = ", ".join(f"{e} AS {n}" for n, e, _t in _COLUMNS if not (some and n in _GROWTH_NAMES))
    outputs = ", ".join(f"0::{t}" if some and n in _GROWTH_NAMES else f"coalesce(p.{n}, {_MISSING.get(n, 0)})::{t}"
                        for n, _e, t in _COLUMNS)
    # a few clients: those in $3; all: those in the id range ($9, $10] (read splits a big company)
    only = "= ANY($3::bigint[])" if some else None
    return _SQL.format(weight=payments.WEIGHT, payment_columns=payments.ROW_COLUMNS, aggregates=aggregates,
                       outputs=outputs,
                       ops_filter=f"AND client_id {only}" if only else "AND client_id > $9 AND client_id <= $10",
                       clients_filter=f"AND c.id {only}" if only else "AND c.id > $9 AND c.id <= $10")


ALL_CLIENTS = _sql(some=False)
SOME_CLIENTS = _sql(some=True)
NAMES = tuple(n for n, _e, _t in _COLUMNS)
_TYPES = {n: t for n, _e, t in _COLUMNS}
_NUMPY = {"int4": ">i4", "float8": ">f8", "int8": ">i8"}
# Binary COPY: per row an int16 field count, then per field an int32 length and the value.
ROW = np.dtype([("fields", ">i2"), ("l_id", ">i4"), ("id", ">i8")]
               + [item for name in NAMES for item in ((f"l_{name}", ">i4"), (name, _NUMPY[_TYPES[name]]))])
HEADER = 19  # signature (11) + flags (4) + header extension length (4, zero)


@dataclass
class ClientTotals:
    """What the dashboard's counts read from the clients' own rows (dashboard.mix_counts), per
    client as in Stats.ids: archived or not, and revenue_total and unpaid_total in whole cents, as
    clients.operations keeps them (scan.py sums them from the same operation rows)."""

    archived: np.ndarray
    revenue_cents: np.ndarray
    unpaid_cents: np.ndarray


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
    gross: np.ndarray         # total of the purchases up to today
    first_amount: np.ndarray  # the first purchase day's total
    returned: np.ndarray      # returns' total up to today
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # payment sums (reliability.FIELDS)
    months: np.ndarray | None = None   # growth bit sets (see HISTORY_YEARS); None for a few clients
    years: np.ndarray | None = None
    quarters: np.ndarray | None = None
    ytd_last: np.ndarray | None = None  # bought between last year's 1 January and the same day as today
    totals: ClientTotals | None = None  # read with every client (scan.read_all); None for a few

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def deals(self) -> np.ndarray:
        """Sales and services (positive) up to today."""
        return self.factors["deals"]

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


def history_limit(today: date) -> date:
    """The first day the growth bit sets cover."""
    return date(today.year - HISTORY_YEARS, 1, 1)


def growth_lookup(today: date) -> tuple[date, list[int], list[int], list[int]]:
    """Per day from history_limit(today) to today: months ago (at most OLDER), years ago and
    quarters ago."""
    start = history_limit(today)
    days = np.arange(np.datetime64(start, "D"), np.datetime64(today + timedelta(days=1), "D"))
    month = days.astype("datetime64[M]").astype(np.int64)
    years_ago = today.year - 1970 - days.astype("datetime64[Y]").astype(np.int64)
    quarters_ago = month[-1] // 3 - month // 3
    return start, np.minimum(month[-1] - month, OLDER).tolist(), years_ago.tolist(), quarters_ago.tolist()


def parse(buffers: list[bytearray], today: date, cutoff: date, *, growth: bool = True) -> Stats:
    """Binary COPY outputs (one per range of ids, in id order) as one Stats."""
    rows = np.concatenate([np.frombuffer(memoryview(b)[HEADER:len(b) - 2], dtype=ROW)  # trailer: int16 −1
                           for b in buffers])
    if len(rows) and (rows["fields"] != len(NAMES) + 1).any():
        raise ValueError("unexpected statistics row layout")
    column = {name: rows[name].astype(float if _TYPES[name] == "float8" else np.int64) for name in NAMES}
    return _stats(rows["id"].astype(np.int64), column, today, cutoff, growth=growth)


def from_records(records: list[Any], today: date, cutoff: date) -> Stats:
    """The rows of SOME_CLIENTS fetched as records (id, then NAMES), as the Stats `parse` makes of
    the same rows by COPY: the same values (int4/int8 as int64, float8 as float), no growth."""
    columns = list(zip(*records, strict=True)) if records else [()] * (len(NAMES) + 1)
    column = {name: np.array(columns[i + 1], dtype=float if _TYPES[name] == "float8" else np.int64)
              for i, name in enumerate(NAMES)}
    return _stats(np.array(columns[0], dtype=np.int64), column, today, cutoff, growth=False)


def _stats(ids: np.ndarray, column: dict[str, np.ndarray], today: date, cutoff: date, *, growth: bool) -> Stats:
    stats = Stats(today, cutoff, ids, n=column["n"], first_age=column["first_age"],
                  last_age=column["last_age"], n_cal=column["n_cal"], last_cal_age=column["last_cal_age"],
                  gross=column["gross"], first_amount=column["first_amount"], returned=column["returned"],
                  factors={name: column[name].astype(float) for name, _e, _t in payments.AGGREGATES})
    if growth:
        stats.months, stats.years, stats.quarters = column["months"], column["years"], column["quarters"]
        stats.ytd_last = column["ytd_last"] > 0
    return stats


async def read(db: AsyncSession, today: date, cutoff: date, ids: list[int] | None = None) -> Stats:
    """The statistics of every client (ids None: from the raw rows with numpy, scan.py) or of the
    given ones (by SQL: a few clients' rows through the index), in the session's transaction."""
    if ids is None:
        from saas.analytics import scan  # scan builds on this module

        return await scan.read_all(db, today, cutoff)
    raw: Any = (await (await db.connection()).get_raw_connection()).driver_connection  # asyncpg's
    return parse([await _copy(raw, SOME_CLIENTS, today, cutoff, sorted(set(ids)))], today, cutoff, growth=False)


async def read_sql(db: AsyncSession, today: date, cutoff: date) -> Stats:
    """Every client's statistics by the SQL reduction: the reference scan.read_all is checked
    against (tests), and what the refresh read before it."""
    raw: Any = (await (await db.connection()).get_raw_connection()).driver_connection  # asyncpg's
    start, months_ago, years_ago, quarters_ago = growth_lookup(today)
    args = (today, cutoff, months_ago, years_ago, start, date(today.year - 1, 1, 1), growth.same_day_last_year(today),
            quarters_ago)
    low, high, estimate = await raw.fetchrow(_SIZE)
    low, high = (low or 1), (high or 0)
    # A big company's ids in ranges, each read by its own server process at once, all in this
    # transaction's snapshot (the pass is the server's CPU); one range where that cannot hold.
    split = same_snapshot_readers(db, PARTS - 1) if estimate >= SPLIT_FROM else contextlib.nullcontext(None)
    async with split as readers:
        connections = [raw, *(readers or [])]
        n = len(connections)
        cuts = [low - 1, *(low + (high - low) * i // n for i in range(1, n)), high]
        parts = await asyncio.gather(*(_copy(conn, ALL_CLIENTS, *args, cuts[i], cuts[i + 1])
                                       for i, conn in enumerate(connections)))
    return parse(list(parts), today, cutoff)


async def _copy(conn: Any, sql: str, *params: Any) -> bytearray:
    """One statement's rows as binary COPY output."""
    out = bytearray()

    async def collect(chunk: bytes) -> None:
        out.extend(chunk)

    await conn.copy_from_query(sql, *params, output=collect, format="binary")
    return out


# Up to this many clients live scoring (after a write) fetches SOME_CLIENTS' rows as records, with its
# other reads (scoring._LIVE_READ_FEW), instead of `read`: a COPY with parameters costs asyncpg a
# second round trip (it quotes them with the server first), and for a few rows building the arrays
# from records is cheaper than the COPY's set-up.
FETCH_UP_TO = 16
# Above this many clients (the planner's figure) the pass is split (read): below it, a second
# connection costs more than it saves.
SPLIT_FROM, PARTS = 50_000, 2
_SIZE = ("SELECT min(id), max(id), (SELECT reltuples FROM pg_class WHERE oid = 'clients'::regclass)::int8 "
         "FROM clients")

