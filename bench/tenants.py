"""Benchmark: tenant creation, one additive migration across all tenants, catalog cost per tenant.

Kartoteka keeps one PostgreSQL schema per company, so these numbers decide whether that scales:

* create_ms - wall time of a signup's tenant creation through the product's own path,
  `do_create_tenant(session, name)` inside `Database(url).session()` (one transaction each, commit
  included), N tenants in a row. *_last_200 is the tail once ~N schemas exist. With `--pool K`
  (default 3) the spare pool holds K schemas and is refilled between creations, untimed, as the
  worker does after each take (saas/admin/spares.py): a creation is a rename. `--pool 0`: the DDL.
* floor_create_schema_ms - the same tables as one bare multi-statement script (`CREATE SCHEMA ...;
  <tenant_ddl()>`) over a raw asyncpg connection: no registry insert, no ORM. Run interleaved with
  the last 200 creations (same catalog size, same disk weather). It is what PostgreSQL itself needs
  (catalog rows, one file per relation, an fsync per index build, the commit), so the ratios
  product/floor say how much the application adds on top of the unavoidable part: near 1 means
  there is little left to win in code; the rest is schema size and storage.
* migrate_one_additive - `migrate_tenants` (what `saas migrate` runs after the shared schema) for
  one revision adding a nullable column to audit_events, across all N tenants, in 2 processes
  (tenants sharded by id; Alembic's `op` proxy is process-wide, so never concurrent in-process).
  "tenants_inconsistent" counts tenants whose recorded version disagrees with the real column.
* catalog_rows_per_tenant - system catalog rows one tenant schema owns (TOAST included): every
  tenant adds these, which is what grows relcache, pg_dump and catalog vacuum work.

Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL, else the embedded server.
A throwaway database kt_bench_<random> is created and dropped WITH (FORCE) at the end.
Usage: python bench/tenants.py [--tenants 2000] [--pool 3] [--no-migrate]; QUICK=1: 100 tenants.
Progress on stderr, JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

os.environ["SAAS_ENV"] = "test"  # before any saas import: get_settings() is cached
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="kt_bench_data_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy.engine import make_url

from saas.core.config import normalise_database_url
from saas.core.db import Database
from saas.admin.migrate import MIGRATIONS, head, migrate_shared, migrate_tenants_parallel, tenant_ddl
from saas.accounts.service import do_create_tenant
from saas.admin import spares
from saas.wiring import wire

wire()

FLOOR_REPS = LAST = 200
REVISION = '''"""bench: one additive column"""
from alembic import op
import sqlalchemy as sa

revision, down_revision, branch_labels, depends_on = "bench_note", {down!r}, None, None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("bench_note", sa.Text(), nullable=True))
'''
INCONSISTENT = (  # tenants whose recorded version disagrees with whether the column exists
    "SELECT count(*) FROM shared.tenants t LEFT JOIN pg_attribute a ON a.attname = 'bench_note' AND NOT "
    "a.attisdropped AND a.attrelid = to_regclass(t.schema_name || '.audit_events') "
    "WHERE (t.schema_version = 'bench_note') <> (a.attname IS NOT NULL)"
)
CATALOG = """
WITH own AS (SELECT oid, reltoastrelid FROM pg_class WHERE relnamespace = $1::regnamespace),
toast AS (SELECT reltoastrelid AS oid FROM own WHERE reltoastrelid <> 0),
rels AS (SELECT oid FROM own UNION ALL SELECT oid FROM toast
         UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM toast)),
