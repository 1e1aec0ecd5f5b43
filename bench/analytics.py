"""Benchmark: the analytics score refresh at a million clients, model fit times, worker memory.

Setup (timed under "setup_seconds"): a throwaway database, one tenant, N clients (bench/clients.py's
generator) and ~N * ops-per-client operations by COPY, `refresh_all_metrics`, VACUUM ANALYZE. The
operations come from a buy-till-you-die process, not uniform noise (on uniform noise every client
buys at the same rate and never leaves, so the fits run off to the parameter boundary): each client
has a first purchase 0..3 years ago, a Gamma purchase rate and a Gamma-mixed exponential lifetime,
Poisson repeats while alive; rows are stored in date order as a live system writes them. 3% returns,
12% services, 20% of sales on 14-day credit (some paid late, some never).

Measured:
* refresh - `saas.analytics.scoring.refresh(session)` end to end (the one statistics pass - purchase
  statistics, payment sums and growth bit sets -, the backtest - candidates fitted on the history
  up to the cut-off, holdout predictions, the model choice, the status check - today's fit, the
  spend model, predictions and CLV, the scores written back, the dashboard figures, commit), each
  run in a fresh subprocess like an RQ worker: "first" fills an empty client_scores, "second"
  replaces a full one (the nightly case). `steps` is RefreshResult.seconds (today's fit runs
  beside the backtest when it can start early, scoring.refresh: its step then counts only the
  wait for it); `backtest_share` is the backtest's part of the whole; `python_cpu` the worker's
  own CPU seconds, all its threads (the rest of the wall time is the server's, or waiting).
  Floor (FLOOR): one bare SQL pass over the statistics - the same scan of every operation up to
  today and GROUP BY client_id with what the models need (purchase days today and at the cut-off,
  first and last purchase day, purchases' and returns' totals), every row returned to the client
  by binary COPY. Nothing can score clients without reading that much, so refresh/floor (`ratio_*`)
  says what the rest costs; the goal is at most 3. `floor_purchases_seconds` is the floor of earlier
  runs (purchases only, fetched as records), kept for comparison (`ratio_*_purchases_floor`).
  `sql_seconds` times the statistics pass alone, and, for comparison, the growth SQL the dashboard
  falls back to when the bit sets do not reach (not run by refresh otherwise).
* live - `scoring.score_clients` for one client (what a form write adds to its transaction), and
  for 1,000 clients (an import's batch), median of 5, in milliseconds.
* fits - btyd.fit_pareto, fit_bgnbd, fit_bgnbd(modified=True), fit_gamma_gamma on data simulated
  from each model's own process (CDNOW-like parameters in weeks, T uniform 26..156 weeks), grouped
  as the product does (`compress(x, round(t_x), round(T))`), at each --fit-sizes; plus Pareto/NBD
  ungrouped at the first size. "seconds" includes the grouping (as refresh pays it), "fit_seconds" is
  the optimiser alone. Goal: Pareto/NBD at 1,000,000 clients under 10 s.
* memory - peak RSS of the refresh subprocess (a fresh interpreter importing only saas.db and
  saas.analytics.scoring, like a worker): after imports (baseline) and at the end (peak). It reads
  VmHWM, not ru_maxrss: on Linux a child's ru_maxrss keeps the parent's RSS from before its exec.

Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL, else the embedded server. BENCH_KEEP=1
keeps the loaded database (its name is logged); BENCH_REUSE=<name> measures on it again without the setup
(its scores, stored fits and snapshot are removed first and client_scores vacuumed, as a fresh load).
Usage: python bench/analytics.py [--clients 1000000] [--ops-per-client 10] [--fit-sizes 100000,1000000]
[--quick]; `--fit-sizes ''` leaves the fits out. Progress on stderr, JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

os.environ["SAAS_ENV"] = "test"  # before any saas import: get_settings() is cached
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="kt_bench_data_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import numpy as np
from sqlalchemy import text

from bench.clients import CLIENT_COLUMNS, OP_COLUMNS, SEED, TODAY, Pools, client_rows
from bench.tenants import admin_url, ensure_server, host_load, log, with_db
from saas.analytics import btyd, dashboard, scoring, simulate, statistics
from saas.clients.operations import refresh_all_metrics
from saas.core.config import normalise_database_url
from saas.core.db import Database
from saas.admin.migrate import migrate_shared
from saas.accounts.service import do_create_tenant

CHUNK, YEARS3 = 1_000_000, 3 * 365
FLOOR = """
    SELECT client_id, count(DISTINCT occurred_on) FILTER (WHERE kind <> 'return'),
           count(DISTINCT occurred_on) FILTER (WHERE kind <> 'return' AND occurred_on <= $2),
           min(occurred_on) FILTER (WHERE kind <> 'return'), max(occurred_on) FILTER (WHERE kind <> 'return'),
           sum(amount) FILTER (WHERE kind <> 'return'), sum(amount) FILTER (WHERE kind = 'return')
    FROM {s}.operations WHERE occurred_on <= $1 GROUP BY client_id
