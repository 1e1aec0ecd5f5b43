"""Benchmark: what users feel - requests per second and latency of the product's pages under load,
next to a bare Litestar + Jinja page of the same size, in the same venv and the same run.

Setup: a database `kt_pages_<N>` with one company of N clients and ~10 N operations (bench/analytics.py's
generators: realistic names, phones, a buy-till-you-die history), the kept-current metrics, one score
refresh (scores, dashboard snapshot), a member who logs in and an API token. The database is kept and
reused by the next run with the same N (`--reload` loads it again); drop it yourself when done.

Measured, each page for --seconds (default 15) with wrk (1 thread, --connections, default 16), after a
2-second warm-up: req/s, p50/p95/p99 in ms, non-2xx answers, and the ratio to the bare page's req/s.
* bare - a Litestar app rendering a Jinja template of 50 list items (the size of a client list page
  of 50 rows), one uvicorn worker: the ceiling of this stack on this machine.
* the product, `saas web --workers W` (default 1): client list, search by name (a frequent last
  name), search by phone (an existing client's number), filtered list (status at risk), a client's
  card, the dashboard, the campaign builder's live count (POST of the builder form), API list
  (limit 50), API card, API write of an operation (POST, a sale for one client).

wrk: Debian's package (`apt-get install wrk`); it is not the bottleneck (the bare page reaches
thousands of req/s with it). Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL,
else the embedded server. Redis: BENCH_REDIS_URL, else TEST_REDIS_URL, else redis://127.0.0.1:6379/0.
Usage: python bench/pages.py [--clients 1000000] [--workers 1] [--seconds 15] [--connections 16]
[--only page,page] [--reload]; QUICK=1: 20,000 clients, 5 s per page. Progress on stderr, a table,
then JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

os.environ["SAAS_ENV"] = "test"  # before any saas import: get_settings() is cached
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="kt_bench_data_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx

from bench.analytics import operation_chunks
from bench.clients import CLIENT_COLUMNS, OP_COLUMNS, SEED, Pools, client_rows
from bench.tenants import admin_url, log, quick_defaults, with_db
from saas.core import clock
from saas.core.config import normalise_database_url
from saas.core.db import Database
from saas.wiring import wire

wire()

PASSWORD = "bench pages password 1"  # noqa: S105 - the bench member of a throwaway database
EMAIL = "bench-pages@example.com"
BARE_APP = textwrap.dedent('''
    from jinja2 import Environment
    from litestar import Litestar, MediaType, get

    PAGE = Environment(autoescape=True).from_string("""<!doctype html><html><head><title>List</title></head><body>
    <h1>Clients</h1><table>{% for c in items %}<tr><td><a href="/c/{{ c.id }}">{{ c.last }} {{ c.first }}</a></td>
    <td>{{ c.phone }}</td><td>{{ c.revenue }}</td><td>{{ c.status }}</td></tr>{% endfor %}</table></body></html>""")
    ITEMS = [{"id": i, "last": "Иванов", "first": "Пётр", "phone": "+7 916 123-45-67", "revenue": "12 345,00 ₽",
              "status": "active"} for i in range(50)]


    @get("/", media_type=MediaType.HTML)
    async def page() -> str:
        return PAGE.render(items=ITEMS)


    app = Litestar([page])
''')
WRK_SCRIPT = """
wrk.method = "{method}"
{body}
{headers}
{request}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %.3f %.3f %.3f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the company -------------------------------------------------------------------------------


