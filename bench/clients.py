"""Benchmark: a company's card index at a million clients - list pages, import, adding an operation.

Setup (timed under "setup_seconds"): a throwaway database, the shared schema, one tenant through
`do_create_tenant`, N clients and M = N * ops-per-client operations loaded with COPY (asyncpg
`copy_records_to_table`, schema_name=the tenant), the kept-current metrics set by the product's
`refresh_all_metrics`, then VACUUM ANALYZE (that UPDATE leaves a dead version of every client, and
autovacuum would otherwise run in the middle of the measurements).
Data is Faker ru_RU, but Faker per row would take hours at 10M rows: Faker fills pools once (2,000
last/first/middle names per gender, 2,000 e-mail user names, 50 domains) and a seeded `random`
combines them. E-mails carry the row number (unique); phones are unique +79XXXXXXXXX; 5% of clients
have a passport whose blind index and mask are computed per client, the ciphertext being one of 20
real `crypto.encrypt` results (encryption is the slow part and lists never decrypt); tags: 10% "опт",
5% "vip", 0.1% "blacklist". Operations: a random client each, the last 3 years, 3% returns, 5% unpaid.

Measured, each product call beside its floor, interleaved, in the same run:
* list.<kind> - `list_clients(session, parse_filter(params))` in `Database.session(schema)` (one
  transaction: bind, page query, overdue query, commit), --repeat times after 3 warm-ups. Floor: the
  bare `SELECT * FROM clients WHERE ... ORDER BY lower(last_name), lower(first_name), id LIMIT 51`
  (text()) in the same kind of session; that it returns the same rows is checked ("same_rows").
  Kinds: search (q="Иван"), search_phone (q="+7916"), filter (revenue_min + last_op_from),
  filter_tag (tag on 0.1% of clients; the floor writes the GIN-indexable `tags @> ARRAY[tag]` where
  the product writes `tag = ANY(tags)`), page2 (default sort, after page 1's next_cursor).
* import - `do_upload` + `run_import` in one transaction on a fresh second tenant (what the worker
  does, minus RQ) for a cp1251 ';' CSV of --import-rows clients (ФИО;Телефон;Email;Дата рождения,
  phones in three spellings). Floor: COPY of the same file into a bare 4-column text table.
  normalise_seconds is the product's reading + per-row normalisation alone (`mapped_rows`, no DB).
  A second floor, copy_into_clients_table_seconds: COPY of the imported rows, already normalised,
  into another company's real clients table (its indexes, no parsing): the write cost alone.
* add_operation - `do_add_operation` on a random existing client, 200 times, each in its own
  transaction, timed from after the client is loaded to the end of the commit. Floor: a bare INSERT
  of the same row in its own transaction, timed the same way (after a first statement binds it).

Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL, else the embedded server.
A throwaway database kt_bench_<random> is created and dropped WITH (FORCE) at the end.
Usage: python bench/clients.py [--clients 1000000] [--ops-per-client 10] [--import-rows 1000000]
[--repeat 40] [--quick]. Progress on stderr, JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path

os.environ["SAAS_ENV"] = "test"  # before any saas import: get_settings() is cached
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="kt_bench_data_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from faker import Faker
from sqlalchemy import text

from bench.tenants import host_load, log, pct, throwaway_database
from saas.clients import crypto
from saas.clients.imports.rows import mapped_rows
from saas.clients.imports.service import do_upload, run_import
from saas.clients.models import Client
from saas.clients.operations import do_add_operation, refresh_all_metrics
from saas.clients.queries import decode_cursor, list_clients, parse_filter
from saas.core.db import Database
from saas.admin.migrate import migrate_shared
from saas.accounts.service import do_create_tenant
from saas.wiring import wire
from saas.core import clock

wire()

SEED, POOL, CHUNK, WARMUP, ADD_OPS = 20240601, 2000, 1_000_000, 3, 200
TODAY = clock.today()
CLIENT_COLUMNS = ["id", "last_name", "first_name", "middle_name", "birth_date", "phone", "email", "passport_enc",
                  "passport_key_id", "passport_bidx", "passport_mask", "tags"]
OP_COLUMNS = ["client_id", "kind", "occurred_on", "amount", "due_on", "paid_on"]
LIST_SQL = ("SELECT * FROM clients WHERE erased_at IS NULL AND archived_at IS NULL AND {} "
            "ORDER BY lower(last_name), lower(first_name), id LIMIT 51")
INSERT_OP = text("INSERT INTO operations (client_id, kind, occurred_on, amount) VALUES (:c, 'sale', :d, :a)")


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class Pools:
    """Faker output computed once; rows combine it with a seeded `random` (see the docstring)."""

    def __init__(self, rnd: random.Random) -> None:
        fake = Faker("ru_RU")
        fake.seed_instance(SEED)
        self.rnd = rnd
        self.names = {g: [[getattr(fake, f"{part}_name_{g}")() for _ in range(POOL)]
                          for part in ("last", "first", "middle")] for g in ("male", "female")}
        self.users = [fake.user_name() for _ in range(POOL)]
        self.domains = [fake.free_email_domain() for _ in range(50)]
        self.first_day, self.last_day = date(1950, 1, 1).toordinal(), date(2005, 12, 31).toordinal()

    def person(self) -> tuple[str, str, str]:
        return tuple(self.rnd.choice(part) for part in self.names[self.rnd.choice(("male", "female"))])

    def email(self, i: int) -> str:  # the row number after the last '.' keeps it unique
        return f"{self.rnd.choice(self.users)}.{i}@{self.rnd.choice(self.domains)}"

    def birth(self) -> date:
        return date.fromordinal(self.rnd.randint(self.first_day, self.last_day))


def client_rows(n: int, pools: Pools, rnd: random.Random, schema: str) -> list[tuple]:
    passport = lambda: (f"{rnd.randint(1000, 9999)}", f"{rnd.randint(0, 999_999):06d}")
    ciphers = [crypto.encrypt({"series": s, "number": no, "issued_by": "ГУ МВД России по г. Москве",
                               "issued_on": "2015-03-01", "division_code": "770-001"},
                              company=schema, client_id=k) for k, (s, no) in enumerate(
               passport() for _ in range(20))]
    rows = []
    for i, phone in enumerate(rnd.sample(range(10**9), n), start=1):
        enc = key_id = bidx = mask = None
        if rnd.random() < 0.05:
            series, number = passport()
            enc, key_id = rnd.choice(ciphers)
            bidx, mask = crypto.blind_index(series + number, company=schema), crypto.mask(series, number)
        r = rnd.random()
        tags = ["blacklist"] if r < 0.001 else ["vip"] if r < 0.05 else ["опт"] if r < 0.15 else []
        rows.append((i, *pools.person(), pools.birth(), f"+79{phone:09d}", pools.email(i), enc, key_id, bidx, mask,
                     tags))
    return rows


def operation_rows(m: int, n: int, rnd: random.Random):
    days = [TODAY - timedelta(days=d) for d in range(3 * 365)]
    for _ in range(m):
        day, r = rnd.choice(days), rnd.random()
        kind = "return" if r < 0.03 else "service" if r < 0.15 else "sale"
        unpaid = kind != "return" and rnd.random() < 0.05
        yield (rnd.randint(1, n), kind, day, Decimal(rnd.randint(50_000, 2_000_000)).scaleb(-2),
               day + timedelta(days=14) if unpaid else None, None if unpaid else day)


async def load(db: Database, raw: asyncpg.Connection, schema: str, n: int, m: int, rnd: random.Random,
               pools: Pools, setup: dict) -> None:
    started = time.perf_counter()
    rows = client_rows(n, pools, rnd, schema)
    setup["generate"] = time.perf_counter() - started
    log(f"generated {n} clients in {setup['generate']:.1f} s; COPY")
    started = time.perf_counter()
    await raw.copy_records_to_table("clients", records=rows, columns=CLIENT_COLUMNS, schema_name=schema)
    await raw.execute(f"SELECT setval(pg_get_serial_sequence('{schema}.clients', 'id'), {n})")
    setup["copy_clients"] = time.perf_counter() - started
    del rows
    ops, setup["copy_operations"] = operation_rows(m, n, rnd), 0.0
    for done in range(0, m, CHUNK):
        started = time.perf_counter()
        chunk = list(islice(ops, CHUNK))
        setup["generate"] += time.perf_counter() - started
        started = time.perf_counter()
        await raw.copy_records_to_table("operations", records=chunk, columns=OP_COLUMNS, schema_name=schema)
        setup["copy_operations"] += time.perf_counter() - started
        log(f"copied {done + len(chunk)}/{m} operations ({setup['copy_operations']:.0f} s of COPY)")
    started = time.perf_counter()
    async with db.session(schema) as s:
        await refresh_all_metrics(s)
    setup["refresh_all_metrics"] = time.perf_counter() - started
    log(f"refresh_all_metrics: {setup['refresh_all_metrics']:.1f} s; VACUUM ANALYZE")
    started = time.perf_counter()
    await raw.execute(f"VACUUM (ANALYZE) {schema}.clients, {schema}.operations")
    setup["vacuum_analyze"] = time.perf_counter() - started


def compare(product: list[float], floor: list[float]) -> dict:
    out = {"p50_ms": pct(product, 50), "p95_ms": pct(product, 95),
           "floor_p50_ms": pct(floor, 50), "floor_p95_ms": pct(floor, 95)}
    out["ratio_p50"] = round(out["p50_ms"] / out["floor_p50_ms"], 2)
    out["ratio_p95"] = round(out["p95_ms"] / out["floor_p95_ms"], 2)
    return out


async def list_once(db: Database, schema: str, params: dict) -> tuple[float, list[int]]:
    started = time.perf_counter()
    async with db.session(schema) as s:
        page = await list_clients(s, parse_filter(params))
    return ms_since(started), [c.id for c in page.rows]


async def floor_once(db: Database, schema: str, sql: str, binds: dict) -> tuple[float, list[int]]:
    started = time.perf_counter()
    async with db.session(schema) as s:
        rows = (await s.execute(text(sql), binds)).all()
    return ms_since(started), [r.id for r in rows[:50]]


async def measure_lists(db: Database, schema: str, repeat: int) -> dict:
    async with db.session(schema) as s:
        page = await list_clients(s, parse_filter({}))
    first, cursor = [c.id for c in page.rows], page.next_cursor
    a, b, c = decode_cursor("name", cursor)
    since = TODAY - timedelta(days=30)
    cases = {  # kind: (product params, floor condition, floor binds)
        "search": ({"q": "Иван"}, "search @@ to_tsquery('simple', :q)", {"q": "иван:*"}),
        "search_phone": ({"q": "+7916"}, "search @@ to_tsquery('simple', :q)", {"q": "7916:*"}),
        "filter": ({"revenue_min": "150000", "last_op_from": since.isoformat()},
                   "revenue_total >= :r AND last_operation_on >= :d", {"r": Decimal(150000), "d": since}),
        "filter_tag": ({"tag": "blacklist"}, "tags @> ARRAY[CAST(:t AS text)]", {"t": "blacklist"}),
        "page2": ({"after": cursor}, "(lower(last_name), lower(first_name), id) > (:a, :b, :c)",
                  {"a": a, "b": b, "c": c}),
    }
    out = {}
    for kind, (params, condition, binds) in cases.items():
        sql, product, floor, same = LIST_SQL.format(condition), [], [], True
        for i in range(WARMUP + repeat):
            p_ms, p_ids = await list_once(db, schema, params)
            f_ms, f_ids = await floor_once(db, schema, sql, binds)
            same = same and p_ids == f_ids
            if i >= WARMUP:
                product.append(p_ms)
                floor.append(f_ms)
        out[kind] = {**compare(product, floor), "rows": len(p_ids), "same_rows": same}
        if kind == "page2":
            out[kind]["disjoint_from_page1"] = not set(p_ids) & set(first)
        log(f"list {kind}: {out[kind]}")
    return out


def write_csv(path: Path, rows: int, pools: Pools, rnd: random.Random) -> None:
    with path.open("w", encoding="cp1251", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["ФИО", "Телефон", "Email", "Дата рождения"])
        for i, phone in enumerate(rnd.sample(range(10**9), rows), start=1):
            d = f"{phone:09d}"
            spelled = rnd.choice((f"+79{d}", f"8 (9{d[:2]}) {d[2:5]}-{d[5:7]}-{d[7:]}", f"79{d}"))
            writer.writerow([" ".join(pools.person()), spelled, pools.email(i), pools.birth().strftime("%d.%m.%Y")])


async def measure_import(db: Database, raw: asyncpg.Connection, rows: int, pools: Pools, rnd: random.Random) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="kt_bench_csv_"))
    try:
        path = tmp / "clients.csv"
        write_csv(path, rows, pools, rnd)
        data = path.read_bytes()
        log(f"import file: {rows} rows, {len(data) / 2**20:.1f} MB (cp1251); COPY floor")
        await raw.execute("CREATE TABLE public.import_floor (full_name text, phone text, email text, birth_date text)")
        started = time.perf_counter()
        await raw.copy_to_table("import_floor", source=path, schema_name="public", format="csv", delimiter=";",
                                header=True, encoding="WIN1251")
        copy_seconds = time.perf_counter() - started
        async with db.session() as s:
            tenant = await do_create_tenant(s, "Bench Import")
            tenant.plan, schema = "business", tenant.schema_name  # no client limit

        marks: dict[str, float] = {}  # when each step began: reading, checking (set-based import), writing

        async def progress(done: int, total: int, phase: str | None = None) -> None:
            marks.setdefault(phase or "writing", time.perf_counter())
            if done % max(total // 10, 1000) < 1000 or done == total:
                log(f"import {phase or ''} {done}/{total} rows, {time.perf_counter() - started:.0f} s")

        log(f"COPY {copy_seconds:.2f} s; product import into {schema}")
        started = time.perf_counter()
        async with db.session(schema) as s:
            imp = await do_upload(s, data=data, filename="clients.csv", kind="clients", actor="bench")
            upload_seconds = time.perf_counter() - started
            counts = await run_import(s, imp, progress=progress)
        seconds = time.perf_counter() - started
        ends = [*list(marks.values())[1:], started + seconds]
        steps = {name: round(end - begin, 2) for (name, begin), end in zip(marks.items(), ends, strict=True)}
        normalise_started = time.perf_counter()
        normalise_rejected = sum(1 for result, _raw in mapped_rows(imp) if result.errors)
        normalise_seconds = time.perf_counter() - normalise_started
        table_copy_seconds = await copy_into_real_table(db, raw, schema)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows, "seconds": round(seconds, 2), "copy_seconds": round(copy_seconds, 2),
            "ratio": round(seconds / copy_seconds, 1), "steps_seconds": steps, "rows_per_second": round(rows / seconds),
            "copy_rows_per_second": round(rows / copy_seconds), "upload_seconds": round(upload_seconds, 2),
            "normalise_seconds": round(normalise_seconds, 2), "normalise_rejected": normalise_rejected,
            "copy_into_clients_table_seconds": round(table_copy_seconds, 2),
            "ratio_to_copy_into_clients_table": round(seconds / table_copy_seconds, 1),
            "file_mb": round(len(data) / 2**20, 1), "counts": counts,
            "goal_within_3x_copy": seconds <= 3 * copy_seconds}


async def copy_into_real_table(db: Database, raw: asyncpg.Connection, schema: str) -> float:
    """A second floor: COPY of the rows the import produced, already normalised, into the clients
    table of another fresh company: what the real table's indexes (full-text, names, phone, e-mail,
    tags…) cost with no parsing, matching or checking at all."""
    columns = ["last_name", "first_name", "middle_name", "birth_date", "phone", "email", "consent", "tags",
               "product_group_ids", "direction_ids", "custom", "import_id"]
    records = await raw.fetch(f'SELECT {", ".join(columns)} FROM "{schema}".clients ORDER BY id')
    async with db.session() as s:
        floor_schema = (await do_create_tenant(s, "Bench Import Floor")).schema_name
    started = time.perf_counter()
    await raw.copy_records_to_table("clients", records=records, columns=columns, schema_name=floor_schema)
    return time.perf_counter() - started


async def measure_add_operation(db: Database, schema: str, n: int, rnd: random.Random) -> dict:
    product, floor = [], []
    for i in range(WARMUP + ADD_OPS):
        cid, amount = rnd.randint(1, n), Decimal(rnd.randint(50_000, 2_000_000)).scaleb(-2)
        async with db.session(schema) as s:
            client = await s.get(Client, cid)
            started = time.perf_counter()
            await do_add_operation(s, client, {"kind": "sale", "occurred_on": TODAY.isoformat(),
                                               "amount": str(amount)}, "bench")
        p_ms = ms_since(started)  # the commit happens when the session block ends
        async with db.session(schema) as s:
            await s.execute(text("SELECT 1"))
            started = time.perf_counter()
            await s.execute(INSERT_OP, {"c": cid, "d": TODAY, "a": amount})
        f_ms = ms_since(started)
        if i >= WARMUP:
            product.append(p_ms)
            floor.append(f_ms)
    out = compare(product, floor)
    return {**out, "calls": ADD_OPS, "goal_p95_under_20ms": out["p95_ms"] < 20}


async def run(args: argparse.Namespace) -> dict:
    n, m = args.clients, args.clients * args.ops_per_client
    rnd, setup, load_start = random.Random(SEED), {}, os.getloadavg()
    async with throwaway_database() as (db, raw_url):
        started = time.perf_counter()
        await migrate_shared(db.engine)
        async with db.session() as s:
            schema = (await do_create_tenant(s, "Bench Clients")).schema_name
        setup["migrate_and_create_tenant"] = time.perf_counter() - started
        raw = await asyncpg.connect(raw_url)
        try:
            pools = Pools(rnd)
            await load(db, raw, schema, n, m, rnd, pools, setup)
            log(f"setup: { {k: round(v, 1) for k, v in setup.items()} }")
            lists = await measure_lists(db, schema, args.repeat)
            add_operation = await measure_add_operation(db, schema, n, rnd)
            log(f"add_operation: {add_operation}")
            imported = await measure_import(db, raw, args.import_rows, pools, rnd)
            log(f"import: {imported}")
        finally:
            await raw.close()
    return {"benchmark": "clients", "clients": n, "operations": m, "import_rows": args.import_rows,
            "setup_seconds": {k: round(v, 2) for k, v in setup.items()}, "list": lists, "import": imported,
            "add_operation": add_operation,  # the host is shared: its load says how noisy the numbers are
            "host": host_load(load_start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    positive = lambda v: max(1, int(v))
    parser.add_argument("--clients", type=positive, default=1_000_000, help="clients in the tenant (default 1M)")
    parser.add_argument("--ops-per-client", type=positive, default=10, help="operations per client on average")
    parser.add_argument("--import-rows", type=positive, default=None, help="rows of the import file (default 1M)")
    parser.add_argument("--repeat", type=positive, default=40, help="timed calls per list query kind (default 40)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 clients and import rows")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.import_rows = 20_000, args.import_rows or 20_000
    args.import_rows = args.import_rows or 1_000_000
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