"""
FLOOR_PURCHASES = ("SELECT client_id, count(DISTINCT occurred_on), min(occurred_on), max(occurred_on), sum(amount) "
         "FROM {s}.operations WHERE kind <> 'return' AND occurred_on <= $1 GROUP BY client_id")


def operation_chunks(n: int, per_client: float, seed: int = SEED):
    """Operations of a Pareto/NBD-like population, in date order, as COPY records (see the docstring)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, YEARS3, n)  # days since the first purchase
    lam, mu = rng.gamma(0.9, 1.0, n), rng.gamma(0.8, 1 / 500, n)
    alive = np.minimum(rng.exponential(1 / mu), age)
    repeats = rng.poisson(lam * alive * max(per_client - 1, 0) / max(np.mean(lam * alive), 1e-9))
    cid = np.repeat(np.arange(1, n + 1), repeats + 1)
    first = np.r_[True, cid[1:] != cid[:-1]]
    ago = age[cid - 1] - np.where(first, 0, np.floor(rng.random(len(cid)) * alive[cid - 1])).astype(np.int64)
    order = np.argsort(-ago, kind="stable")
    cid, ago, m = cid[order], ago[order], len(cid)
    kind = np.searchsorted([0.03, 0.15], rng.random(m))  # 0 return, 1 service, 2 sale
    spend = rng.lognormal(np.log(3000), 0.8, n)[cid - 1]
    kopecks = np.maximum(rng.gamma(4.0, spend / 4) * 100, 100).astype(np.int64)
    credit = (kind > 0) & (rng.random(m) < 0.2)
    paid_ago = np.where(credit, ago - 14 + rng.integers(-14, 45, m), ago)
    paid_ago = np.where(credit & ((paid_ago < 0) | (rng.random(m) < 0.1)), 10**6, paid_ago)  # not (yet) paid
    cal = {d: TODAY - timedelta(days=int(d)) for d in range(-20, YEARS3 + 1)}
    kinds = ("return", "service", "sale")
    for lo in range(0, m, CHUNK):
        s = slice(lo, lo + CHUNK)
        yield m, list(zip(cid[s].tolist(), [kinds[k] for k in kind[s].tolist()], [cal[d] for d in ago[s].tolist()],
                          [Decimal(k).scaleb(-2) for k in kopecks[s].tolist()],
                          [cal[d - 14] if c else None for d, c in zip(ago[s].tolist(), credit[s].tolist())],
                          [cal.get(p) for p in paid_ago[s].tolist()], strict=True))


