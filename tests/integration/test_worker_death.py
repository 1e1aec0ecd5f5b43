"""A worker killed with SIGKILL (its whole process tree) in the middle of a list build, an import and
a score refresh. Each job is caught mid-transaction: the test holds a lock the job needs next, waits
until the job has written inside its open transaction and is blocked on that lock, then kills it.
Nothing half-written may show, and a surviving worker's retry must finish the job, once.

The killed worker runs in burst mode: RQ's scheduler (which re-enqueues a retry after its delay)
then lives in the surviving worker, as it would after a few minutes in production (its lock
expires 60 s after its holder dies; soak/test_worker_death.py kills the scheduler's holder too).
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

import testkit
from saas.core.db import Database
from testkit import Browser, cli
from tests.integration.processes import Stack, kill_tree
from tests.integration.test_scoring import schema_of, seed

CLIENTS = 300


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    url = s.web()
    yield s, url
    s.stop()


@pytest.fixture(autouse=True)
def no_workers_left(stack):
    """Each test starts with no worker on its queue, so the victim is the one that takes the job."""
    yield
    stack[0].stop_workers()


@dataclass
class Tenant:
    browser: Browser
    api: httpx.Client
    slug: str
    schema: str
    ids: list[int]


@pytest.fixture
def tenant(stack, db_url):
    _s, url = stack
    b = Browser(url)
    slug = b.signup("Killed Worker Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "k").stdout.strip()
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                       timeout=30)

    async def prepare() -> tuple[str, list[int]]:
        db = Database(db_url, pool_size=2)
        schema = await schema_of(db, slug)
        await seed(db, schema, CLIENTS, seed=11)
        async with db.session(schema) as s:
            from sqlalchemy import text

            ids = list(await s.scalars(text(
                "UPDATE clients SET phone = '+7916' || lpad(id::text, 7, '0') RETURNING id")))
        await db.dispose()
        return schema, sorted(ids)

    schema, ids = asyncio.run(prepare())
    yield Tenant(b, api, slug, schema, ids)
    api.close()
    b.close()


async def q(schema: str, query: str, *args):
    conn = await asyncpg.connect(testkit.DATABASE_URL)
    try:
        await conn.execute(f"SET search_path = {schema}")
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


class Held:
    """A transaction that holds a lock the job will need after it has started writing."""

    def __init__(self, schema: str, statement: str, *args) -> None:
        self.schema, self.statement, self.args = schema, statement, args

    async def __aenter__(self) -> Held:
        self.conn = await asyncpg.connect(testkit.DATABASE_URL)
        self.tx = self.conn.transaction()
        await self.tx.start()
        await self.conn.execute(f"SET LOCAL search_path = {self.schema}")
        await self.conn.execute(self.statement, *self.args)
        self.pid = self.conn.get_server_pid()
        return self

    async def wait_blocked_writer(self, timeout: float = 60, writers: int = 1) -> None:
        """Until a backend that has written (it has a transaction id) waits for our lock."""
        deadline = time.monotonic() + timeout
        while True:
            rows = await q("public", "SELECT count(*) FROM pg_stat_activity "
                                     "WHERE backend_xid IS NOT NULL AND $1 = ANY(pg_blocking_pids(pid))", self.pid)
            if rows[0][0] >= writers:
                return
            assert time.monotonic() < deadline, "the job never reached the held lock"
            await asyncio.sleep(0.2)

    async def __aexit__(self, *exc) -> None:
        await self.tx.rollback()
        await self.conn.close()


async def recover(stack: Stack, done, what: str, timeout: float = 90) -> float:
    """Start a surviving worker; seconds until `done()` (sync or async) holds."""
    started = time.monotonic()
    stack.worker()
    while True:
        value = done()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_killed_list_build_keeps_the_previous_list_and_the_retry_ends_ready(stack, tenant, db_url) -> None:
    s, _url = stack
    api = tenant.api
    cid = api.post("/api/v1/campaigns", json={"name": "Kill me", "criteria": {}, "size": 50}).json()["id"]
    from saas.campaigns.models import Campaign
    from saas.campaigns.service import build

    db = Database(db_url, pool_size=1)
    async with db.session(tenant.schema) as session:  # the previous list, built in-process
        await build(session, await session.get(Campaign, cid))
    await db.dispose()

    def served() -> list[tuple[int, int]]:
        return [(m["rank"], m["client_id"]) for m in api.get(f"/api/v1/campaigns/{cid}/members").json()]

    before = served()
    assert [r for r, _c in before] == list(range(1, 51))

    # the build deletes the old members in its transaction, then waits to read client_scores
    async with Held(tenant.schema, "LOCK TABLE client_scores IN ACCESS EXCLUSIVE MODE") as held:
        assert api.post(f"/api/v1/campaigns/{cid}/build").status_code == 202
        victim = s.worker(burst=True, grace=3)
        await held.wait_blocked_writer()
        kill_tree(victim)
        assert served() == before  # the previous list is still served, whole
        assert api.get(f"/api/v1/campaigns/{cid}").json()["status"] == "building"

    def finished() -> dict | None:
        body = api.get(f"/api/v1/campaigns/{cid}").json()
        return body if body["status"] != "building" else None

    seconds = await recover(s, finished, "the campaign to leave 'building'")
    body = api.get(f"/api/v1/campaigns/{cid}").json()
    assert body["status"] == "ready", body
    assert served() == before  # same data, same list: rebuilt once, whole
    jobs = await q(tenant.schema, "SELECT status FROM jobs WHERE kind = 'campaign' AND object_id = $1", cid)
    assert [r[0] for r in jobs] == ["done"]
    print(f"list build recovered {seconds:.1f} s after the kill")


async def test_killed_import_leaves_nothing_and_the_retry_imports_every_row_once(stack, tenant) -> None:
    s, _url = stack
    api = tenant.api
    chosen = tenant.ids[:100]
    rows = [(chosen[i % 100], f"{(i % 28) + 1:02d}.03.2024", 100 + i) for i in range(300)]
    content = ("Телефон;Дата;Сумма;Тип\n" + "".join(
        f"+7916{cid:07d};{day};{amount};продажа\n" for cid, day, amount in rows)).encode()
    before = {r["id"]: (r["operations_count"], r["revenue_total"]) for r in await q(
        tenant.schema, "SELECT id, operations_count, revenue_total FROM clients WHERE id = ANY($1)", chosen)}

    # the import inserts the operations, then waits to update the metrics of this one client
    async with Held(tenant.schema, "SELECT id FROM clients WHERE id = $1 FOR UPDATE", chosen[-1]) as held:
        r = api.post("/api/v1/imports", files={"file": ("ops.csv", content)}, data={"kind": "operations"})
        assert r.status_code == 202, r.text
        imp = r.json()["id"]
        victim = s.worker(burst=True, grace=3)
        await held.wait_blocked_writer()
        kill_tree(victim)
        assert (await q(tenant.schema, "SELECT count(*) FROM operations WHERE import_id = $1", imp))[0][0] == 0
        assert api.get(f"/api/v1/imports/{imp}").json()["status"] == "running"

    def finished() -> dict | None:
        body = api.get(f"/api/v1/imports/{imp}").json()
        return body if body["status"] in ("done", "failed") else None

    seconds = await recover(s, finished, "the import to end")
    body = api.get(f"/api/v1/imports/{imp}").json()
    assert body["status"] == "done" and body["created"] == 300 and body["rejected"] == 0, body
    assert (await q(tenant.schema, "SELECT count(*) FROM operations WHERE import_id = $1", imp))[0][0] == 300
    per_client = Counter(cid for cid, _d, _a in rows)
    amounts = Counter()
    for cid, _d, amount in rows:
        amounts[cid] += amount
    after = {r["id"]: (r["operations_count"], r["revenue_total"]) for r in await q(
        tenant.schema, "SELECT id, operations_count, revenue_total FROM clients WHERE id = ANY($1)", chosen)}
    assert after == {cid: (n + per_client[cid], rev + amounts[cid]) for cid, (n, rev) in before.items()}
    print(f"import recovered {seconds:.1f} s after the kill")


async def test_killed_score_refresh_keeps_the_old_scores_and_the_retry_writes_all(stack, tenant, db_url) -> None:
    s, _url = stack
    from saas.analytics.scoring import refresh

    db = Database(db_url, pool_size=1)
    async with db.session(tenant.schema) as session:  # the previous scores, computed in-process
        await refresh(session)
    await db.dispose()
    snapshot = "SELECT client_id, status, p_alive, clv, risk_score, computed_at FROM client_scores ORDER BY client_id"
    old = await q(tenant.schema, snapshot)
    assert len(old) == CLIENTS

    # the refresh rewrites client_scores, then waits to store the dashboard figures
    async with Held(tenant.schema, "SELECT key FROM settings WHERE key = 'dashboard' FOR UPDATE") as held:
        r = tenant.browser.form(f"/t/{tenant.slug}/analytics/refresh")
        assert r.status_code in (200, 303), r.text
        victim = s.worker(burst=True, grace=3)
        await held.wait_blocked_writer()
        kill_tree(victim)
        assert await q(tenant.schema, snapshot) == old

    async def finished() -> str | None:
        rows = await q(tenant.schema, "SELECT status FROM jobs WHERE kind = 'refresh'")
        return rows[0][0] if rows and rows[0][0] in ("done", "failed") else None

    seconds = await recover(s, finished, "the refresh to end")
    assert await finished() == "done"
    new = await q(tenant.schema, "SELECT count(*), count(DISTINCT computed_at), min(computed_at) FROM client_scores")
    count, stamps, stamp = new[0]
    assert count == CLIENTS and stamps == 1 and stamp > old[0]["computed_at"]  # all rewritten in one transaction
    print(f"score refresh recovered {seconds:.1f} s after the kill")


async def test_a_job_whose_retries_are_spent_leaves_its_rows_failed_with_the_reason(stack, tenant) -> None:
    """What a worker does when RQ gives up on a killed job (AbandonedJobError, no retries left)."""
    import redis
    from rq import Queue, Retry
    from rq.exceptions import AbandonedJobError

    from saas.core.jobs import _on_exception

    api = tenant.api
    cid = api.post("/api/v1/campaigns", json={"name": "Given up", "criteria": {}}).json()["id"]
    rows = await q(tenant.schema, "INSERT INTO jobs (kind, object_id, status) VALUES ('campaign', $1, 'running') "
                                  "RETURNING id", cid)
    await q(tenant.schema, "UPDATE campaigns SET status = 'building' WHERE id = $1", cid)
    prefix = stack[0].env["REDIS_PREFIX"]
    # on a queue no worker reads: we only ask what a worker's handler does with it
    queue = Queue(f"{prefix}-spent", connection=redis.Redis.from_url(testkit.REDIS_URL))
    job = queue.enqueue("saas.campaigns.jobs.build_list", int(tenant.schema.removeprefix("t_")), cid, rows[0]["id"],
                        retry=Retry(max=1), job_id=f"{prefix}-{tenant.schema}-campaign-{rows[0]['id']}")
    job.retries_left = 1
    await asyncio.to_thread(_on_exception, job, AbandonedJobError, AbandonedJobError(), None)
    assert api.get(f"/api/v1/campaigns/{cid}").json()["status"] == "building"  # a retry is still due
    job.retries_left = 0
    await asyncio.to_thread(_on_exception, job, AbandonedJobError, AbandonedJobError(), None)
    body = api.get(f"/api/v1/campaigns/{cid}").json()
    assert body["status"] == "failed" and "retries are spent" in body["error"], body
    job_row = await q(tenant.schema, "SELECT status, error FROM jobs WHERE id = $1", rows[0]["id"])
    assert job_row[0]["status"] == "failed" and "retries are spent" in job_row[0]["error"]