async def load(url: str, schema_url: str, n: int, per_client: float) -> None:
    """One company of n clients (see the docstring), scored, with a member."""
    from saas.accounts.models import Membership
    from saas.accounts.service import do_create_tenant, do_create_user
    from saas.admin.migrate import migrate_all
    from saas.analytics import scoring
    from saas.clients.operations import refresh_all_metrics

    db, rnd = Database(url), random.Random(SEED)
    raw = await asyncpg.connect(schema_url)
    try:
        await migrate_all(db.engine, echo=log)
        async with db.session() as s:
            tenant = await do_create_tenant(s, "Bench Pages")
            user = await do_create_user(s, EMAIL, "Bench User", PASSWORD, locale="ru")
            s.add(Membership(user_id=user.id, tenant_id=tenant.id, role="owner"))
            schema = tenant.schema_name
        started = time.perf_counter()
        rows = client_rows(n, Pools(rnd), rnd, schema)
        await raw.copy_records_to_table("clients", records=rows, columns=CLIENT_COLUMNS, schema_name=schema)
        await raw.execute(f"SELECT setval(pg_get_serial_sequence('{schema}.clients', 'id'), {n})")
        del rows
        for total, chunk in operation_chunks(n, per_client):
            await raw.copy_records_to_table("operations", records=chunk, columns=OP_COLUMNS, schema_name=schema)
            log(f"copied a chunk of {len(chunk)} of {total} operations")
        async with db.session(schema) as s:
            await refresh_all_metrics(s)
        await raw.execute(f"VACUUM (ANALYZE) {schema}.clients, {schema}.operations")
        async with db.session(schema) as s:
            method = (await scoring.refresh(s)).method
        await raw.execute(f"VACUUM (ANALYZE) {schema}.client_scores")
        await raw.execute("CREATE TABLE shared.bench_pages_loaded (clients int, method text)")
        await raw.execute("INSERT INTO shared.bench_pages_loaded VALUES ($1, $2)", n, method)
        log(f"loaded {n} clients in {time.perf_counter() - started:.0f} s (refresh: {method})")
    finally:
        await raw.close()
        await db.dispose()


async def migrate(url: str) -> None:
    """Bring a kept database to the code's head (a new index is built on the loaded rows)."""
    from saas.admin.migrate import migrate_all

    db = Database(url)
    try:
        await migrate_all(db.engine, echo=log)
    finally:
        await db.dispose()


async def ensure_database(n: int, per_client: float, reload: bool) -> str:
    admin = admin_url()
    name = f"kt_pages_{n}"
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and not reload:
            probe = await asyncpg.connect(with_db(admin, name))
            try:
                ready = await probe.fetchval("SELECT to_regclass('shared.bench_pages_loaded') IS NOT NULL")
            finally:
                await probe.close()
            if ready:
                log(f"reusing database {name}")
                await migrate(normalise_database_url(with_db(admin, name)))  # the schema the code expects
                return with_db(admin, name)
        if exists:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        log(f"created database {name}; loading {n} clients")
    finally:
        await conn.close()
    await load(normalise_database_url(with_db(admin, name)), with_db(admin, name), n, per_client)
    return with_db(admin, name)