@asynccontextmanager
async def bench_tenant(n: int, per_client: float, extra_columns: tuple = (), extra=None, scores: bool = False):
    """Yield (db, raw, schema, url, setup): a throwaway database with one loaded tenant; dropped after.
    `extra(rnd, client_id)` returns values for `extra_columns` per client; `scores` runs one refresh."""
    rnd, setup = random.Random(SEED), {}
    admin, name = admin_url(), f"kt_bench_{secrets.token_hex(4)}"
    if os.environ.get("BENCH_REUSE"):  # a database an earlier run kept (BENCH_KEEP=1): no setup, no drop
        name = os.environ["BENCH_REUSE"]
        db, raw = Database(normalise_database_url(with_db(admin, name))), await asyncpg.connect(with_db(admin, name))
        schema = await raw.fetchval("SELECT schema_name FROM shared.tenants ORDER BY id LIMIT 1")
        try:
            yield db, raw, schema, normalise_database_url(with_db(admin, name)), {"reused_database": name}
        finally:
            await raw.close()
            await db.dispose()
        return
    admin_conn = await asyncpg.connect(admin)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    log(f"created database {name}")
    url = normalise_database_url(with_db(admin, name))
    db, raw = Database(url), None
    try:
        started = time.perf_counter()
        await migrate_shared(db.engine)
        async with db.session() as s:
            schema = (await do_create_tenant(s, "Bench Analytics")).schema_name
        raw = await asyncpg.connect(with_db(admin, name))
        rows = client_rows(n, Pools(rnd), rnd, schema)
        if extra is not None:
            rows = [row + tuple(extra(rnd, row[0])) for row in rows]
        setup["generate_clients"] = time.perf_counter() - started
        started = time.perf_counter()
        await raw.copy_records_to_table("clients", records=rows, columns=CLIENT_COLUMNS + list(extra_columns),
                                        schema_name=schema)
        await raw.execute(f"SELECT setval(pg_get_serial_sequence('{schema}.clients', 'id'), {n})")
        setup["copy_clients"], setup["copy_operations"], done = time.perf_counter() - started, 0.0, 0
        del rows
        for total, chunk in operation_chunks(n, per_client):
            started = time.perf_counter()
            await raw.copy_records_to_table("operations", records=chunk, columns=OP_COLUMNS, schema_name=schema)
            setup["copy_operations"] += time.perf_counter() - started
            done += len(chunk)
            log(f"copied {done}/{total} operations")
        setup["operations"] = done
        started = time.perf_counter()
        async with db.session(schema) as s:
            await refresh_all_metrics(s)
        await raw.execute(f"VACUUM (ANALYZE) {schema}.clients, {schema}.operations")
        setup["metrics_and_vacuum"] = time.perf_counter() - started
        if scores:
            started = time.perf_counter()
            async with db.session(schema) as s:
                setup["scores_method"] = (await scoring.refresh(s)).method
            await raw.execute(f"VACUUM (ANALYZE) {schema}.client_scores")
            setup["score_refresh"] = time.perf_counter() - started
        setup = {k: round(v, 2) if isinstance(v, float) else v for k, v in setup.items()}
        log(f"setup: {setup}")
        yield db, raw, schema, url, setup
    finally:
        if raw is not None:
            await raw.close()
        await db.dispose()
        if os.environ.get("BENCH_KEEP"):  # for EXPLAIN sessions by hand; drop it yourself after
            log(f"kept database {name}")
        else:
            await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped database {name}")
        await admin_conn.close()


WORKER = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
from saas.analytics.scoring import refresh
from saas.core.db import Database
from saas.wiring import wire  # noqa: E402

wire()
# Peak RSS of this process image (VmHWM): ru_maxrss would keep the forking parent's RSS across exec.
rss = lambda: round(int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]) / 1024, 1)

async def main(url, schema):
    baseline, db, started, cpu = rss(), Database(url), time.perf_counter(), time.process_time()
    async with db.session(schema) as s:  # as the RQ job: one session, committed at the end
        r = await refresh(s)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await db.dispose()
    print(json.dumps({"seconds": round(seconds, 2), "python_cpu": round(cpu, 2), "steps": r.seconds, "commit": round(seconds - sum(
        r.seconds.values()), 2), "backtest_share": round(r.seconds.get("backtest", 0) / seconds, 3),
        "clients": r.clients, "method": r.method, "status": r.status_counts,
        "ordered": r.backtest.get("status_ordered"), "holdout": (r.backtest.get("compare") or {}).get(r.method, {}).get("total"),
        "fits": {f.model: round(f.seconds, 2) for f in r.fits}, "converged": all(f.converged for f in r.fits),
        "memory_mb": {"baseline": baseline, "peak": rss(), "delta": round(rss() - baseline, 1)}}))

