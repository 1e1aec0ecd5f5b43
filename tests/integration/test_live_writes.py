"""A new operation's write path, kept short (issue 17): the client read and locked in one statement,
the insert, its audit event and the recount in one, live scoring in two (its reads; its upsert), and
the card's fragment drawn from what the write returned. Each shortcut gives what the long way gave."""
from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from saas.accounts.service import do_create_tenant
from saas.analytics import live, scoring, statistics
from saas.analytics.scoring import refresh
from saas.clients import events
from saas.clients import operations as ops
from saas.core import clock
from saas.core.db import Database
from testkit import Browser, cli, tenant_schema, with_database
from tests.integration import companies

TODAY = date(2026, 6, 30)


@pytest.fixture(scope="module")
def company(db_url: str) -> tuple[str, list[int]]:
    """400 simulated clients (some returns), two more without operations and with returns only,
    refreshed once."""
    async def go(db: Database) -> tuple[str, list[int]]:
        async with db.session() as s:
            schema = (await do_create_tenant(s, "Live Writes Co")).schema_name
        ids = await companies.write(db, schema, companies.pareto_company(400, seed=11, returns=0.1), TODAY)
        async with db.session(schema) as s:
            bare = (await s.execute(text("INSERT INTO clients (last_name) VALUES ('Bare') RETURNING id"))).scalar_one()
            back = (await s.execute(text("INSERT INTO clients (last_name) VALUES ('Back') RETURNING id"))).scalar_one()
            await s.execute(text("INSERT INTO operations (client_id, kind, occurred_on, amount) "
                                 "VALUES (:c, 'return', :d, 120)"), {"c": back, "d": TODAY - timedelta(days=9)})
            await ops.refresh_all_metrics(s)
        async with db.session(schema) as s:
            await refresh(s, today=TODAY)
        return schema, [*ids, bare, back]

    return with_database(db_url, go)


def _same_stats(a: statistics.Stats, b: statistics.Stats) -> None:
    assert a.ids.tolist() == b.ids.tolist()
    for name in ("ids", "n", "first_age", "last_age", "n_cal", "last_cal_age", "gross", "first_amount", "returned"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.factors.keys() == b.factors.keys()
    for name in a.factors:
        assert a.factors[name].dtype == b.factors[name].dtype and np.array_equal(a.factors[name], b.factors[name]), name


def test_a_few_clients_statistics_fetched_equal_the_copy(db_url: str, company) -> None:
    """Bit for bit: the records' path (a write's client, statistics.from_records) and the COPY's
    (statistics.read)."""
    schema, ids = company
    picks = [[ids[0]], [ids[-1]], [ids[-2]], [ids[3], ids[7], ids[-1], ids[-2]], ids[100:116]]
    cutoff = TODAY - timedelta(weeks=13)

    async def go(db: Database) -> list[tuple[statistics.Stats, statistics.Stats]]:
        out = []
        async with db.session(schema) as s:
            raw = (await (await s.connection()).get_raw_connection()).driver_connection
            for some in picks:
                records = await raw.fetch(statistics.SOME_CLIENTS, TODAY, cutoff, sorted(some))
                fetched = statistics.from_records(records, TODAY, cutoff)
                out.append((fetched, await statistics.read(s, TODAY, cutoff, some)))
        return out

    pairs = with_database(db_url, go)
    for (fetched, copied), some in zip(pairs, picks, strict=True):
        assert fetched.ids.tolist() == sorted(some)
        _same_stats(fetched, copied)
    assert pairs[1][0].n.tolist() == [0] and pairs[1][0].returned.tolist() == [120.0]  # returns only
    assert pairs[2][0].n.tolist() == [0] and pairs[2][0].gross.tolist() == [0.0]  # no operations


_SCORES = text("SELECT * FROM client_scores WHERE client_id = ANY(CAST(:ids AS bigint[])) ORDER BY client_id")


def test_live_scores_in_two_round_trips_equal_the_long_way(db_url: str, company, monkeypatch) -> None:
    """The one-statement read (settings, stale mark and statistics) and the separate reads (the path
    of many clients) write the same rows; the rows noted for the page are the rows in the table."""
    schema, ids = company
    some = [ids[5], ids[50], ids[-1], ids[-2]]

    async def score(db: Database, few: bool) -> tuple[list[dict], dict]:
        monkeypatch.setattr(statistics, "FETCH_UP_TO", 16 if few else 0)
        async with db.session(schema) as s:
            assert await scoring.score_clients(s, some, today=TODAY, lock_wait="2s") == 4
            rows = [dict(r._mapping) for r in await s.execute(_SCORES, {"ids": some})]
            noted = {c: events.written_score(s, c) for c in some}
            wait = (await s.execute(text("SELECT current_setting('lock_timeout')"))).scalar_one()
            await s.rollback()
        assert wait == "0"  # the scoring's lock wait was its own
        return rows, noted

    async def both(db: Database) -> tuple[tuple[list[dict], dict], tuple[list[dict], dict]]:
        return await score(db, True), await score(db, False)

    (short, noted), (long, _noted) = with_database(db_url, both)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "computed_at"} for r in rows]
    assert strip(short) == strip(long) and len(short) == 4
    assert [noted[r["client_id"]] for r in short] == short  # what the fragment shows is what was written