async def facts(url: str) -> dict:
    """What the page list needs: slug, a client, a phone, a frequent last name."""
    conn = await asyncpg.connect(url)
    try:
        slug, schema = await conn.fetchrow("SELECT slug, schema_name FROM shared.tenants ORDER BY id LIMIT 1")
        client = await conn.fetchrow(f"SELECT id, phone FROM {schema}.clients "
                                     "WHERE phone IS NOT NULL ORDER BY id OFFSET 777 LIMIT 1")
        last_name = await conn.fetchval(f"SELECT last_name FROM {schema}.clients "
                                        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        return {"slug": slug, "schema": schema, "client": client["id"], "phone": client["phone"],
                "last_name": last_name, "clients": await conn.fetchval(f"SELECT max(id) FROM {schema}.clients")}
    finally:
        await conn.close()


# ---- servers and load ----------------------------------------------------------------------------


def start(cmd: list[str], env: dict[str, str], url: str, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited: {log_path.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{cmd} did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wrk(url: str, seconds: int, connections: int, method: str = "GET", body: str | None = None,
        headers: dict[str, str] | None = None, spread: tuple[str, int] | None = None) -> dict:
    """`spread`: (path with {id}, n): each request for a random client id in 1..n."""
    request = ""
    if spread is not None:
        head, tail = spread[0].split("{id}")
        request = (f"math.randomseed(os.time())\nrequest = function() return wrk.format(nil, "
                   f"{json.dumps(head)} .. math.random(1, {spread[1]}) .. {json.dumps(tail)}) end")
    lua = WRK_SCRIPT.format(
        method=method, body=f"wrk.body = {json.dumps(body)}" if body is not None else "", request=request,
        headers="\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items()))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    exe = shutil.which("wrk") or "/usr/bin/wrk"
    try:
        subprocess.run([exe, "-t1", f"-c{connections}", "-d2s", "--timeout", "10s", "-s", f.name, url],
                       capture_output=True, timeout=60)
        out = subprocess.run([exe, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", f.name, url],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(f.name)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk said: {out}")
    requests, duration_us, errors, non2xx = (int(match.group(i)) for i in range(1, 5))
    return {"rps": round(requests / (duration_us / 1e6), 1), "p50": float(match.group(5)),
            "p95": float(match.group(6)), "p99": float(match.group(7)), "errors": errors, "non_2xx": non2xx,
            "requests": requests}


def login(base: str) -> tuple[str, str]:
    """The cookie header of a logged-in member, and the CSRF token for forms."""
    with httpx.Client(base_url=base, headers={"Origin": base}, timeout=30) as c:
        c.get("/login")
        token = c.cookies.get("csrftoken")
        r = c.post("/login", data={"email": EMAIL, "password": PASSWORD, "_csrf_token": token})
        if r.status_code not in (302, 303):
            raise RuntimeError(f"login failed: {r.status_code} {r.text[:300]}")
        return "; ".join(f"{k}={v}" for k, v in c.cookies.items()), token or ""


def pages(f: dict, base: str, cookie: str, csrf: str, api_token: str) -> dict[str, dict]:
    t = f"/t/{f['slug']}"
    web = {"Cookie": cookie}
    api = {"Authorization": f"Bearer {api_token}"}
    builder = "&".join(f"{k}={quote(v)}" for k, v in (
        ("name", "bench"), ("channel", "sms"), ("groups", "1"), ("g0_status", "active"), ("g0_status", "at_risk"),
        ("ranking", "clv"), ("_csrf_token", csrf)))
    return {
        "client list": {"path": f"{t}/clients", "headers": web},
        "search by name": {"path": f"{t}/clients?q={quote(f['last_name'])}", "headers": web},
        "search by phone": {"path": f"{t}/clients?q={quote(f['phone'])}", "headers": web},
        "filtered list": {"path": f"{t}/clients?status=at_risk", "headers": web},
        "card": {"path": f"{t}/clients/{f['client']}", "headers": web},
        "dashboard": {"path": f"{t}/", "headers": web},
        "campaign builder count": {"path": f"{t}/campaigns/preview", "method": "POST", "body": builder,
                                   "headers": {**web, "Content-Type": "application/x-www-form-urlencoded",
                                               "Origin": base, "HX-Request": "true"}},
        "API list": {"path": "/api/v1/clients?limit=50", "headers": api},
        "API card": {"path": f"/api/v1/clients/{f['client']}", "headers": api},
        # each write for a random client (one client's writes queue on its row, as they should)
        "API write operation": {"path": f"/api/v1/clients/{f['client']}/operations", "method": "POST",
                                "spread": ("/api/v1/clients/{id}/operations", f["clients"]),
                                "body": json.dumps({"kind": "sale", "amount": "1500.00",
                                                    "occurred_on": clock.today().isoformat()}),
                                "headers": {**api, "Content-Type": "application/json"}},
    }


async def settle(url: str, limit: float = 120) -> None:
    """Wait until the web process's statements have finished: a slow page's queries outlive wrk's
    timeout (the campaign count's at a million clients) and would run under the next page's load."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + limit
        busy = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kartoteka' AND state = 'active'"
        for _ in range(int(limit / 0.2)):  # polled: the server tells no one when it is done
            if time.monotonic() > deadline or not await conn.fetchval(busy):
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def one_path(spec: dict) -> str:
    """The path of one request: a write (`spread`) goes to a random client, not to the card's, which
    would otherwise grow run by run and change what the card page measures."""
    if not spec.get("spread"):
        return spec["path"]
    head, tail = spec["spread"][0].split("{id}")
    return head + str(random.randint(1, spec["spread"][1])) + tail


def check(base: str, spec: dict) -> int:
    """One request before the load: a page that answers an error would measure the error page."""
    r = httpx.request(spec.get("method", "GET"), base + one_path(spec), content=spec.get("body"),
                      headers=spec["headers"], timeout=120)
    if r.status_code >= 400:
        raise RuntimeError(f"{spec['path']}: {r.status_code} {r.text[:300]}")
    return r.status_code


def run(args: argparse.Namespace) -> dict:
    url = asyncio.run(ensure_database(args.clients, args.ops_per_client, args.reload))
    f = asyncio.run(facts(url))
    tmp = Path(tempfile.mkdtemp(prefix="kt_pages_"))
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SAAS_ENV": "development",
           "REDIS_PREFIX": f"kt_pages_{secrets.token_hex(3)}", "DATA_DIR": str(tmp)}
    results: dict[str, dict] = {}
    (tmp / "bare.py").write_text(BARE_APP)
    port = free_port()
    bare = start([sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port), "--log-level", "warning",
                  "--no-access-log", "--app-dir", str(tmp)], env, f"http://127.0.0.1:{port}/", tmp / "bare.log")
    try:
        log("bare page")
        results["bare page"] = wrk(f"http://127.0.0.1:{port}/", args.seconds, args.connections)
    finally:
        stop(bare)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token = subprocess.run([sys.executable, "-m", "saas.cli", "tokens", "create", "--tenant", f["slug"], "--role",
                            "owner", "--name", f"bench-{secrets.token_hex(2)}"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    web = start([sys.executable, "-m", "saas.cli", "web", "--workers", str(args.workers)],
                {**env, "PORT": str(port), "BASE_URL": base}, base + "/healthz", tmp / "web.log")
    try:
        cookie, csrf = login(base)
        for name, spec in pages(f, base, cookie, csrf, token).items():
            if args.only and name not in args.only:
                continue
            check(base, spec)
            log(name)
            results[name] = wrk(base + spec["path"], args.seconds, args.connections, spec.get("method", "GET"),
                                spec.get("body"), spec["headers"], spec.get("spread"))
            asyncio.run(settle(url))
    finally:
        stop(web)
    bare_rps = results["bare page"]["rps"]
    for r in results.values():
        r["ratio"] = round(r["rps"] / bare_rps, 4)
    return {"benchmark": "pages", "clients": args.clients, "workers": args.workers, "connections": args.connections,
            "seconds": args.seconds, "cores": os.cpu_count(), "pages": results}


def table(out: dict) -> str:
    lines = [(f"{out['clients']:,} clients, saas web --workers {out['workers']}, wrk 1 thread, "
              f"{out['connections']} connections, {out['seconds']} s per page"),
             "| page | req/s | p50 ms | p95 ms | p99 ms | errors (non-2xx, timeouts) | ratio to bare |",
             "|---|---|---|---|---|---|---|"]
    for name, r in out["pages"].items():
        lines.append(f"| {name} | {r['rps']:,} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
                     f"{r['non_2xx'] + r['errors']} | {r['ratio']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--ops-per-client", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", type=lambda v: [p.strip() for p in v.split(",") if p.strip()], default=None)
    parser.add_argument("--reload", action="store_true", help="load the company again even if a database exists")
    quick_defaults(parser, "a smoke run: 20,000 clients, 5 s per page", clients=20_000, seconds=5)
    args = parser.parse_args()
    out = run(args)
    print(table(out), flush=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