asyncio.run(main(sys.argv[2], sys.argv[3]))
"""


async def refresh_in_subprocess(url: str, schema: str) -> dict:
    """The refresh in a fresh interpreter that imports only what a worker needs (for its peak RSS)."""
    root = str(Path(__file__).resolve().parent.parent)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, root, url, schema,
                                                stdout=asyncio.subprocess.PIPE)
    out, _err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"refresh worker exited with {proc.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def floor_pass(raw: asyncpg.Connection, schema: str) -> tuple[float, int]:
    """FLOOR, every row to the client by binary COPY (the cheapest way there); (seconds, bytes)."""
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    started = time.perf_counter()
    await raw.copy_from_query(FLOOR.format(s=schema), TODAY, TODAY - timedelta(weeks=13), output=sink,
                              format="binary")
    return time.perf_counter() - started, size


async def purchases_floor_pass(raw: asyncpg.Connection, schema: str) -> float:
    started = time.perf_counter()
    await raw.fetch(FLOOR_PURCHASES.format(s=schema), TODAY)
    return time.perf_counter() - started


async def reset_scores(raw: asyncpg.Connection, schema: str) -> None:
    """A reused database as a fresh load leaves it: no scores, no stored fits or snapshot (the first
    run then fits from the default starts), and no dead rows in client_scores from earlier runs
    (this server may run without autovacuum; a production one vacuums them after each refresh)."""
    await raw.execute(f"DELETE FROM {schema}.client_scores; DELETE FROM {schema}.model_fits; "
                      f"DELETE FROM {schema}.settings WHERE key IN ('scoring', 'backtest', 'dashboard', 'dashboard_stale')")
    await raw.execute(f"VACUUM (ANALYZE) {schema}.client_scores, {schema}.model_fits, {schema}.settings")


async def measure_refresh(db: Database, raw: asyncpg.Connection, schema: str, url: str) -> dict:
    if os.environ.get("BENCH_REUSE"):
        await reset_scores(raw, schema)
    floors, old_floors, runs = [await floor_pass(raw, schema)], [await purchases_floor_pass(raw, schema)], {}
    for run_name in ("first", "second"):  # the floors run before, between and after
        runs[run_name] = await refresh_in_subprocess(url, schema)
        floors.append(await floor_pass(raw, schema))
        old_floors.append(await purchases_floor_pass(raw, schema))
        log(f"floor {floors[-1][0]:.2f} s; refresh {run_name}: {runs[run_name]}")
    floor, old_floor = min(f[0] for f in floors), min(old_floors)
    sql = {}
    cutoff = TODAY - timedelta(weeks=13)
    async with db.session(schema) as s:  # the refresh's pass alone, and the growth SQL (diagnostic)
        started = time.perf_counter()
        stats = await statistics.read(s, TODAY, cutoff)
        sql["statistics"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        dashboard.figures_from_stats(stats)
        sql["growth_from_statistics"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        await dashboard.growth_figures(s, TODAY)
        sql["growth_sql_fallback"] = round(time.perf_counter() - started, 2)
        del stats
    log(f"refresh's queries alone: {sql}")
    live = await measure_live(db, schema)
    log(f"live scoring: {live}")
    return {"refresh": runs, "floor_seconds": round(floor, 2), "floor_runs": [round(f[0], 2) for f in floors],
            "floor_bytes": floors[0][1], "floor_purchases_seconds": round(old_floor, 2), "sql_seconds": sql,
            "live_ms": live,
            "ratio_first": round(runs["first"]["seconds"] / floor, 2),
            "ratio_second": round(runs["second"]["seconds"] / floor, 2),
            "ratio_first_purchases_floor": round(runs["first"]["seconds"] / old_floor, 2),
            "ratio_second_purchases_floor": round(runs["second"]["seconds"] / old_floor, 2),
            "statistics_over_floor": round(sql["statistics"] / floor, 2),
            "peak_worker_memory_mb": max(r["memory_mb"]["peak"] for r in runs.values())}


async def measure_live(db: Database, schema: str) -> dict[str, float]:
    """Live scoring (no commit: each run rolls back) for 1 and 1,000 clients, median of 5, ms."""
    async with db.session(schema) as s:
        ids = [int(i) for i in (await s.execute(text("SELECT id FROM clients ORDER BY id LIMIT 1000"))).scalars()]
    out = {}
    for n in (1, 1000):
        times = []
        for _ in range(5):
            async with db.session(schema) as session:
                await session.execute(text("SELECT 1"))  # the transaction and its tenant binding
                started = time.perf_counter()
                await scoring.score_clients(session, ids[:n], today=TODAY)
                times.append((time.perf_counter() - started) * 1000)
                await session.rollback()  # leave the scores as the refresh wrote them
        out[str(n)] = round(sorted(times)[2], 1)
    return out


def simulated(n: int, seed: int, chunk: int = 100_000) -> dict[str, tuple]:
    """Per model, data from its own generative process, T ~ U(26, 156) weeks; in chunks (memory)."""
    parts = {"pareto-nbd": [], "bg-nbd": [], "mbg-nbd": []}
    for i, lo in enumerate(range(0, n, chunk)):
        k = min(chunk, n - lo)
        T = np.random.default_rng(seed + i).uniform(26, 156, k)
        parts["pareto-nbd"].append(simulate.pareto_nbd(k, 0.55, 10.58, 0.61, 11.67, T, seed=seed + i))
        parts["bg-nbd"].append(simulate.bg_nbd(k, 0.24, 4.41, 0.79, 2.43, T, seed=seed + i))
        parts["mbg-nbd"].append(simulate.bg_nbd(k, 0.24, 4.41, 0.79, 2.43, T, seed=seed + i, modified=True))
    data = {m: tuple(np.concatenate(c) for c in zip(*p, strict=True)) for m, p in parts.items()}
    x = data["pareto-nbd"][0]
    data["gamma-gamma"] = (x, simulate.gamma_gamma(x, 6.25, 3.74, 15.44, seed=seed))
    return data


def timed_fit(model: str, data: tuple, grouped: bool = True) -> dict:
    started = time.perf_counter()
    if model == "gamma-gamma":
        fit, groups = btyd.fit_gamma_gamma(*data), len(data[0])
    else:
        x, t_x, T = data
        (x, t_x, T), w, _inverse = btyd.compress(x, np.round(t_x), np.round(T)) if grouped else ((x, t_x, T), None, 0)
        groups = len(x)
        fit = btyd.fit_bgnbd(x, t_x, T, w, modified=True) if model == "mbg-nbd" else \
            btyd.fit_bgnbd(x, t_x, T, w) if model == "bg-nbd" else btyd.fit_pareto(x, t_x, T, w)
    return {"seconds": round(time.perf_counter() - started, 2), "fit_seconds": round(fit.seconds, 2),
            "groups": groups, "converged": fit.converged, "params": {k: round(v, 4) for k, v in fit.params.items()}}


def measure_fits(sizes: list[int]) -> dict:
    out = {}
    for n in sizes:
        started = time.perf_counter()
        data = simulated(n, seed=SEED)
        log(f"simulated {n} clients per model in {time.perf_counter() - started:.1f} s")
        out[str(n)] = {m: timed_fit(m, d) for m, d in data.items()}
        if n == sizes[0]:
            out[str(n)]["pareto-nbd-ungrouped"] = timed_fit("pareto-nbd", data["pareto-nbd"], grouped=False)
        log(f"fits at {n}: {out[str(n)]}")
    return out


async def run(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()
    async with bench_tenant(args.clients, args.ops_per_client) as (db, raw, schema, url, setup):
        refresh = await measure_refresh(db, raw, schema, url)
    fits = measure_fits(args.fit_sizes)
    big = fits.get("1000000", {}).get("pareto-nbd")
    return {"benchmark": "analytics", "clients": args.clients, "setup_seconds": setup, **refresh,
            "fits": fits, "truth": {"pareto-nbd": [0.55, 10.58, 0.61, 11.67], "bg-nbd": [0.24, 4.41, 0.79, 2.43],
                                    "gamma-gamma": [6.25, 3.74, 15.44]},
            "goal_pareto_1m_under_10s": None if big is None else big["seconds"] < 10,
            "host": host_load(load_start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=lambda v: max(1, int(v)), default=None, help="default 1,000,000")
    parser.add_argument("--ops-per-client", type=float, default=10.0, help="operations per client on average")
    parser.add_argument("--fit-sizes", type=lambda v: [int(i) for i in v.split(",") if i], default=None,
                        help="simulated clients per fit (default 100000,1000000; '' for none)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 clients (unless --clients), fits at 20k and 100k")
    args = parser.parse_args()
    if args.quick:
        args.clients = args.clients or 20_000
        args.fit_sizes = [20_000, 100_000] if args.fit_sizes is None else args.fit_sizes
    args.clients = args.clients or 1_000_000
    args.fit_sizes = [100_000, 1_000_000] if args.fit_sizes is None else args.fit_sizes
    ensure_server()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
