"""The score refresh and live scoring: statistics → arrays → scores → one write.

Both paths run the same steps over numpy arrays (never a Python object per client):
1. statistics.read: one pass over operations (all clients: the raw rows reduced with numpy,
   scan.py; the few a write touched: SQL) gives every per-client figure: purchases, the payment
   sums, and (refresh) the growth bit sets;
2. the forecast (forecast.py): from a model fitted now (refresh) or the fit the last refresh
   stored (live); RFM from rfm.rfm_scores (refresh) or the stored quintile boundaries (live);
   reliability from the payment sums;
3. one write in the caller's transaction (the refresh: DELETE, then binary COPY built with numpy;
   live scoring: INSERT … ON CONFLICT from arrays), so a reader sees the old snapshot or the new
   one, never half of it.

The refresh also runs the backtest and chooses the model on it (evidence.py; each fit starts from
the last refresh's), counts the dashboard's figures from the same statistics and the scores'
arrays (dashboard.py: growth, and the status, segment and reliability counts without reading the
scores back), and stores what live scoring and the pages need: settings["scoring"] (the fit,
thresholds, RFM boundaries, CLV settings) and settings["backtest"] (the comparison tables, every
candidate, the choice and why). bench/analytics.py measures it against one bare SQL pass.

The refresh keeps both cores busy (the server and numpy run at once): after the statistics, the
server deletes the old scores while the models are fitted in threads (_compute: the candidates
two at a time, the spend model, RFM and reliability beside them); the COPY's chunks are encoded
while the server inserts the previous one.
"""
from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, func, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import btyd, dashboard, evidence, forecast, pgcopy, reliability, rfm, selection, statistics
from saas.analytics import settings as analytics_settings
from saas.analytics.dashboard import STALE_KEY, mark_stale, store_dashboard
from saas.analytics.models import ModelFit, Setting
from saas.clients import events
from saas.clients.models import ClientScore
from saas.core import clock

SCORING_KEY, BACKTEST_KEY = "scoring", "backtest"
Progress = Callable[[int, int], Awaitable[None]]
# client_scores columns written from arrays: (column, SQL array type, how the value is read)
_COLUMNS = (
    ("client_id", "bigint", "{v}"), ("status", "text", "{v}"), ("p_alive", "float8", "nullif({v}, 'NaN')"),
    ("expected_purchases", "float8", "nullif({v}, 'NaN')"),
    ("expected_spend", "float8", "round(nullif({v}, 'NaN')::numeric, 2)"),
    ("clv", "float8", "round(nullif({v}, 'NaN')::numeric, 2)"),
    ("r_score", "int", "{v}"), ("f_score", "int", "{v}"), ("m_score", "int", "{v}"), ("segment", "text", "{v}"),
    ("risk_score", "int", "{v}"), ("risk_group", "text", "{v}"),
)


@dataclass
class RefreshResult:
    clients: int
    method: str
    fits: list[btyd.Fit] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    backtest: dict[str, Any] = field(default_factory=dict)


# ---- writing ------------------------------------------------------------------------------------


def _upsert_sql(factor_keys: list[str]) -> str:
    """Live scoring's INSERT … ON CONFLICT of a few clients' rows, from arrays ($1…: the columns,
    then the factors, then the method)."""
    n = len(_COLUMNS)
    names = [c for c, _t, _e in _COLUMNS]
    arrays = [f"${i + 1}::{t}[]" for i, (_c, t, _e) in enumerate(_COLUMNS)]
    arrays += [f"${n + i + 1}::float8[]" for i in range(len(factor_keys))]
    aliases = [f"c{i}" for i in range(n)] + [f"f{i}" for i in range(len(factor_keys))]
    values = [e.format(v=f"u.c{i}") for i, (_c, _t, e) in enumerate(_COLUMNS)]
    # zeros left out but the last key's, as the refresh's COPY does (pgcopy.jsonb's omit_zeros)
    factors = ", ".join(f"'{key}', " + (f"nullif(u.f{i}, 0)" if i < len(factor_keys) - 1 else f"u.f{i}")
                        for i, key in enumerate(factor_keys))
    method = f"${n + len(factor_keys) + 1}"
    sql = (f"INSERT INTO client_scores ({', '.join(names)}, risk_factors, method, computed_at) "  # noqa: S608 - names are our column constants
           f"SELECT {', '.join(values)}, jsonb_strip_nulls(jsonb_build_object({factors})), {method}, now() "
           f"FROM unnest({', '.join(arrays)}) AS u({', '.join(aliases)})")
    return sql + (" ON CONFLICT (client_id) DO UPDATE SET "
                  + ", ".join(f"{c} = EXCLUDED.{c}" for c in [*names[1:], "risk_factors", "method", "computed_at"]))


