"""Benchmark: campaign targeting at a million scored clients - the live count, the list build.

Setup (bench/analytics.py's `bench_tenant`, timed under "setup_seconds"): N clients and ~10 N
operations by COPY, each client interested in product groups (group 3 on ~50%, the other nine on
~12% each), SMS consent on ~70% and e-mail on ~55%; one score refresh; and an earlier SMS campaign
(the top 5% by revenue, launched 5 days ago) so the 30-day frequency cap has members to check.
The target is typical of the builder: status in (active, at_risk) AND revenue at least the lower quartile
AND product group 3, channel SMS, default suppression, ranked by CLV, 10% control group.

Measured, product beside its floor, interleaved, in the same run:
* preview - `service.preview(session, Campaign(**check_campaign(body)))` in its own session, as the
  preview endpoint runs it: the matched/eligible/per-reason counts and the top-10 sample. Floor: the
  bare `SELECT count(*)` of the eligible target, the same WHERE written by hand (criteria, consent,
  contact, archived/erased, stop-list tag, the NOT EXISTS of the frequency cap), in the same kind of
  session. It is the one number a live count cannot do without; "same_count" checks they agree.
  Goal: p95 under 300 ms.
* build - `service.build(session, campaign)` for the top N/10 (100,000 at 1M clients) in one
  transaction, from `get(Campaign, with_for_update=True)` to the commit, as the RQ job runs it
  (a rebuild: it replaces the previous list). Floor: one bare `INSERT ... SELECT` of the same rows
  (rank, client, score, control) into a scratch table shaped like campaign_members (same keys,
  index and foreign key), emptied untimed before each run; "same_rows" compares the two lists.
  Goal: within 2x of the floor.
`statements_ms` gives the median time of each statement the product issues, to show what dominates.

Database: BENCH_DATABASE_URL (an admin URL), else TEST_DATABASE_URL, else the embedded server.
Usage: python bench/campaigns.py [--clients 1000000] [--repeat 40] [--builds 5] [--quick].
Progress on stderr, JSON as the last stdout line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlalchemy import event, text, update

from bench.analytics import bench_tenant
from bench.clients import compare, ms_since
from bench.tenants import clients_parser, host_load, log, positive, run_and_report
from saas.campaigns.models import Campaign
from saas.campaigns.service import build, check_campaign, preview
from saas.wiring import wire
from saas.core import clock

wire()

WARMUP = 3
TARGET_WHERE = """
    s.status IN ('active', 'at_risk') AND c.revenue_total >= :rev AND c.product_group_ids && ARRAY[3]::bigint[]
    AND c.consent ? 'sms' AND c.phone IS NOT NULL AND c.archived_at IS NULL AND c.erased_at IS NULL
    AND NOT ('stop-list' = ANY (c.tags))
    AND NOT EXISTS (SELECT 1 FROM campaign_members m JOIN campaigns o ON o.id = m.campaign_id
                    WHERE m.client_id = c.id AND NOT m.control AND o.id <> :cid
                      AND o.launched_at >= now() - interval '30 days')"""
FLOOR_COUNT = text(f"SELECT count(*) FROM clients c JOIN client_scores s ON s.client_id = c.id WHERE {TARGET_WHERE}")
FLOOR_BUILD = text(f"""
    INSERT INTO bench_members (campaign_id, rank, client_id, score, control)
    SELECT :cid, row_number() OVER (ORDER BY t.score DESC, t.id), t.id, t.score, t.control FROM (
        SELECT c.id, coalesce(s.clv::float8, 0) AS score,
               (('x' || substr(md5(:prefix || c.id::text), 1, 8))::bit(32)::bigint % 10000) < :threshold AS control
        FROM clients c JOIN client_scores s ON s.client_id = c.id WHERE {TARGET_WHERE}
        ORDER BY score DESC, c.id LIMIT :size) t""")
DIFFERENT = text("""
    SELECT count(*) FROM (SELECT rank, client_id, control FROM campaign_members WHERE campaign_id = :cid) m
    FULL JOIN bench_members b USING (rank)
    WHERE m.client_id IS DISTINCT FROM b.client_id OR m.control IS DISTINCT FROM b.control""")


def interests(rnd, _client_id: int) -> tuple:
    groups = [g for g in range(1, 11) if rnd.random() < (0.5 if g == 3 else 0.12)]
    consent = {ch: {"at": "2024-01-15", "source": "bench"} for ch, p in (("sms", 0.7), ("email", 0.55))
               if rnd.random() < p}
    return groups, json.dumps(consent)


class Statements:
    """Time of every statement SQLAlchemy sends while `on`, keyed by its first words."""

    def __init__(self, engine) -> None:
        self.on, self.times = False, defaultdict(list)
        event.listen(engine.sync_engine, "before_cursor_execute", self.before)
        event.listen(engine.sync_engine, "after_cursor_execute", self.after)

    def before(self, conn, cursor, statement, *args) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def after(self, conn, cursor, statement, *args) -> None:
        if self.on:
            self.times[" ".join(statement.split()[:7])[:70]].append(ms_since(conn.info["bench_t0"]))

    def medians(self) -> dict[str, float]:
        out = {k: round(statistics.median(v), 1) for k, v in self.times.items()}
        self.times.clear()
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


async def prepare(db, schema: str, n: int) -> tuple[dict, int, float]:
    async with db.session(schema) as s:
        await s.execute(text("INSERT INTO product_groups (name) SELECT 'Group ' || g FROM generate_series(1, 10) g "
                             "ON CONFLICT DO NOTHING"))
        rev = float(await s.scalar(text("SELECT percentile_disc(0.25) WITHIN GROUP (ORDER BY revenue_total) "
                                        "FROM clients")))
        earlier = Campaign(**check_campaign({"name": "Earlier", "channel": "sms", "ranking": "revenue",
                                             "size": max(1, n // 20)}))
        s.add(earlier)
        await s.flush()
        await build(s, earlier)
        await s.execute(update(Campaign).where(Campaign.id == earlier.id)
                        .values(launched_at=clock.now() - timedelta(days=5)))
    body = {"name": "Bench target", "channel": "sms", "ranking": "clv", "control_share": 0.1, "size": max(1, n // 10),
            "criteria": {"status": ["active", "at_risk"], "revenue_min": rev, "product_groups": [3]}}
    async with db.session(schema) as s:
        target = Campaign(**check_campaign(body))
        s.add(target)
        await s.flush()
        await s.execute(text("DROP TABLE IF EXISTS bench_members"))  # a reused database has one
        await s.execute(text("CREATE TABLE bench_members (LIKE campaign_members INCLUDING ALL, FOREIGN KEY "
                             "(campaign_id) REFERENCES campaigns (id) ON DELETE CASCADE)"))
    async with db.session(schema) as s:
        await s.execute(text("ANALYZE campaign_members, campaigns"))
    return body, target.id, rev


async def measure_preview(db, schema: str, body: dict, rev: float, timer: Statements, repeat: int) -> dict:
    product, floor, same, result, count = [], [], True, None, None
    for i in range(WARMUP + repeat):
        timer.on = i >= WARMUP
        started = time.perf_counter()
        async with db.session(schema) as s:
            result = await preview(s, Campaign(**check_campaign(body)))
        p_ms = ms_since(started)
        timer.on = False
        started = time.perf_counter()
        async with db.session(schema) as s:
            count = await s.scalar(FLOOR_COUNT, {"rev": rev, "cid": 0})
        f_ms = ms_since(started)
        same = same and count == result.eligible
        if i >= WARMUP:
            product.append(p_ms)
            floor.append(f_ms)
    out = {**compare(product, floor), "matched": result.matched, "eligible": result.eligible,
           "excluded": result.excluded, "floor_count": count, "same_count": same,
           "statements_ms": timer.medians()}
    out["goal_p95_under_300ms"] = out["p95_ms"] < 300
    return out


async def measure_build(db, schema: str, cid: int, rev: float, timer: Statements, builds: int) -> dict:
    product, floor, members, size = [], [], 0, 0
    for i in range(1 + builds):  # the first of each is a warm-up
        timer.on = i > 0
        started = time.perf_counter()
        async with db.session(schema) as s:
            campaign = await s.get(Campaign, cid, with_for_update=True)
            members, size, share = await build(s, campaign), campaign.size, campaign.control_share
        p_ms = ms_since(started)
        timer.on = False
        async with db.session(schema) as s:
            await s.execute(text("TRUNCATE bench_members"))
        started = time.perf_counter()
        async with db.session(schema) as s:
            await s.execute(FLOOR_BUILD, {"cid": cid, "rev": rev, "prefix": f"{cid}:", "size": size,
                                          "threshold": round(share * 10000)})
        f_ms = ms_since(started)
        log(f"build {i}: product {p_ms:.0f} ms, floor {f_ms:.0f} ms, {members} members")
        if i > 0:
            product.append(p_ms)
            floor.append(f_ms)
    async with db.session(schema) as s:
        different = await s.scalar(DIFFERENT, {"cid": cid})
    out = {**compare(product, floor), "size": size, "members": members, "builds": builds,
           "same_rows": different == 0, "rows_differing": different, "statements_ms": timer.medians()}
    out["goal_within_2x"] = out["ratio_p50"] <= 2
    return out


async def run(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()
    async with bench_tenant(args.clients, 10, ("product_group_ids", "consent"), interests, scores=True) as (
            db, _raw, schema, _url, setup):
        started = time.perf_counter()
        body, cid, rev = await prepare(db, schema, args.clients)
        setup["campaigns"] = round(time.perf_counter() - started, 2)
        timer = Statements(db.engine)
        previews = await measure_preview(db, schema, body, rev, timer, args.repeat)
        log(f"preview: {previews}")
        builds = await measure_build(db, schema, cid, rev, timer, args.builds)
        log(f"build: {builds}")
    return {"benchmark": "campaigns", "clients": args.clients, "setup_seconds": setup,
            "target": body["criteria"], "preview": previews, "build": builds,
            "host": host_load(load_start)}


def main() -> None:
    parser = clients_parser(__doc__, 1_000_000, "clients in the tenant (default 1M)")
    parser.add_argument("--repeat", type=positive, default=40, help="timed previews (default 40)")
    parser.add_argument("--builds", type=positive, default=5, help="timed list builds (default 5)")
    run_and_report(parser, run, "smoke run: 20,000 clients", clients=20_000)


if __name__ == "__main__":
    main()