def test_two_writers_on_one_card_the_second_waits_at_the_load_and_counts_the_first(db_url: str, company) -> None:
    """The lock is taken where the client is read (lock_client): the second writer waits there, and
    its recount, a later statement, sees the first one's operation."""
    schema, ids = company
    cid = ids[20]

    async def go(db: Database):
        async with db.session(schema) as s:
            count, revenue = (await s.execute(text("SELECT operations_count, revenue_total FROM clients WHERE id = :c"),
                                              {"c": cid})).one()
        first = db.sessions()
        first.info["schema"] = schema
        client = await ops.lock_client(first, cid)
        a = await ops.do_add_operation(first, client, {"kind": "sale", "occurred_on": TODAY.isoformat(),
                                                       "amount": "100.00"}, "test")

        async def second() -> ops.AddedOperation:
            async with db.session(schema) as s:
                row = await ops.lock_client(s, cid)
                return await ops.do_add_operation(s, row, {"kind": "service", "occurred_on": TODAY.isoformat(),
                                                           "amount": "23.45"}, "test")

        with clock.frozen(TODAY):
            waiting = asyncio.ensure_future(second())
            await asyncio.sleep(0.5)
            blocked = not waiting.done()
            await first.commit()
            await first.close()
            b = await waiting
        async with db.session(schema) as s:
            after = (await s.execute(text("SELECT operations_count, revenue_total FROM clients WHERE id = :c"),
                                     {"c": cid})).one()
            audits = (await s.execute(text("SELECT object_id, details FROM audit_events WHERE action = "
                                           "'operation.created' AND object_id = ANY(CAST(:ids AS bigint[])) "
                                           "ORDER BY object_id"), {"ids": [a.id, b.id]})).all()
        return count, revenue, a, b, blocked, tuple(after), audits

    count, revenue, a, b, blocked, after, audits = with_database(db_url, go)
    assert blocked
    assert (a.client.operations_count, a.client.revenue_total) == (count + 1, revenue + Decimal("100.00"))
    assert (b.client.operations_count, b.client.revenue_total) == (count + 2, revenue + Decimal("123.45"))
    assert after == (count + 2, revenue + Decimal("123.45"))
    assert [(i, d) for i, d in audits] == [(a.id, {"client_id": cid}), (b.id, {"client_id": cid})]


async def _sale_then_lock_wait(db: Database, schema: str, cid: int, amount: str) -> tuple[Any, str, Any]:
    """A sale added the way the form adds it; (the write's result, the transaction's lock_timeout right
    after it, the scores noted as written for the card)."""
    with clock.frozen(TODAY):
        async with db.session(schema) as s:
            row = await ops.lock_client(s, cid)
            added = await ops.do_add_operation(s, row, {"kind": "sale", "occurred_on": TODAY.isoformat(),
                                                        "amount": amount}, "test")
            wait = (await s.execute(text("SELECT current_setting('lock_timeout')"))).scalar_one()
            return added, wait, events.written_score(s, cid)


def test_a_write_waits_for_a_refresh_at_most_the_lock_wait_and_keeps_the_write(db_url: str, company,
                                                                                 monkeypatch) -> None:
    """A refresh rewriting the scores holds their rows: live scoring gives up after LOCK_WAIT, the
    write commits without them, and the transaction has its own lock_timeout back."""
    schema, ids = company
    cid = ids[30]
    monkeypatch.setattr(live, "LOCK_WAIT", "300ms")
    live.register()

    async def go(db: Database):
        refresh_like = db.sessions()
        refresh_like.info["schema"] = schema
        before = (await refresh_like.execute(_SCORES, {"ids": [cid]})).one()._mapping["computed_at"]
        await refresh_like.execute(text("DELETE FROM client_scores WHERE client_id = :c"), {"c": cid})
        try:
            added, wait, noted = await _sale_then_lock_wait(db, schema, cid, "77.00")
        finally:
            await refresh_like.rollback()
            await refresh_like.close()
        async with db.session(schema) as s:
            kept = (await s.execute(text("SELECT count(*) FROM operations WHERE id = :o"), {"o": added.id})).scalar()
            after = (await s.execute(_SCORES, {"ids": [cid]})).one()._mapping["computed_at"]
        return wait, noted, kept, before, after

    wait, noted, kept, before, after = with_database(db_url, go)
    assert wait == "0" and noted is None  # no scores written, none shown as written
    assert kept == 1 and after == before