_COPY = {"bigint": pgcopy.int8, "int": pgcopy.int4, "text": pgcopy.text}


def _factor_keys(factors: dict[str, Any]) -> list[str]:
    return sorted(factors, key=lambda k: (k == "payments", k))  # the last key is always kept


async def _write(db: AsyncSession, columns: dict[str, np.ndarray], factors: dict[str, np.ndarray],
                 method: str) -> None:
    """Insert one score row per client: a whole company (the refresh) by binary COPY built with
    numpy, streamed in chunks of clients in id order (the primary key's index then grows at nearby
    leaves); a few clients (live scoring) go by INSERT … ON CONFLICT instead (_live_write_sql).
    risk_factors keeps only its non-zero figures and "payments" (readers take a missing one as 0):
    parsing the jsonb text was the largest part of the server's work on the COPY."""
    raw: Any = (await (await db.connection()).get_raw_connection()).driver_connection  # asyncpg's
    keys = _factor_keys(factors)
    n = len(columns["client_id"])

    def fields_of(part: slice) -> list[list[pgcopy.Piece]]:
        fields = []
        for name, sql_type, expression in _COLUMNS:
            values = columns[name][part]
            if "numeric" in expression:
                fields.append(pgcopy.numeric2(values))
            elif sql_type == "float8":
                fields.append(pgcopy.float8(values))
            else:
                fields.append(_COPY[sql_type](values))
        fields.append(pgcopy.jsonb({k: np.asarray(factors[k], dtype=float)[part] for k in keys}, omit_zeros=True))
        fields.append(pgcopy.text(np.full(part.stop - part.start, method, dtype=object)))
        return fields

    async def stream() -> AsyncIterator[bytes]:
        """Each next chunk is encoded in a worker thread while the server inserts the one before
        (numpy releases the GIL), so encoding mostly overlaps the server's work."""
        parts = pgcopy.stream(fields_of, n)
        pending = asyncio.ensure_future(asyncio.to_thread(next, parts, None))
        while (part := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(next, parts, None))
            yield part

    await raw.copy_to_table("client_scores", source=stream(), format="binary",
                            columns=[c for c, _t, _e in _COLUMNS] + ["risk_factors", "method"])  # computed_at: now()


