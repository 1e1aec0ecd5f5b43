"""Benchmark: the client list, search, card and API pages of one company, beside a bare page.

Setup (bench/analytics.py's `bench_tenant`, timed under "setup_seconds"): N clients (default 100,000)
and ~10 N operations by COPY, one score refresh (so every row shows its scores, as in a used company);
a user (owner) and an API token of that company.

Measured in one process, in the same run, each page under the same load: the product's ASGI app
(`saas.app.create_app`, its lifespan run, the real database and Redis) and, as the floor, a bare
Litestar + Jinja page listing 50 items (a table of name, phone, e-mail, date, amount; no database,
no formatting library), both driven through httpx.AsyncClient over the in-process ASGI transport by
--concurrency tasks for --seconds each. The client's own cost is in both, so the ratio understates
the gap a bit; `bench/pages.py` measures over real HTTP with wrk.
Per page: req/s, p50/p95/p99 in ms, errors (any status other than 200), and `ratio` = req/s of the
page / req/s of the bare page (the issue's figure; goal ≥ 0.06 at 1M clients). On a shared, busy
machine req/s swings with the neighbours' load, so each page also gets `cpu_ms_per_request` (this
process's CPU time over the run / requests: the web side's own work, the client's included, the
database's not) and `cpu_ratio` = the bare page's CPU per request / the page's. Pages:
* list - `/t/{slug}/clients` (page 1, default sort, the count beside it);
* search - `?q=<the most common last name>`;
* card - `/t/{slug}/clients/{id}`, ids drawn from 200 random clients with operations;
* api_list - `/api/v1/clients?limit=50` (Bearer token); api_card - `/api/v1/clients/{id}`.
`formatting` is a micro-benchmark of the template filters: 10,000 cells (money, percent, date,
number; half RU, half EN) through saas.core.i18n, beside the same through Babel's own functions.

Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL, else the embedded server; Redis:
REDIS_URL, else TEST_REDIS_URL, else redis://127.0.0.1:6379/0 (keys under a random prefix).
BENCH_KEEP=1 keeps the loaded database (its name is logged); BENCH_REUSE=<name> measures on it again.
Usage: python bench/lists.py [--clients 100000] [--seconds 8] [--concurrency 16] [--quick].
Progress on stderr, JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.analytics import bench_tenant  # also prepares the environment (SAAS_ENV=test)
from bench.tenants import clients_parser, host_load, log, pct, positive, run_and_report

os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0")
os.environ.setdefault("REDIS_PREFIX", f"ktbench{secrets.token_hex(3)}")
os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))

import httpx
from litestar import Litestar, get
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
BASE = "http://bench.local"
BARE_TEMPLATE = """<!doctype html><html><head><title>Clients</title></head><body><h1>Clients</h1>
<table><thead><tr><th>Client</th><th>Phone</th><th>Email</th><th>Last purchase</th><th>Revenue</th></tr></thead>
<tbody>{% for c in items %}<tr><td><a href="/clients/{{ c.id }}">{{ c.name }}</a></td><td>{{ c.phone }}</td>
<td>{{ c.email }}</td><td>{{ c.last }}</td><td>{{ c.revenue }}</td></tr>{% endfor %}</tbody></table></body></html>"""


def bare_app():
    """The floor: Litestar + Jinja rendering 50 items from memory, nothing else."""
    folder = Path(tempfile.mkdtemp(prefix="kt_bare_"))
    (folder / "list.html").write_text(BARE_TEMPLATE, encoding="utf-8")
    items = [{"id": i, "name": f"Иванов Иван Иванович {i}", "phone": f"+7916{i:07d}", "email": f"u{i}@example.com",
              "last": (date(2026, 1, 1) - timedelta(days=i)).isoformat(), "revenue": f"{i * 1234.5:.2f}"}
             for i in range(50)]

    @get("/bare")
    async def page() -> Template:
        return Template(template_name="list.html", context={"items": items})

    return Litestar([page], template_config=TemplateConfig(directory=folder, engine=JinjaTemplateEngine))


async def drive(client: httpx.AsyncClient, paths, seconds: float, concurrency: int, headers=None) -> dict:
    """`concurrency` tasks request paths() back to back for `seconds`; latencies of all answers."""
    times: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            r = await client.get(paths(), headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200:
                errors += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"rps": round(len(times) / elapsed, 1), "p50_ms": pct(times, 50), "p95_ms": pct(times, 95),
            "p99_ms": pct(times, 99), "requests": len(times), "errors": errors,
            "cpu_ms_per_request": round(cpu * 1000 / max(len(times), 1), 2)}


async def owner_and_token(db, schema: str) -> tuple[str, str, str, str]:
    """A fresh owner (email, password) and API token for the loaded company; and its slug."""
    from sqlalchemy import select

    from saas.accounts.models import Membership
    from saas.core.models import Tenant
    from saas.accounts.service import do_create_token, do_create_user

    email, password = f"bench-{secrets.token_hex(4)}@example.com", "correct horse battery 1"
    async with db.session() as s:
        tenant = await s.scalar(select(Tenant).where(Tenant.schema_name == schema))
        user = await do_create_user(s, email, "Bench Owner", password, locale="ru")
        s.add(Membership(user_id=user.id, tenant_id=tenant.id, role="owner"))
        _token, secret = await do_create_token(s, tenant, "admin", f"bench {secrets.token_hex(3)}")
        slug = tenant.slug
    return email, password, secret, slug


def formatting_micro(cells: int = 10_000) -> dict:
    """Template filters over `cells` values: saas.core.i18n against Babel's own calls per cell."""
    from babel.dates import format_date
    from babel.numbers import format_currency, format_decimal, format_percent

    from saas.core import i18n

    rnd = random.Random(7)
    values = [(Decimal(rnd.randint(-10**8, 10**9)).scaleb(-2), rnd.random(),
               date(2020, 1, 1) + timedelta(rnd.randint(0, 2000))) for _ in range(cells // 4)]

    def ours() -> None:
        for i, (money, share, day) in enumerate(values):
            i18n.set_locale("ru" if i % 2 else "en")
            i18n.fmt_money(money)
            i18n.fmt_percent(share)
            i18n.fmt_date(day)
            i18n.fmt_number(money)

    def babel() -> None:
        for i, (money, share, day) in enumerate(values):
            loc = "ru" if i % 2 else "en"
            format_currency(money, "RUB", locale=loc)
            format_percent(share, format="#,##0%", locale=loc)
            format_date(day, format="medium", locale=loc)
            format_decimal(money, locale=loc)

    out = {}
    for name, fn in (("i18n", ours), ("babel_per_cell", babel)):
        fn()  # warm-up
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - started) * 1000)
        out[f"{name}_ms"] = round(min(runs), 1)
    out["cells"] = cells
    out["speedup"] = round(out["babel_per_cell_ms"] / out["i18n_ms"], 2)
    return out