def test_a_scoring_error_costs_only_the_scores(db_url: str, company, monkeypatch) -> None:
    """An SQL error inside live scoring (here: in its dashboard mark, after its read set the lock
    wait) rolls back to its savepoint: the write, its recount and its audit event commit, the scores
    stay as they were, and the session goes on (a later statement in it works)."""
    schema, ids = company
    cid = ids[40]
    live.register()

    async def broken(db) -> None:
        await db.execute(text("SELECT 1 / 0"))

    monkeypatch.setattr(scoring, "mark_stale", broken)

    async def go(db: Database):
        async with db.session(schema) as s:
            await s.execute(text("DELETE FROM settings WHERE key = 'dashboard_stale'"))
            before = (await s.execute(_SCORES, {"ids": [cid]})).one()._mapping["computed_at"]
        added, wait, _noted = await _sale_then_lock_wait(db, schema, cid, "5.00")
        async with db.session(schema) as s:
            kept = (await s.execute(text("SELECT count(*) FROM operations o JOIN audit_events a ON a.object_id = o.id "
                                         "AND a.action = 'operation.created' WHERE o.id = :o"),
                                    {"o": added.id})).scalar()
            count = (await s.execute(text("SELECT operations_count FROM clients WHERE id = :c"), {"c": cid})).scalar()
            after = (await s.execute(_SCORES, {"ids": [cid]})).one()._mapping["computed_at"]
        return wait, kept, count, added.client.operations_count, before, after

    wait, kept, count, counted, before, after = with_database(db_url, go)
    assert wait == "0" and kept == 1 and count == counted
    assert after == before


def _panel(html: str) -> str:
    return re.search(r'<div class="card score-panel" id="score-panel"[^>]*>.*?reliability-reason.*?</p>', html,
                     re.DOTALL).group(0)


def test_the_card_fragment_after_an_add_is_what_the_card_shows(http: Browser, db_url: str) -> None:
    """Drawn from the write's own results (metrics, overdue, the scores written), the fragment is
    the card's operations section and score panel as a read afterwards draws them."""
    slug = http.signup("Fragment Co")

    async def setup(db: Database) -> int:
        schema = await tenant_schema(db, slug)
        ids = await companies.write(db, schema, companies.pareto_company(200, seed=3), clock.today())
        async with db.session(schema) as s:
            await s.execute(text("INSERT INTO operations (client_id, kind, occurred_on, amount, due_on) "
                                 "VALUES (:c, 'sale', :d, 500, :due)"),
                            {"c": ids[7], "d": clock.today() - timedelta(days=40),
                             "due": clock.today() - timedelta(days=10)})
            await ops.refresh_all_metrics(s)
        async with db.session(schema) as s:
            await refresh(s)
        return ids[7]

    cid = with_database(db_url, setup)
    r = http.form(f"/t/{slug}/clients/{cid}/operations", {"kind": "service", "occurred_on": clock.today().isoformat(),
                                                         "amount": "1234.50", "note": "fragment-note"},
                  headers={"HX-Request": "true", "HX-Target": "operations"})
    assert r.status_code == 200, r.text
    fragment = r.text
    card = http.get(f"/t/{slug}/clients/{cid}").text
    operations = fragment[:fragment.index('<div class="card score-panel"')].strip()
    assert "fragment-note" in operations and 'data-metric="overdue" class="bad"' in operations
    assert operations in card
    assert 'hx-swap-oob="true"' in _panel(fragment)
    assert _panel(fragment).replace(' hx-swap-oob="true"', "") == _panel(card)


def test_api_answers_to_new_operations_and_clients_equal_a_read_back(http: Browser, base_url: str) -> None:
    slug = http.signup("Api Answers Co")
    secret = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "answers").stdout.strip()
    with httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {secret}"}, timeout=30) as api:
        for kind in ("product_groups", "directions"):
            r = http.form(f"/t/{slug}/dictionaries/{kind}", {"name": "Окна" if kind == "product_groups" else "Опт"})
            assert r.status_code in (200, 303), r.text
        plain = api.post("/clients", json={"last_name": "Новиков", "first_name": "Олег", "note": "n"})
        grouped = api.post("/clients", json={"last_name": "Гусев", "product_groups": ["окна"], "directions": ["Опт"]})
        for r in (plain, grouped):
            assert r.status_code == 201, r.text
            assert r.json() == api.get(f"/clients/{r.json()['id']}").json()
        assert grouped.json()["product_groups"] == ["Окна"] and grouped.json()["directions"] == ["Опт"]
        cid = plain.json()["id"]
        added = api.post(f"/clients/{cid}/operations", json={
            "kind": "sale", "occurred_on": clock.today().isoformat(), "amount": "10.5", "product_group": "ОКНА",
            "direction": "опт", "due_on": clock.today().isoformat(), "note": "x"})
        bare = api.post(f"/clients/{cid}/operations", json={"occurred_on": clock.today().isoformat(), "amount": "3"})
        assert added.status_code == bare.status_code == 201, (added.text, bare.text)
        listed = {o["id"]: o for o in api.get(f"/clients/{cid}/operations").json()}
        assert added.json() == listed[added.json()["id"]] and bare.json() == listed[bare.json()["id"]]
        assert added.json()["product_group"] == "Окна" and added.json()["direction"] == "Опт"
        unknown = api.post(f"/clients/{cid}/operations", json={"occurred_on": clock.today().isoformat(),
                                                               "amount": "3", "product_group": "Двери"})
        assert unknown.status_code == 422 and "product_groups" in unknown.json()["fields"]
        assert api.get(f"/clients/{cid}").json()["metrics"]["operations_count"] == 2
