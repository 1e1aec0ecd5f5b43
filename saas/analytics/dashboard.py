"""The dashboard's snapshot: every figure the page shows (growth per year and month, year to date,
cohorts; status, segment and reliability counts, revenue per segment, CLV, the top of the risk
group), computed by the refresh and stored in one settings row, so the page reads one row instead
of scanning operations and scores (see "the snapshot" below for how live writes keep it honest).

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

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import growth, pgcopy
from saas.analytics.models import Setting
from saas.analytics.statistics import HISTORY_YEARS, OLDER, ClientTotals, Stats, history_limit
from saas.core import clock

if TYPE_CHECKING:
    from saas.core.db import Database

log = logging.getLogger("saas.analytics.dashboard")

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


def growth_from_stats(stats: Stats) -> dict[str, Any] | None:
    """store_dashboard's `growth` when the statistics cover the figures (`covers`), else None (the
    SQL then counts them): computed ahead, off the refresh's event loop."""
    return {"figures": figures_from_stats(stats)} if covers(stats) else None


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
                          stats: Stats | None = None, *, scoring: dict[str, Any] | None = None,
                          backtest: dict[str, Any] | None = None, mix: dict[str, Any] | None = None,
                          counted: dict[str, Any] | None = None) -> None:
    """Store the dashboard's snapshot, in the refresh's transaction: the growth figures (`counted`:
    the refresh's, from `growth_from_stats`; else from the statistics when they cover them, else
    by SQL), the counts (`mix`: the refresh's own, see mix_counts; else `score_figures` from the
    scores just written), and the parts of the stored fit and backtest the page words."""
    if counted is not None:
        figures = counted.get("figures")
    elif stats is not None and covers(stats):
        figures = figures_from_stats(stats)
    else:
        figures = await growth_figures(db, today)
    figures = figures or {
        "years": [], "months": [], "ytd": None, "summary": asdict(growth.GrowthSummary(None, None, None, None)),
        "cohorts": [], "history_start": None, "first_complete_year": None}
    value = {"computed_for": today.isoformat(), "method": method, "repeat_buyers": repeat_buyers, "buyers": buyers,
             **figures, "refreshed_at": clock.now().isoformat(), "mix": mix or await score_figures(db),
             "scoring": {k: (scoring or {}).get(k) for k in _SCORING_PARTS},
             "backtest": {k: (backtest or {}).get(k) for k in _BACKTEST_PARTS}}
    row = await db.get(Setting, SNAPSHOT_KEY)
    if row is None:
        db.add(Setting(key=SNAPSHOT_KEY, value=value))
    else:
        row.value, row.updated_at = value, clock.now()
    await db.execute(delete(Setting).where(Setting.key == STALE_KEY))


# ---- the snapshot: what the page reads ----------------------------------------------------------
#
# Everything the dashboard shows is in one settings row, "dashboard" (the growth figures above,
# plus "mix": the status, segment and reliability counts, revenue per segment, the CLV total, the
# clients and the top of the risk group), written by the refresh. The page reads it with one
# statement (`read_snapshot`), which also picks up the stale mark and the names of the top-risk
# clients (live, so an erased or archived client drops out at once).
#
# Live scoring keeps each client's scores current after a write; it marks the snapshot stale
# (`mark_stale`: a "dashboard_stale" row, written once per stale period, so writes never contend on
# the snapshot row) and queues `resnapshot` RESNAPSHOT_DELAY later, which recounts "mix" from the
# scores (no refit, no scan of operations). Writes during that delay only find the mark already
# set: one recount per burst of writes. Growth figures and the fit stay as of the last refresh.

SNAPSHOT_KEY, STALE_KEY = "dashboard", "dashboard_stale"
RESNAPSHOT_DELAY = timedelta(seconds=30)
TOP_RISK = 10
_SCORING_PARTS = ("method", "reason", "repeat_buyers", "clv")  # what method_sentence and the CLV card use
_BACKTEST_PARTS = ("status", "cutoff", "holdout_weeks", "choice")  # status_lines and method_sentence
_TOP_RISK_SQL = text("""
    SELECT s.client_id, s.risk_score, s.risk_group, s.risk_factors
    FROM client_scores s JOIN clients c ON c.id = s.client_id
    WHERE s.risk_group = 'risk' AND c.erased_at IS NULL AND c.archived_at IS NULL
    ORDER BY s.risk_score, c.unpaid_total DESC LIMIT :limit""")
