"""Benchmark: the platform console's tenant list at N companies (default 10,000).

The list reads only the registry (`shared.tenants`, the page's memberships, and the cached usage
figures), never the tenant schemas, so the companies here are registry rows with two members each
and cached figures, not real schemas (bench/tenants.py measures schema creation). For each sort order,
plain, searched and filtered by status, it times the first page and a deep page (after 20 pages of
keyset), through `saas.admin.service.list_tenants` exactly as the console calls it.

Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL, else the embedded server.
A throwaway database kt_bench_<random> is created and dropped WITH (FORCE) at the end.
Usage: python bench/admin_list.py [--tenants 10000] [--repeat 30]. JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tenants import admin_url, log, pct, with_db  # also prepares the environment

import asyncpg

from saas.admin.service import list_tenants
from saas.core.config import normalise_database_url
from saas.core.db import Database
from saas.admin.migrate import migrate_shared

FILL = """
INSERT INTO shared.tenants (slug, name, schema_name, schema_version, status, plan, created_at, last_activity_at,
                            stats, stats_at)
SELECT 'co-' || g, 'Company ' || md5(g::text), 't_9' || lpad(g::text, 8, '0'), 'head',
       CASE WHEN g % 40 = 0 THEN 'suspended' WHEN g % 97 = 0 THEN 'deleted' ELSE 'active' END,
       CASE WHEN g % 5 = 0 THEN 'standard' ELSE 'free' END,
       now() - g * interval '7 minutes',
       CASE WHEN g % 4 = 0 THEN NULL ELSE now() - (g % 5000) * interval '1 minute' END,
       jsonb_build_object('clients', g % 3000, 'operations', g % 30000, 'storage_bytes', 500000 + g), now()
FROM generate_series(1, $1) g;
INSERT INTO shared.users (email, name, password_hash)
SELECT 'u' || g || '@bench.example', 'User ' || g, 'x' FROM generate_series(1, $1 * 2) g;
INSERT INTO shared.memberships (user_id, tenant_id, role)
SELECT u.id, t.id, CASE WHEN u.id % 2 = 0 THEN 'owner' ELSE 'marketer' END
FROM shared.users u JOIN shared.tenants t ON t.id = (u.id + 1) / 2;
ANALYZE shared.tenants; ANALYZE shared.memberships;
"""


async def timed(db: Database, repeat: int, **kwargs) -> dict:
    first, deep = [], []
    async with db.session() as s:
        await list_tenants(s, **kwargs)  # warm-up: plans and caches, as on a running server
        for _ in range(repeat):
            started = time.perf_counter()
            page = await list_tenants(s, **kwargs)
            first.append((time.perf_counter() - started) * 1000)
        cursor = page.next_cursor
        for _ in range(20):
            if not cursor:
                break
            cursor = (await list_tenants(s, **kwargs, after=cursor)).next_cursor
        for _ in range(repeat if cursor else 0):
            started = time.perf_counter()
            await list_tenants(s, **kwargs, after=cursor)
            deep.append((time.perf_counter() - started) * 1000)
    out = {"first_p50": pct(first, 50), "first_p95": pct(first, 95), "rows": len(page.rows), "total": page.total}
    if deep:
        out.update(deep_p50=pct(deep, 50), deep_p95=pct(deep, 95))
    return out


async def run(admin: str, n: int, repeat: int) -> dict:
    name = f"kt_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(normalise_database_url(with_db(admin, name)))
    results = {}
    try:
        await migrate_shared(db.engine)
        raw = await asyncpg.connect(with_db(admin, name))
        started = time.perf_counter()
        for statement in FILL.strip().split(";\n"):
            if statement.strip():
                await raw.execute(statement, n) if "$1" in statement else await raw.execute(statement)
        await raw.close()
        log(f"{n} companies in {time.perf_counter() - started:.1f}s")
        for sort in ("created", "activity", "name"):
            for label, kwargs in (("all", {}), ("search", {"q": "ab"}), ("suspended", {"status": "suspended"})):
                results[f"{sort}/{label}"] = await timed(db, repeat, sort=sort, **kwargs)
                log(f"{sort}/{label}: {results[f'{sort}/{label}']}")
    finally:
        await db.dispose()
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    worst = max(max(r["first_p95"], r.get("deep_p95", 0)) for r in results.values())
    return {"benchmark": "admin_list", "tenants": n, "ms": results, "worst_p95_ms": worst,
            "goal_p95_under_100ms": worst < 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    admin = admin_url()  # may start the embedded server, which runs its own event loop
    print(json.dumps(asyncio.run(run(admin, args.tenants, args.repeat))), flush=True)


if __name__ == "__main__":
    main()