types AS (SELECT oid FROM pg_type WHERE typnamespace = $1::regnamespace OR typrelid IN (SELECT oid FROM rels)),
cons AS (SELECT oid FROM pg_constraint WHERE connamespace = $1::regnamespace),
defs AS (SELECT oid FROM pg_attrdef WHERE adrelid IN (SELECT oid FROM rels))
SELECT (SELECT count(*) FROM rels) AS pg_class,
       (SELECT count(*) FROM pg_attribute WHERE attrelid IN (SELECT oid FROM rels)) AS pg_attribute,
       (SELECT count(*) FROM pg_index WHERE indexrelid IN (SELECT oid FROM rels)) AS pg_index,
       (SELECT count(*) FROM cons) AS pg_constraint, (SELECT count(*) FROM types) AS pg_type,
       (SELECT count(*) FROM defs) AS pg_attrdef,
       (SELECT count(*) FROM pg_sequence WHERE seqrelid IN (SELECT oid FROM rels)) AS pg_sequence,
       (SELECT count(*) FROM pg_depend WHERE objid IN (SELECT oid FROM rels UNION ALL SELECT oid FROM types
                                 UNION ALL SELECT oid FROM cons UNION ALL SELECT oid FROM defs)) AS pg_depend
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Percentile with linear interpolation between closest ranks."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 2)


def admin_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not url:
        from saas.embedded import start_postgres

        log("no BENCH_DATABASE_URL/TEST_DATABASE_URL: starting the embedded PostgreSQL")
        url = start_postgres(Path(tempfile.mkdtemp(prefix="kt_bench_pg_")))
    return with_db(url, "postgres")


def with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def ensure_server() -> None:
    """Resolve the server before any event loop: the embedded one starts with asyncio.run()."""
    os.environ["BENCH_DATABASE_URL"] = admin_url()


@asynccontextmanager
async def throwaway_database() -> AsyncIterator[tuple[Database, str]]:
    """Yield (db, raw_url) of a new database kt_bench_<random>, dropped WITH (FORCE) after, whatever happened."""
    admin = admin_url()
    name = f"kt_bench_{secrets.token_hex(4)}"
    admin_conn = await asyncpg.connect(admin)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    log(f"created database {name}")
    db = Database(normalise_database_url(with_db(admin, name)))
    try:
        yield db, with_db(admin, name)
    finally:
        await db.dispose()
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()
        log(f"dropped database {name}")