_CLIENTS_SQL = text("SELECT count(*) FROM clients WHERE erased_at IS NULL AND archived_at IS NULL")
_READ = text("""
    SELECT d.value, stale.updated_at AS stale_since,
           (SELECT coalesce(jsonb_object_agg(c.id, jsonb_build_array(c.last_name, c.first_name)), '{}')
            FROM clients c
            WHERE c.id IN (SELECT (e->>'id')::bigint FROM jsonb_array_elements(d.value->'mix'->'top_risk') AS e)
              AND c.erased_at IS NULL AND c.archived_at IS NULL) AS names
    FROM settings d LEFT JOIN settings stale ON stale.key = 'dashboard_stale'
    WHERE d.key = 'dashboard'""")
_MARK = text("""
    INSERT INTO settings (key, value, updated_at) SELECT 'dashboard_stale', '{}', :now
    WHERE EXISTS (SELECT 1 FROM settings WHERE key = 'dashboard')
    ON CONFLICT (key) DO NOTHING RETURNING 1""")


async def score_figures(db: AsyncSession) -> dict[str, Any]:
    """The counts the dashboard shows, from the scores as they are now (the same statements the
    page ran on every view before the snapshot: queries.MIX and the top of the risk group)."""
    from saas.analytics.queries import MIX

    rows = (await db.execute(MIX)).all()
    top = (await db.execute(_TOP_RISK_SQL, {"limit": TOP_RISK})).all()
    return {
        "as_of": clock.now().isoformat(),
        "status": {r[0]: int(r[3]) for r in rows if r[0] is not None},
        "segments": {r[1]: [int(r[3]), float(r[4])] for r in rows if r[1] is not None},
        "risk": {r[2]: int(r[3]) for r in rows if r[2] is not None},
        "clv_total": sum(float(r[5]) for r in rows if r[0] is not None),
        "clients": int((await db.execute(_CLIENTS_SQL)).scalar_one()),
        "top_risk": [{"id": int(t[0]), "risk_score": int(t[1]), "risk_group": t[2], "risk_factors": t[3] or {}}
                     for t in top],
    }


def mix_counts(stats: Stats, segment: np.ndarray, risk_group: np.ndarray,
               risk_score: np.ndarray) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """score_figures' counts that do not depend on the purchase model, from the refresh's own
    arrays (the scores it is writing, one per client of `stats`, and the clients' rows as the
    statistics pass read them, `stats.totals`), without reading the scores back: (the segment and
    reliability counts, revenue per segment and the clients; the top of the risk group's (client
    id, risk score)). See status_counts for the rest. Sums are exact (whole cents); the top of the
    risk group is ordered as the SQL orders it (risk score, then the largest unpaid total), ties
    by id."""
    totals = _totals(stats)
    shown = ~totals.archived
    segments, segment_n, revenue = _tally(segment, shown, totals.revenue_cents)
    groups, group_n, _none = _tally(risk_group, shown)
    risky = np.flatnonzero(shown & (np.asarray(risk_group, dtype=object) == "risk"))
    order = np.lexsort((stats.ids[risky], -totals.unpaid_cents[risky], np.asarray(risk_score)[risky]))
    top = [(int(stats.ids[i]), int(risk_score[i])) for i in risky[order[:TOP_RISK]]]
    return {
        "segments": {w: [int(k), int(c) / 100] for w, k, c in zip(segments, segment_n, revenue, strict=True)},
        "risk": {w: int(k) for w, k in zip(groups, group_n, strict=True)},
        "clients": int(shown.sum()),
    }, top


def status_counts(stats: Stats, status: np.ndarray, clv_cents: np.ndarray) -> dict[str, Any]:
    """score_figures' status counts and CLV total from the refresh's arrays (see mix_counts);
    `clv_cents`: the CLV as written (numeric(14, 2)), in whole cents (0 for none)."""
    shown = ~_totals(stats).archived
    words, n, _none = _tally(status, shown)
    return {"status": {w: int(k) for w, k in zip(words, n, strict=True)},
            "clv_total": int(np.asarray(clv_cents, dtype=np.int64)[shown].sum()) / 100}


def _totals(stats: Stats) -> ClientTotals:
    if stats.totals is None:
        raise ValueError("the clients' totals are read with every client (scan.read_all)")
    return stats.totals