def _score_columns(stats: statistics.Stats, fc: forecast.Forecast, r: np.ndarray, f: np.ndarray, m: np.ndarray,
                   factors: dict[str, np.ndarray], cfg: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of one write: forecast, RFM and reliability, per client."""
    columns, stored = _model_free_columns(stats, r, f, m, factors, cfg)
    return {**columns, **_forecast_columns(fc)}, stored


def _model_free_columns(stats: statistics.Stats, r: np.ndarray, f: np.ndarray, m: np.ndarray,
                        factors: dict[str, np.ndarray], cfg: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    """The columns that do not depend on the purchase model (RFM, reliability), and risk_factors."""
    segment = rfm.segment_of(r, f, m, stats.bought)
    risk, risk_group, lost = reliability.score(factors, cfg["weights"], cfg["bands"])
    columns = {"client_id": stats.ids, "r_score": r, "f_score": f, "m_score": m, "segment": segment,
               "risk_score": risk, "risk_group": risk_group}
    return columns, reliability.stored_factors(factors, lost)


def _forecast_columns(fc: forecast.Forecast) -> dict[str, np.ndarray]:
    return {"status": fc.status, "p_alive": fc.p_alive, "expected_purchases": fc.expected, "expected_spend": fc.spend,
            "clv": fc.clv}


# ---- the refresh ----------------------------------------------------------------------------------


@dataclass
class _ModelFree:
    """What the refresh computes beside the backtest (it does not depend on the model chosen)."""
    rfm_bounds: dict[str, Any]
    columns: dict[str, np.ndarray]
    stored: dict[str, np.ndarray]
    mix: dict[str, Any] | None
    top_risk: list[tuple[int, int]]
    growth: dict[str, Any] | None


@dataclass
class _Computed:
    """Everything the refresh works out from the statistics before it writes (see _compute):
    the model-free part as computed beside the backtest, and what the chosen model adds."""
    found: evidence.Evidence
    spend_fit: btyd.Fit | None
    spend_note: str | None
    spend_corr: float
    fc: forecast.Forecast
    columns: dict[str, np.ndarray]  # every column written: the model-free ones and the forecast's
    mix: dict[str, Any] | None  # the model-free counts and the status counts
    free: _ModelFree


def _model_free(stats: statistics.Stats, cfg: dict[str, Any]) -> _ModelFree:
    recency, frequency, monetary = forecast.rfm_inputs(stats)
    r, f, m = rfm.rfm_scores(recency, frequency, monetary, stats.bought)
    columns, stored = _model_free_columns(stats, r, f, m, stats.factors, cfg)
    mix, top = (dashboard.mix_counts(stats, columns["segment"], columns["risk_group"], columns["risk_score"])
                if stats.totals is not None else (None, []))
    return _ModelFree(forecast.rfm_bounds(recency, frequency, monetary, r, f, m, stats.bought), columns,
                      stored, mix, top, dashboard.growth_from_stats(stats))


def _spend(stats: statistics.Stats) -> tuple[btyd.Fit | None, str | None, float]:
    repeat = stats.x > 0
    with btyd.single_threaded_blas():
        return selection.fit_spend(stats.x[repeat], stats.repeat_mean[repeat])


def _compute(stats: statistics.Stats, cfg: dict[str, Any], previous: evidence.Starts,
             marks: dict[str, float]) -> _Computed:
    """The backtest and the model choice, today's fit, the spend model, the scores, and the
    dashboard's counts from them: pure numpy, run in a thread while the server deletes the old
    scores. What does not depend on the model chosen (the spend model, RFM, reliability, the
    dashboard's growth and segment counts) is computed in a second thread beside the backtest:
    at once when the fits start from the last refresh's (they are short), else from the moment
    the backtest's candidates are fitted (two at a time from scratch, they keep both cores busy
    until then). The spend model is fitted whatever the choice (it is used only with a purchase
    model)."""
    with ThreadPoolExecutor(max_workers=1) as side:
        later: list[Future[Any]] = []

        def fitted() -> None:
            if not later:
                later.extend([side.submit(_spend, stats), side.submit(_model_free, stats, cfg)])

        if previous:
            fitted()
        found = evidence.assess(stats, cfg, previous, fitted)
        fitted()  # (assess calls it on every path; this keeps the contract explicit)
        spend, free_future = later
        spend_fit, spend_note, spend_corr = spend.result() if found.method != "rules" else (None, None, math.nan)
        marks["fit"] = time.perf_counter()
        free = free_future.result()

    spend_params = spend_fit.params if spend_fit is not None else None
    if found.method == "rules":
        fc = forecast.rules_forecast(stats, found.limits["typical_gap_days"], cfg)
    else:
        if found.fit is None:  # a model method always comes with its fit
            raise RuntimeError(f"no fit for {found.method}")
        fc = forecast.model_forecast(stats, found.method, found.fit.params, spend_params, found.limits, cfg)
    columns = {**free.columns, **_forecast_columns(fc)}
    mix = ({**free.mix, **dashboard.status_counts(stats, fc.status, pgcopy.cents(fc.clv))}
           if free.mix is not None else None)
    computed = _Computed(found, spend_fit, spend_note, spend_corr, fc, columns, mix, free)
    marks["score"] = time.perf_counter()
    return computed


async def refresh(db: AsyncSession, *, today: date | None = None, progress: Progress | None = None) -> RefreshResult:
    today = today or clock.today()
    cfg = await analytics_settings.load(db)
    cutoff = today - timedelta(weeks=int(cfg["holdout_weeks"]))
    marks = {"start": time.perf_counter()}

    async def step(name: str, done: int) -> None:
        marks[name] = time.perf_counter()
        if progress:
            await progress(done, 100)

    stats = await statistics.read(db, today, cutoff)
    await step("stats", 20)
    if not len(stats):
        await db.execute(text("DELETE FROM client_scores"))
        await db.execute(delete(Setting).where(Setting.key.in_(("dashboard", STALE_KEY, SCORING_KEY, BACKTEST_KEY))))
        return RefreshResult(0, "rules")

    previous = await _previous_fits(db)
    # The old scores go while the models are fitted: the server deletes them on its own process
    # while this one computes in a thread (nothing else uses the connection meanwhile). The commit
    # does not wait for the WAL to reach the disk: everything this transaction writes is derived
    # (a crash right after it loses at most this refresh, which the next one redoes).
    raw: Any = (await (await db.connection()).get_raw_connection()).driver_connection  # asyncpg's
    deleting = asyncio.ensure_future(raw.execute("SET LOCAL synchronous_commit TO off; DELETE FROM client_scores"))
    try:
        done = await asyncio.to_thread(_compute, stats, cfg, previous, marks)
    finally:
        await deleting  # (also when computing failed: the connection must be free again)
    found, spend_fit, fc, columns = done.found, done.spend_fit, done.fc, done.columns
    if progress:
        await progress(70, 100)

    await _write(db, columns, done.free.stored, found.method)
    await step("write", 85)

    spend_params = spend_fit.params if spend_fit is not None else None
    scoring = {
        "computed_for": today.isoformat(), "method": found.method, "reason": found.reason,
        "reason_detail": found.reason_detail, "limits": found.limits,
        "fit": {"model": found.fit.model, "params": found.fit.params} if found.fit is not None else None,
        "spend": spend_params, "spend_note": done.spend_note, "spend_correlation": done.spend_corr,
        "spend_fit": spend_fit.as_dict() if spend_fit is not None else None,
        "rfm_bounds": done.free.rfm_bounds,
        "clv": {"annual_rate": cfg["discount_rate"], "margin": cfg["margin"], "months": cfg["clv_months"]},
        "horizon_days": cfg["horizon_days"], "new_days": cfg["new_days"],
        "repeat_buyers": int((stats.x > 0).sum()), "buyers": int(stats.bought.sum()),
    }
    await put_setting(db, SCORING_KEY, scoring)
    await put_setting(db, BACKTEST_KEY, found.backtest)
    fits = [*found.candidates, *found.refits, *([spend_fit] if spend_fit is not None else [])]
    for fit in fits:
        stage = "calibration" if any(fit is c for c in found.candidates) else "whole history"
        db.add(ModelFit(model=fit.model, params=json_safe(fit.params), log_likelihood=_finite(fit.log_likelihood),
                        clients=fit.clients, seconds=fit.seconds, converged=fit.converged,
                        quality=json_safe({"unit": "week", "stage": stage, "usable": fit.usable, "reason": fit.reason,
                                           "detail": fit.detail, "facts": fit.facts, "bic": fit.bic, "se": fit.se,
                                           "chosen": fit is found.fit, **fit.extra})))
    bought = stats.bought
    mix = done.mix
    if mix is not None:  # the counts came from the arrays; the top of the risk group's factors as written
        mix = {"as_of": clock.now().isoformat(), **mix, "top_risk": await dashboard.top_risk_of(db, done.free.top_risk)}
    # the page's snapshot (without `mix`, counted from the scores written above, same transaction)
    await store_dashboard(db, today, found.method, int((stats.x > 0).sum()), int(bought.sum()), stats,
                          scoring=json_safe(scoring), backtest=json_safe(found.backtest), mix=mix,
                          counted=done.free.growth)
    await step("dashboard", 100)
    counts = {s: int((fc.status == s).sum()) for s in ("new", "active", "at_risk", "lost")}
    stamps = list(marks.items())
    seconds = {name: round(t - stamps[i - 1][1], 3) for i, (name, t) in enumerate(stamps) if i}
    # "fit" splits into the backtest (its fits, predictions and tables), today's fit (the wait for
    # it, when it ran beside the backtest: evidence._Ahead), and the rest (the wait for the spend
    # model, fitted beside them); each part is reported.
    seconds["backtest"] = found.seconds.get("backtest", 0.0)
    seconds["spend_fit"] = round(seconds["fit"] - found.seconds.get("backtest", 0.0) - found.seconds.get("fit", 0.0), 3)
    seconds["fit"] = found.seconds.get("fit", 0.0)
    return RefreshResult(len(stats), found.method, fits, seconds, counts, found.backtest)


async def _previous_fits(db: AsyncSession) -> evidence.Starts:
    """The last refresh's usable fits, per stage and model: today's optimiser starts there
    (yesterday's data differ by a day, so a few steps reach the optimum)."""
    row = await db.get(Setting, BACKTEST_KEY)
    out: evidence.Starts = {}
    for record in [*row.value.get("candidates", []), *row.value.get("refits", [])] if row is not None else []:
        params = record.get("params") or {}
        if record.get("usable") and params and all(isinstance(v, (int, float)) for v in params.values()):
            stage = out.setdefault(str(record.get("stage")), {})
            stage[str(record["model"])] = {k: float(v) for k, v in params.items()}
    return out


# ---- live scoring ---------------------------------------------------------------------------------
#
# A write adds live scoring to its transaction, so it is kept to two round trips: one read
# (_LIVE_READ_FEW: the stored fit, the company's settings, the dashboard's stale mark and the
# client's statistics; the lock wait of the scoring's writes is set in passing), and one write
# (_live_write_sql: the upsert, which also returns the rows as written and sets the lock wait back).
# Many clients (an import, a merge) read their statistics on their own (statistics.read, by COPY).

def _live_read(param: int) -> str:
    return f"""
    SELECT current_setting('lock_timeout') AS lock_timeout,
           set_config('lock_timeout', coalesce(${param}::text, current_setting('lock_timeout')), true) AS lock_wait,
           (SELECT value FROM settings WHERE key = '{SCORING_KEY}') AS scoring,
           (SELECT value FROM settings WHERE key = '{analytics_settings.KEY}') AS analytics,
           EXISTS (SELECT FROM settings WHERE key = '{STALE_KEY}') AS stale"""  # noqa: S608 - our constants


_LIVE_READ = _live_read(1)
_LIVE = 5  # its columns
# A few clients (up to statistics.FETCH_UP_TO): their statistics come along, one row each
# (statistics.SOME_CLIENTS: today $1, the cut-off $2, the ids $3), and one row of NULLs after the
# reads' columns when none is left.
_LIVE_READ_FEW = (f"WITH live AS MATERIALIZED ({_live_read(4)}) "  # noqa: S608 - our constants
                  f"SELECT live.*, s.* FROM live LEFT JOIN ({statistics.SOME_CLIENTS}) s ON true ORDER BY s.id")
_RESTORE = "SELECT set_config('lock_timeout', $1, true)"
_SCORE_NAMES = ", ".join(c.name for c in ClientScore.__table__.c)


@functools.cache
def _live_write_sql(factor_keys: tuple[str, ...]) -> str:
    """The upsert (_upsert_sql), returning the rows written, and the lock wait set back (last parameter)
    once every row is in: `restored` counts the upsert's rows first, and, the outer side of the
    join, is read before anything is returned."""
    n = len(_COLUMNS) + len(factor_keys) + 2  # the arrays, the method, then the setting
    return (f"WITH written AS ({_upsert_sql(list(factor_keys))} RETURNING {_SCORE_NAMES}), "  # noqa: S608 - ours
            f"restored AS (SELECT set_config('lock_timeout', ${n}, true) FROM (SELECT count(*) FROM written) n) "
            "SELECT written.* FROM restored LEFT JOIN written ON true")


async def score_clients(db: AsyncSession, client_ids: list[int], *, today: date | None = None,
                        lock_wait: str | None = None) -> int:
    """Re-score these clients now, in the caller's transaction, from the fit, thresholds and RFM
    boundaries the last refresh stored (no refit). Nothing happens before a first refresh (there
    is nothing to keep current). Returns the number of clients scored; the rows written are noted
    for the page drawn next (events.note_scores).

    lock_wait: the longest the writes wait for a lock (lock_timeout), for this scoring only: the
    transaction's own setting is back when this returns (on an error, the caller's savepoint
    rollback puts it back)."""
    if not client_ids:
        return 0
    raw: Any = (await (await db.connection()).get_raw_connection()).driver_connection  # asyncpg's
    today = today or clock.today()
    ids = sorted(set(client_ids))
    stats: statistics.Stats | None = None
    if len(ids) <= statistics.FETCH_UP_TO:  # (a write's client: one round trip for every read)
        records = [tuple(r) for r in await raw.fetch(_LIVE_READ_FEW, today, today, ids, lock_wait)]
        before, _set, stored, company, stale = records[0][:_LIVE]
        stats = statistics.from_records([r[_LIVE:] for r in records if r[_LIVE] is not None], today, today)
    else:
        before, _set, stored, company, stale = await raw.fetchrow(_LIVE_READ, lock_wait)
    if stored is None:
        await _restore(raw, before, lock_wait)
        return 0
    cfg = {**analytics_settings.merged(company), "new_days": stored.get("new_days", 90),
           "horizon_days": stored.get("horizon_days", 90)}
    clv_cfg = stored.get("clv") or {}
    cfg.update({"discount_rate": clv_cfg.get("annual_rate", cfg["discount_rate"]),
                "margin": clv_cfg.get("margin", cfg["margin"]), "clv_months": clv_cfg.get("months", cfg["clv_months"])})
    if stats is None:
        stats = await statistics.read(db, today, today, ids)
    gone = sorted(set(ids) - set(stats.ids.tolist()))
    if gone:  # deleted or erased meanwhile
        await db.execute(text("DELETE FROM client_scores WHERE client_id = ANY(CAST(:ids AS bigint[]))"),
                         {"ids": gone})
    if not stale:  # (once marked, mark_stale would only read the mark again)
        await mark_stale(db)  # the dashboard's counts no longer include this write: say so, recount soon
    if not len(stats):
        await _restore(raw, before, lock_wait)
        return 0
    method = stored["method"]
    if method == "rules" or not stored.get("fit"):
        fc = forecast.rules_forecast(stats, stored["limits"].get("typical_gap_days", cfg["new_days"]), cfg)
    else:
        fc = forecast.model_forecast(stats, stored["fit"]["model"], stored["fit"]["params"], stored.get("spend"),
                                     stored["limits"], cfg)
    recency, frequency, monetary = forecast.rfm_inputs(stats)
    r, f, m = forecast.rfm_live(recency, frequency, monetary, stats.bought, stored["rfm_bounds"])
    columns, stored_factors = _score_columns(stats, fc, r, f, m, stats.factors, cfg)
    keys = tuple(_factor_keys(stored_factors))
    args = [columns[c].tolist() for c, _t, _e in _COLUMNS] + [np.asarray(stored_factors[k], dtype=float).tolist()
                                                             for k in keys]
    rows = await raw.fetch(_live_write_sql(keys), *args, method, before)
    events.note_scores(db, {row["client_id"]: dict(row) for row in rows if row["client_id"] is not None})
    return len(stats)


async def _restore(raw: Any, before: str, lock_wait: str | None) -> None:
    if lock_wait is not None:
        await raw.execute(_RESTORE, before)


# ---- settings rows --------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """Plain JSON for a JSONB column: numpy scalars as numbers, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


async def put_setting(db: AsyncSession, key: str, value: dict[str, Any]) -> None:
    value = json_safe(value)
    row = await db.get(Setting, key)
    if row is None:
        db.add(Setting(key=key, value=value))
    else:
        row.value, row.updated_at = value, func.now()