async def measure(db, raw, schema: str, seconds: float, concurrency: int) -> dict:
    from saas.app import build_app
    from saas.core.config import get_settings
    from saas.core.web.security import SecurityHeaders

    email, password, secret, slug = await owner_and_token(db, schema)
    common = await raw.fetchval(f"SELECT last_name FROM {schema}.clients GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    ids = [r["id"] for r in await raw.fetch(
        f"SELECT id FROM {schema}.clients WHERE operations_count > 0 ORDER BY md5(id::text) LIMIT 200")]
    total = await raw.fetchval(f"SELECT count(*) FROM {schema}.clients")
    get_settings.cache_clear()
    settings = get_settings()
    app = build_app(settings)
    bare = bare_app()
    results: dict = {"clients": total, "search_term": common}
    async with app.lifespan(), bare.lifespan():
        product = httpx.AsyncClient(transport=httpx.ASGITransport(SecurityHeaders(app, hsts=False)), base_url=BASE,
                                    headers={"Origin": BASE, "Accept-Language": "ru"}, timeout=60)
        floor = httpx.AsyncClient(transport=httpx.ASGITransport(bare), base_url=BASE, timeout=60)
        await product.get("/login")
        r = await product.post("/login", data={"email": email, "password": password,
                                               "_csrf_token": product.cookies.get("csrftoken")})
        if r.status_code != 303:
            raise SystemExit(f"login failed: {r.status_code} {r.text[:300]}")
        api = {"Authorization": f"Bearer {secret}"}
        pages = {
            "list": (lambda: f"/t/{slug}/clients", None),
            "search": (lambda: f"/t/{slug}/clients?q={common}", None),
            "card": (lambda: f"/t/{slug}/clients/{random.choice(ids)}", None),
            "api_list": (lambda: "/api/v1/clients?limit=50", api),
            "api_card": (lambda: f"/api/v1/clients/{random.choice(ids)}", api),
        }
        for name, (paths, headers) in pages.items():  # warm-up: plans, caches, templates
            for _ in range(5):
                r = await product.get(paths(), headers=headers)
                if r.status_code != 200:
                    raise SystemExit(f"{name}: {r.status_code} {r.text[:300]}")
        for _ in range(50):
            await floor.get("/bare")
        bare_rounds = []
        for name, (paths, headers) in pages.items():
            floor_run = await drive(floor, lambda: "/bare", seconds / 2, concurrency)  # interleaved with the pages
            bare_rounds.append(floor_run["rps"])
            run = await drive(product, paths, seconds, concurrency, headers)
            run["ratio"] = round(run["rps"] / floor_run["rps"], 4)
            run["bare_rps"] = floor_run["rps"]
            run["cpu_ratio"] = round(floor_run["cpu_ms_per_request"] / run["cpu_ms_per_request"], 4)
            run["bare_cpu_ms_per_request"] = floor_run["cpu_ms_per_request"]
            results[name] = run
            log(f"{name}: {run}")
        results["bare_rps_median"] = sorted(bare_rounds)[len(bare_rounds) // 2]
        await product.aclose()
        await floor.aclose()
    return results


async def run(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()
    async with bench_tenant(args.clients, 10, scores=True) as (db, raw, schema, _url, setup):
        os.environ["DATABASE_URL"] = _url
        pages = await measure(db, raw, schema, args.seconds, args.concurrency)
    return {"benchmark": "lists", "clients": args.clients, "setup_seconds": setup, "concurrency": args.concurrency,
            "seconds_per_page": args.seconds, "pages": pages, "formatting": formatting_micro(),
            "host": host_load(load_start)}


def main() -> None:
    parser = clients_parser(__doc__, 100_000, "clients in the company (default 100k)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of load per page (default 8)")
    parser.add_argument("--concurrency", type=positive, default=16, help="concurrent requests (default 16)")
    run_and_report(parser, run, "smoke run: 5,000 clients, 2 s per page", quick_env=True, clients=5_000, seconds=2.0)


if __name__ == "__main__":
    main()