def host_load(load_start: tuple[float, float, float]) -> dict:
    """The host is shared: its CPUs and its load from start to end say how noisy the numbers are."""
    return {"cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg()}


def positive(value: str) -> int:
    """argparse type for counts: at least 1."""
    return max(1, int(value))


def clients_parser(doc: str, clients: int, clients_help: str) -> argparse.ArgumentParser:
    """The parser of a benchmark over one loaded company: its docstring's first line and --clients N."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--clients", type=positive, default=clients, help=clients_help)
    return parser


def quick_defaults(parser: argparse.ArgumentParser, quick_help: str, **quick: object) -> None:
    """Add --quick: a smoke run with these defaults (options given still win); QUICK=1 (`make bench
    QUICK=1` passes --quick too) does the same."""
    parser.add_argument("--quick", action="store_true", help=quick_help + " (also QUICK=1)")
    if parser.parse_known_args()[0].quick or os.environ.get("QUICK"):
        parser.set_defaults(**quick)


def run_and_report(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Awaitable[dict]],
                   quick_help: str, quick_env: bool = False, **quick: object) -> None:
    """Add --quick (its overrides in `quick`; with `quick_env`, QUICK=1 too), run the benchmark and print its
    JSON report as the last stdout line (progress goes to stderr)."""
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    if args.quick or (quick_env and os.environ.get("QUICK")):
        vars(args).update(quick)
    ensure_server()
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False), flush=True)


async def floor_once(raw: asyncpg.Connection, i: int) -> float:
    script = f"CREATE SCHEMA floor_{i}; SELECT set_config('search_path', 'floor_{i}', true);\n{tenant_ddl()}"
    started = time.perf_counter()
    await raw.execute(script)  # simple query protocol: one implicit transaction, one round trip
    return (time.perf_counter() - started) * 1000


async def create_tenants(db: Database, raw: asyncpg.Connection, n: int,
                         pool: int = 0) -> tuple[list[float], list[float]]:
    """N creations; the floor runs interleaved with the last ones, so both see the same conditions."""
    timings, floor_ms = [], []
    for i in range(1, n + 1):
        if pool:
            await spares.refill(db.engine, pool)  # the worker's part, untimed
        started = time.perf_counter()
        async with db.session() as session:
            await do_create_tenant(session, f"Bench Company {i}")
        timings.append((time.perf_counter() - started) * 1000)
        if i > n - FLOOR_REPS:
            floor_ms.append(await floor_once(raw, i))
        if i % 200 == 0 or i == n:
            log(f"created {i}/{n} tenants, p50 of the last {LAST}: {pct(timings[-LAST:], 50)} ms")
    while len(floor_ms) < FLOOR_REPS:  # fewer tenants than floor repetitions
        floor_ms.append(await floor_once(raw, n + len(floor_ms) + 1))
    return timings, floor_ms


async def migrate_one_additive(db: Database, raw: asyncpg.Connection, n: int, processes: int = 2) -> dict:
    """Time `saas migrate`'s tenant step (processes sharded by tenant id) for one added column."""
    base = head("tenant")
    tmp = Path(tempfile.mkdtemp(prefix="kt_bench_mig_")) / "tenant"
    try:
        shutil.copytree(MIGRATIONS / "tenant", tmp)
        (tmp / "versions" / "bench_note.py").write_text(REVISION.format(down=base))
        assert head("tenant", str(tmp)) == "bench_note"
        log(f"migrating {n} tenants to bench_note ({processes} processes)")
        started = time.perf_counter()
        done = await migrate_tenants_parallel(db.engine, processes, location=str(tmp))
        seconds = time.perf_counter() - started
        return {"seconds": round(seconds, 2), "ms_per_tenant": round(seconds * 1000 / max(done, 1), 2),
                "tenants": done, "processes": processes, "tenants_inconsistent": await raw.fetchval(INCONSISTENT)}
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


async def run(n: int, pool: int = 0, migrate_bench: bool = True) -> dict:
    async with throwaway_database() as (db, raw_url):
        await migrate_shared(db.engine)
        raw = await asyncpg.connect(raw_url)
        try:
            timings, floor_ms = await create_tenants(db, raw, n, pool)
            schema = await raw.fetchval("SELECT schema_name FROM shared.tenants ORDER BY id DESC LIMIT 1")
            catalog = dict(await raw.fetchrow(CATALOG, schema))  # before the bench migration adds a column
            migrate = await migrate_one_additive(db, raw, n) if migrate_bench else None
        finally:
            await raw.close()
    create = {"p50": pct(timings, 50), "p95": pct(timings, 95), "p50_last_200": pct(timings[-LAST:], 50),
              "p95_last_200": pct(timings[-LAST:], 95), "max": round(max(timings), 2)}
    fl = {"p50": pct(floor_ms, 50), "p95": pct(floor_ms, 95), "repetitions": FLOOR_REPS}
    return {
        "benchmark": "tenants", "tenants": n, "spare_pool": pool, "create_ms": create, "floor_create_schema_ms": fl,
        "ratio_p50": round(create["p50"] / fl["p50"], 2), "ratio_p95": round(create["p95"] / fl["p95"], 2),
        # like for like: the floor ran interleaved with the last 200 creations
        "ratio_p50_last_200": round(create["p50_last_200"] / fl["p50"], 2),
        "ratio_p95_last_200": round(create["p95_last_200"] / fl["p95"], 2),
        "goal_p95_under_200ms": max(create["p95"], create["p95_last_200"]) < 200,
        "migrate_one_additive": migrate,
        "catalog_rows_per_tenant": {"schema": schema, **catalog, "total": sum(catalog.values())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=lambda v: max(1, int(v)), default=100 if os.environ.get("QUICK") else 2000,
                        help="how many tenants to create (default 2000; QUICK=1: 100)")
    parser.add_argument("--pool", type=int, default=3, help="spare schemas kept ready (0: create by DDL)")
    parser.add_argument("--no-migrate", action="store_true", help="skip the additive-migration measurement")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.tenants, args.pool, not args.no_migrate))), flush=True)


if __name__ == "__main__":
    main()