def _tally(labels: np.ndarray, shown: np.ndarray,
           cents: np.ndarray | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The labels present among the shown clients, how many have each, and the sum of `cents`
    per label (int64: exact up to 9·10^16 roubles)."""
    words, codes = pgcopy.factorize(np.asarray(labels, dtype=object)[shown])
    n = np.bincount(codes, minlength=len(words))
    sums = np.zeros(len(words), dtype=np.int64)
    if cents is not None:
        np.add.at(sums, codes, np.asarray(cents, dtype=np.int64)[shown])
    keep = n > 0
    return [w for w, k in zip(words, keep, strict=True) if k], n[keep], sums[keep]


_FACTORS_SQL = text("SELECT client_id, risk_factors FROM client_scores WHERE client_id = ANY(CAST(:ids AS bigint[]))")


async def top_risk_of(db: AsyncSession, top: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The snapshot's "top_risk" entries of these (client id, risk score), their factors as written."""
    rows = (await db.execute(_FACTORS_SQL, {"ids": [i for i, _s in top]})).all() if top else []
    factors: dict[int, Any] = {int(r[0]): r[1] for r in rows}
    return [{"id": i, "risk_score": score, "risk_group": "risk", "risk_factors": factors.get(i) or {}}
            for i, score in top]


async def read_snapshot(db: AsyncSession) -> dict[str, Any] | None:
    """The page's figures in one statement, shaped as queries.dashboard's plus `top_risk`,
    `as_of` and `stale_since`; None before a refresh stored a snapshot with the counts."""
    row = (await db.execute(_READ)).first()
    if row is None or not row.value.get("mix"):
        return None
    value, mix, names = row.value, row.value["mix"], row.names or {}
    top_risk = [(SimpleNamespace(id=t["id"], last_name=names[str(t["id"])][0], first_name=names[str(t["id"])][1]),
                 SimpleNamespace(risk_score=t["risk_score"], risk_group=t["risk_group"],
                                 risk_factors=t["risk_factors"]))
                for t in mix["top_risk"] if str(t["id"]) in names]
    return {"cache": value, "status": mix["status"], "segments": {k: tuple(v) for k, v in mix["segments"].items()},
            "risk": mix["risk"], "fits": {}, "clients": mix["clients"], "clv_total": mix["clv_total"],
            "computed_at": datetime.fromisoformat(value["refreshed_at"]) if value.get("refreshed_at") else None,
            "as_of": datetime.fromisoformat(mix["as_of"]), "stale_since": row.stale_since,
            "scoring": value.get("scoring") or None, "backtest": value.get("backtest") or None,
            "top_risk": top_risk}


async def mark_stale(db: AsyncSession) -> None:
    """After a live write changed scores: mark the snapshot stale (once per stale period) and queue
    its recount. A plain read first: once marked, writes neither lock nor write anything here."""
    if (await db.execute(select(Setting.key).where(Setting.key == STALE_KEY))).first() is not None:
        return
    if (await db.execute(_MARK, {"now": clock.now()})).first() is not None:
        schema = db.info.get("schema")
        if schema:
            await asyncio.to_thread(queue_resnapshot, schema)


def queue_resnapshot(schema: str) -> None:
    """Queue `resnapshot` for the company RESNAPSHOT_DELAY from now; one at a time (a fixed id, no
    result kept). Never fails the write: with the queue down the mark stays and the page says so
    until the next refresh."""
    from saas.core.config import get_settings
    from saas.core.jobs import get_queue

    settings = get_settings()
    try:
        get_queue(settings).enqueue_in(RESNAPSHOT_DELAY, "saas.analytics.jobs.resnapshot_dashboard", schema,
                                       job_id=f"{settings.redis_prefix}-{schema}-dashboard", unique=True,
                                       result_ttl=0, failure_ttl=3600, job_timeout=600)
    except Exception:  # DuplicateJobError (one is queued) or Redis down
        log.debug("dashboard recount not queued", exc_info=True)


async def resnapshot(db: Database, schema: str) -> bool:
    """Recount the snapshot's "mix" from the scores as live scoring left them. The mark goes first,
    in its own transaction: a write committed after that marks again and queues another recount,
    so no write is left out of the figures without the page saying so."""
    async with db.session(schema) as s:
        await s.execute(delete(Setting).where(Setting.key == STALE_KEY))
    async with db.session(schema) as s:
        mix = await score_figures(s)
        row = await s.get(Setting, SNAPSHOT_KEY, with_for_update=True)
        if row is None or not row.value.get("mix"):
            return False
        row.value, row.updated_at = {**row.value, "mix": mix}, clock.now()
    return True
