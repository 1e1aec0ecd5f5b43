"""Two web processes and two workers on different ports, one database and one Redis (issue 7):
a session started on one is valid on the other, jobs spread over both workers, and pressing Build
on both web processes at once gives one job, not two. (That press race is narrow: the test also
passed without the advisory lock that closes it. What keeps two runs of one build from writing at
once is the campaign row the build locks FOR UPDATE for its whole transaction.)"""
from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
import redis
from rq.job import Job as RQJob

import testkit
from saas.db import Database
from testkit import Browser, cli
from tests.integration.processes import Stack, wait_for
from tests.integration.test_scoring import schema_of, seed
from tests.integration.test_worker_death import Held, q


@pytest.fixture(scope="module")
def two():
    s = Stack()
    a, b = s.web(), s.web()
    s.worker()
    s.worker()
    yield s, a, b
    s.stop()


def test_a_session_started_on_one_web_process_is_valid_on_the_other(two) -> None:
    _s, a, b = two
    on_a = Browser(a)
    slug = on_a.signup("Two Webs Co")
    on_b = Browser(b)
    on_b.cookies.update(on_a.cookies)
    page = on_b.get(f"/t/{slug}/")
    assert page.status_code == 200 and "Two Webs Co" in page.text
    # a write on B (CSRF token from A's form) is seen on A: logging out on B ends the session on A
    assert on_b.form("/logout").status_code in (302, 303)
    assert on_a.get(f"/t/{slug}/").status_code in (302, 303)


async def test_jobs_spread_over_both_workers_and_one_object_never_runs_twice(two, db_url) -> None:
    s, a, b = two
    slug = Browser(a).signup("Two Workers Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "t").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    db = Database(db_url, pool_size=2)
    schema = await schema_of(db, slug)
    await seed(db, schema, 100, seed=3)
    await db.dispose()
    with httpx.Client(base_url=a, headers=headers, timeout=30) as api:
        campaigns = [api.post("/api/v1/campaigns", json={"name": f"C{i}", "criteria": {}, "size": 20}).json()["id"]
                     for i in range(2)]

    answers: list[int] = []

    def press(url: str, cid: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            answers.append(c.post(f"/api/v1/campaigns/{cid}/build").status_code)

    # Builds block on this lock once started, so the two run at the same time, one per worker.
    async with Held(schema, "LOCK TABLE client_scores IN ACCESS EXCLUSIVE MODE") as held:
        presses = [threading.Thread(target=press, args=(url, cid)) for cid in campaigns for url in (a, b)]
        for t in presses:
            t.start()
        for t in presses:
            t.join(30)
        assert answers == [202] * 4
        await held.wait_blocked_writer(writers=2)
        rows = await q(schema, "SELECT object_id, id, status FROM jobs WHERE kind = 'campaign' ORDER BY object_id")
        assert [r["object_id"] for r in rows] == campaigns, rows  # one job per campaign, though pressed twice
        assert all(r["status"] == "running" for r in rows)
        conn = redis.Redis.from_url(testkit.REDIS_URL)
        prefix = s.env["REDIS_PREFIX"]
        workers = {RQJob.fetch(f"{prefix}-{schema}-campaign-{r['id']}", connection=conn).worker_name for r in rows}
        assert len(workers) == 2, workers  # both workers busy, one build each

    def all_ready() -> bool:
        with httpx.Client(base_url=b, headers=headers, timeout=30) as api:
            return all(api.get(f"/api/v1/campaigns/{cid}").json()["status"] == "ready" for cid in campaigns)

    wait_for(all_ready, 60, "both builds")
    rows = await q(schema, "SELECT status, count(*) FROM jobs WHERE kind = 'campaign' GROUP BY status")
    assert [tuple(r) for r in rows] == [("done", 2)]
    members = await q(schema, "SELECT campaign_id, count(*), count(DISTINCT rank) FROM campaign_members "
                              "GROUP BY campaign_id ORDER BY campaign_id")
    assert [tuple(r) for r in members] == [(cid, 20, 20) for cid in campaigns]
