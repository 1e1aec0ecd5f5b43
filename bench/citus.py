"""Benchmark: the same work on a Citus cluster (a coordinator and two workers, on this machine) and
on the single PostgreSQL server, in one run.

For each engine, from an empty database: the shared schema, then
* companies - `do_create_tenant` K times, each in its own transaction (the spare pool off, so the
  DDL itself is measured): companies created per second;
* one company with N clients and ~10 N operations (COPY through the coordinator on Citus, so the
  rows land on the company's worker), its metrics and one score refresh (untimed setup);
* list - the first page of the client list (`list_clients` in `Database.session(schema)`, as the page
  runs it), --repeat times after 3 warm-ups: p50/p95;
* build - a campaign list of the top N/10 by CLV (`campaigns.service.build`, one transaction, as the
  worker runs it), --builds times: p50.
Printed per measure: each engine's figure and citus/single (a ratio above 1 means the cluster is
slower; on one machine the cluster pays the coordinator's extra hop and gains no hardware).

Needs the cluster script (KARTOTEKA_CITUS, default ../shared/citus/citus-cluster) and PostgreSQL 15's
binaries; the single server is BENCH_DATABASE_URL or TEST_DATABASE_URL (a throwaway database there).
Usage: python bench/citus.py [--clients 20000] [--companies 30] [--repeat 40] [--builds 3] [--quick].
Progress on stderr, JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SAAS_ENV", "test")
os.environ.setdefault("SPARE_SCHEMAS", "0")

import asyncpg

from bench.analytics import operation_chunks
from bench.clients import CLIENT_COLUMNS, OP_COLUMNS, SEED, Pools, client_rows
from bench.tenants import admin_url, log, pct, with_db
from saas.accounts.service import do_create_tenant
from saas.admin.migrate import migrate_shared
from saas.analytics import scoring
from saas.campaigns.models import Campaign
from saas.campaigns.service import build, check_campaign
from saas.clients.operations import refresh_all_metrics
from saas.clients.queries import list_clients, parse_filter
from saas.core.config import normalise_database_url
from saas.core.db import Database
from saas.wiring import wire
from tests.integration import citus as cluster


def ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def measure(url: str, args: argparse.Namespace) -> dict:
    db = Database(normalise_database_url(url))
    raw = await asyncpg.connect(url)
    out: dict = {}
    try:
        await migrate_shared(db.engine)
        started = time.perf_counter()
        schemas = []
        for i in range(args.companies):
            async with db.session() as s:
                schemas.append((await do_create_tenant(s, f"Bench {secrets.token_hex(3)} {i}")).schema_name)
        out["companies_per_second"] = round(args.companies / (time.perf_counter() - started), 2)
        schema, rnd = schemas[0], random.Random(SEED)
        await raw.copy_records_to_table("clients", records=client_rows(args.clients, Pools(rnd), rnd, schema),
                                        columns=CLIENT_COLUMNS, schema_name=schema)
        await raw.execute(f"SELECT setval(pg_get_serial_sequence('{schema}.clients', 'id'), {args.clients})")
        for _total, chunk in operation_chunks(args.clients, 10):
            await raw.copy_records_to_table("operations", records=chunk, columns=OP_COLUMNS, schema_name=schema)
        async with db.session(schema) as s:
            await refresh_all_metrics(s)
        async with db.session(schema) as s:
            await scoring.refresh(s)
        await raw.execute(f"ANALYZE {schema}.clients, {schema}.operations, {schema}.client_scores")
        log(f"loaded {args.clients} clients into {schema}")

        times = []
        for i in range(args.repeat + 3):
            started = time.perf_counter()
            async with db.session(schema) as s:
                await list_clients(s, parse_filter({}))
            if i >= 3:
                times.append(ms(started))
        out["list_p50_ms"], out["list_p95_ms"] = pct(times, 50), pct(times, 95)

        async with db.session(schema) as s:
            campaign = Campaign(**check_campaign({"name": "Bench", "channel": "none", "ranking": "clv",
                                                  "size": max(1, args.clients // 10)}))
            s.add(campaign)
            await s.flush()
            cid = campaign.id
        builds = []
        for _ in range(args.builds):
            started = time.perf_counter()
            async with db.session(schema) as s:
                await build(s, await s.get(Campaign, cid, with_for_update=True))
            builds.append(ms(started))
        out["build_p50_ms"] = round(statistics.median(builds), 2)
    finally:
        await raw.close()
        await db.dispose()
    return out


async def run(args: argparse.Namespace) -> dict:
    wire()
    admin, name = admin_url(), f"kt_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    root = Path(tempfile.mkdtemp(prefix="kt_bench_citus_"))
    try:
        log("single server")
        single = await measure(with_db(admin, name), args)
        log(f"single: {single}; starting the cluster")
        url = cluster.start(root)
        on_citus = await measure(url, args)
        log(f"citus: {on_citus}")
    finally:
        cluster.stop(root)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    ratios = {k: round(on_citus[k] / single[k], 2) for k in single if k.endswith("_ms")}
    ratios["companies_per_second"] = round(on_citus["companies_per_second"] / single["companies_per_second"], 2)
    return {"clients": args.clients, "companies": args.companies, "single": single, "citus": on_citus,
            "citus_over_single": ratios}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--companies", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.companies, args.repeat, args.builds = 2000, 5, 10, 1
    reason = cluster.skip_reason()
    if reason:
        print(json.dumps({"skipped": reason}))
        return
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
