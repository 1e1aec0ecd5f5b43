"""Benchmark: filtering the client list on a custom field against a built-in indexed column.

Custom field values live in one JSONB column (clients.custom, GIN jsonb_path_ops index) so every
tenant schema keeps the same shape; the question is what that costs a list filter. Setup
(bench/analytics.py's `bench_tenant`, timed under "setup_seconds"): N clients and ~10 N operations
by COPY; every client has a "car_model" choice value, one of 20 options (~5% each), and a
custom_fields row defines the field (type 'choice', the options as JSON). The built-in column of
similar selectivity is the "vip" tag (~4.9% of clients; tags has a GIN index; the product filters
with `tags @> ARRAY[tag]`).

Measured, the two interleaved in the same run, each call in its own `Database.session(schema)`
(one transaction: bind, definitions when a custom filter is present, page query, overdue and
scores queries, commit), --repeat times after 3 warm-ups:
* list - `list_clients(session, parse_filter({"cf_car_model": "BMW"}))` against
  `list_clients(session, parse_filter({"tag": "vip"}))`: page 1 in the default sort (name).
* page2 - the same after page 1's next_cursor (keyset).
* count - `count_clients` for both (the list page shows the capped match count beside the rows).
The built-in filter is the floor: the goal is custom p95 within 2x of it. "plan" is the top of
EXPLAIN ANALYZE for each page-1 query as the product sends it; "rows_ok" checks every row returned
really has the value.

Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL, else the embedded server.
Usage: python bench/custom_fields.py [--clients 1000000] [--repeat 40] [--quick].
Progress on stderr, JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlalchemy import event, text

from bench.analytics import bench_tenant
from bench.clients import compare, ms_since
from bench.tenants import clients_parser, host_load, log, positive, run_and_report
from saas.clients.queries import count_clients, list_clients, parse_filter
from saas.wiring import wire

wire()

WARMUP = 3
CARS = ["BMW", "Audi", "Mercedes-Benz", "Volkswagen", "Toyota", "Lexus", "Kia", "Hyundai", "Lada", "Renault",
        "Skoda", "Nissan", "Mazda", "Ford", "Chery", "Haval", "Geely", "Mitsubishi", "Volvo", "Honda"]
CASES = {  # kind: (custom-field params, built-in column params)
    "list": ({"cf_car_model": "BMW"}, {"tag": "vip"}),
    "page2": ({"cf_car_model": "BMW"}, {"tag": "vip"}),
    "count": ({"cf_car_model": "BMW"}, {"tag": "vip"}),
}


def car(rnd, _client_id: int) -> tuple:
    return (json.dumps({"car_model": rnd.choice(CARS)}),)


class LastPageQuery:
    """Keeps the last page query (SELECT clients... LIMIT) the product sent, for EXPLAIN."""

    def __init__(self, engine) -> None:
        self.statement, self.params = None, None
        event.listen(engine.sync_engine, "before_cursor_execute", self.before)

    def before(self, conn, cursor, statement, params, *args) -> None:
        if statement.lstrip().startswith("SELECT clients.") and "LIMIT" in statement:
            self.statement, self.params = statement, params


async def plan(raw, schema: str, last: LastPageQuery) -> list[str]:
    async with raw.transaction():
        await raw.execute(f"SET LOCAL search_path TO {schema}")
        rows = await raw.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + last.statement, *last.params)
    lines = [r[0].strip() for r in rows]
    return [x for x in lines if not x.startswith(("Buffers", "Planning", "Index Searches"))][:6]


async def call(db, schema: str, kind: str, params: dict) -> tuple[float, list, str | None]:
    started = time.perf_counter()
    async with db.session(schema) as s:
        if kind == "count":
            n, _capped = await count_clients(s, parse_filter(params))
            return ms_since(started), [n], None
        page = await list_clients(s, parse_filter(params))
    return ms_since(started), page.rows, page.next_cursor


def rows_ok(rows: list, params: dict) -> bool:
    if "tag" in params:
        return all(params["tag"] in (c.tags or []) for c in rows)
    return all((c.custom or {}).get("car_model") == params["cf_car_model"] for c in rows)


async def measure(db, raw, schema: str, repeat: int) -> dict:
    last, out = LastPageQuery(db.engine), {}
    for kind, pair in CASES.items():
        params = [dict(p) for p in pair]
        if kind == "page2":
            for p in params:
                p["after"] = (await call(db, schema, "list", p))[2]
        timings, ok, plans, counts = ([], []), True, [], [None, None]
        for i in range(WARMUP + repeat):
            for side, p in enumerate(params):
                ms, rows, _cursor = await call(db, schema, kind, p)
                if i >= WARMUP:
                    timings[side].append(ms)
                if kind == "count":
                    counts[side] = rows[0]
                else:
                    ok = ok and len(rows) > 0 and rows_ok(rows, p)
                if kind == "list" and i == 0:
                    plans.append(await plan(raw, schema, last))
        both = compare(timings[0], timings[1])  # the built-in column is the floor
        out[kind] = {k.replace("floor_", "builtin_") if "floor" in k else k if "ratio" in k else f"custom_{k}": v
                     for k, v in both.items()}
        out[kind] |= {"counts": counts} if kind == "count" else {"rows_ok": ok}
        if plans:
            out[kind]["plan"] = {"custom": plans[0], "builtin": plans[1]}
        out[kind]["goal_within_2x"] = out[kind]["ratio_p95"] <= 2  # custom p95 / built-in p95
        log(f"{kind}: {out[kind]}")
    return out


async def run(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()
    async with bench_tenant(args.clients, args.ops_per_client, ("custom",), car) as (db, raw, schema, _url, setup):
        async with db.session(schema) as s:
            await s.execute(text("INSERT INTO custom_fields (key, label_ru, label_en, type, options, in_list) "
                                 "VALUES ('car_model', 'Марка автомобиля', 'Car model', 'choice', "
                                 "CAST(:o AS jsonb), true)"), {"o": json.dumps(CARS)})
            shares = dict((await s.execute(text(
                "SELECT 'custom', avg((custom @> '{\"car_model\": \"BMW\"}')::int) FROM clients UNION ALL "
                "SELECT 'builtin', avg((tags @> ARRAY['vip'])::int) FROM clients"))).all())
        log(f"selectivity: {shares}")
        results = await measure(db, raw, schema, args.repeat)
    return {"benchmark": "custom_fields", "clients": args.clients, "setup_seconds": setup,
            "selectivity": {k: round(float(v), 4) for k, v in shares.items()},
            "custom": CASES["list"][0], "builtin": CASES["list"][1], **results,
            "goal_within_2x": results["list"]["goal_within_2x"],
            "host": host_load(load_start)}


def main() -> None:
    parser = clients_parser(__doc__, 1_000_000, "clients in the tenant (default 1M)")
    parser.add_argument("--ops-per-client", type=float, default=10.0, help="operations per client on average")
    parser.add_argument("--repeat", type=positive, default=40, help="timed calls per query kind and side")
    run_and_report(parser, run, "smoke run: 20,000 clients", clients=20_000)


if __name__ == "__main__":
    main()
