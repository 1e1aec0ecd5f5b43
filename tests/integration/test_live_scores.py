"""Live scores: a write to a client's operations re-scores that client in the same transaction,
from the fit the last refresh stored, through the subscriber analytics registers at startup."""
from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from saas.analytics import live
from saas.clients.models import ClientScore
from saas.analytics.scoring import refresh
from saas.clients import events
from saas.clients import operations as ops
from saas.clients.models import Client, Operation
from saas.core import clock
from saas.core.db import Database
from saas.accounts.service import do_create_tenant
from testkit import Browser, tenant_schema
from tests.integration import companies

TODAY = date(2026, 6, 30)


async def _debtor(db: Database, schema: str) -> tuple[int, int]:
    """A client who bought six times and owes 8,000 due 156 days ago: (client id, the unpaid sale's id)."""
    async with db.session(schema) as s:
        client = Client(last_name="Debtor", first_name="Ivan")
        s.add(client)
        await s.flush()
        for days in (600, 500, 400, 300, 250):
            s.add(Operation(client_id=client.id, kind="sale", occurred_on=TODAY - timedelta(days=days),
                            amount=Decimal("1200.00"), due_on=TODAY - timedelta(days=days - 14),
                            paid_on=TODAY - timedelta(days=days - 10)))
        debt = Operation(client_id=client.id, kind="sale", occurred_on=TODAY - timedelta(days=170),
                         amount=Decimal("8000.00"), due_on=TODAY - timedelta(days=156))
        s.add(debt)
        await s.flush()
        await ops.refresh_all_metrics(s)
        return client.id, debt.id


@pytest.fixture(scope="module")
def scored(db_url: str):
    """A company of 800 simulated clients plus the debtor, refreshed once (no live scoring yet)."""
    async def go():
        db = Database(db_url, pool_size=2)
        try:
            async with db.session() as s:
                schema = (await do_create_tenant(s, "Live Co")).schema_name
            await companies.write(db, schema, companies.pareto_company(800, seed=5), TODAY)
            client_id, debt_id = await _debtor(db, schema)
            async with db.session(schema) as s:
                result = await refresh(s, today=TODAY)
            return schema, client_id, debt_id, result.method
        finally:
            await db.dispose()

    return asyncio.run(go())


async def _scores(db: Database, schema: str) -> dict[int, tuple]:
    async with db.session(schema) as s:
        rows = await s.execute(select(ClientScore.client_id, ClientScore.computed_at, ClientScore.risk_score,
                                      ClientScore.risk_factors, ClientScore.status, ClientScore.p_alive))
        return {r[0]: tuple(r[1:]) for r in rows}


def test_paying_a_debt_rescores_that_client_in_the_same_transaction(db_url: str, scored) -> None:
    schema, client_id, debt_id, _method = scored
    live.register()
    live.register()  # registering twice subscribes once

    async def go():
        db = Database(db_url, pool_size=2)
        try:
            before = await _scores(db, schema)
            with clock.frozen(TODAY):
                async with db.session(schema) as s:
                    op = await s.get(Operation, debt_id)
                    await ops.do_update_operation(s, op, {"paid_on": TODAY.isoformat()}, "test")
                    # inside the write's own transaction, before commit: already re-scored
                    inside = (await s.execute(text("SELECT risk_factors FROM client_scores WHERE client_id = :c"),
                                              {"c": client_id})).scalar_one()
                    # the scoring's lock wait was its own: the write's transaction has its setting back
                    wait, path = (await s.execute(text("SELECT current_setting('lock_timeout'), "
                                                       "current_setting('search_path')"))).one()
            after = await _scores(db, schema)
            return before, inside, after, wait, path
        finally:
            await db.dispose()

    before, inside, after, wait, path = asyncio.run(go())
    assert wait == "0" and path == schema  # lock_timeout restored; still bound after the savepoint
    assert events._operations_changed.count(live.rescore) == 1
    assert before[client_id][2]["overdue"] == 8000.0  # the refresh saw the debt
    assert "overdue" not in inside and inside["payments"] >= 1  # a zero figure is left out (read as 0)
    assert "overdue" not in after[client_id][2] and after[client_id][1] > before[client_id][1]  # risk score up
    assert after[client_id][0] > before[client_id][0]  # computed_at moved
    # nobody else was touched
    others = [cid for cid in before if cid != client_id]
    assert all(after[cid] == before[cid] for cid in others)


def test_a_new_purchase_moves_status_and_p_alive(db_url: str, scored) -> None:
    schema, _client_id, _debt_id, method = scored
    live.register()

    async def go():
        db = Database(db_url, pool_size=2)
        try:
            async with db.session(schema) as s:  # a client nobody has heard of for two years
                quiet = (await s.execute(text(
                    "SELECT s.client_id FROM client_scores s JOIN clients c ON c.id = s.client_id "
                    "WHERE s.status = 'lost' AND c.operations_count >= 3 ORDER BY s.p_alive LIMIT 1"))).scalar_one()
            before = (await _scores(db, schema))[quiet]
            with clock.frozen(TODAY):
                async with db.session(schema) as s:
                    client = await ops.lock_client(s, quiet)
                    await ops.do_add_operation(s, client, {"kind": "sale", "occurred_on": TODAY.isoformat(),
                                                           "amount": "900"}, "test")
            return before, (await _scores(db, schema))[quiet]
        finally:
            await db.dispose()

    before, after = asyncio.run(go())
    assert before[3] == "lost"
    if method != "rules":
        assert after[4] > before[4] + 0.3  # bought today: far more likely still a client
    assert after[3] == "active"


def test_deleting_a_client_operations_keeps_scores_consistent(db_url: str, scored) -> None:
    """Delete every operation of a buyer: the client has no purchase any more, so it is new (a
    prospect) with no forecast, and RFM's 'no purchases yet'."""
    schema, _client_id, _debt_id, _method = scored
    live.register()

    async def go():
        db = Database(db_url, pool_size=2)
        try:
            async with db.session(schema) as s:
                cid = (await s.execute(text("SELECT client_id FROM operations GROUP BY 1 HAVING count(*) = 2 "
                                            "ORDER BY 1 LIMIT 1"))).scalar_one()
            with clock.frozen(TODAY):
                async with db.session(schema) as s:
                    for op in list(await s.scalars(select(Operation).where(Operation.client_id == cid))):
                        await ops.do_delete_operation(s, op, "test")
            async with db.session(schema) as s:
                return (await s.execute(text("SELECT status, p_alive, clv, segment, r_score FROM client_scores "
                                             "WHERE client_id = :c"), {"c": cid})).one()
        finally:
            await db.dispose()

    status, p_alive, clv, segment, r = asyncio.run(go())
    assert (status, p_alive, clv, segment, r) == ("new", None, None, "prospects", 0)


def test_card_panel_follows_a_paid_debt_without_a_refresh(http: Browser, db_url: str) -> None:
    """Through the web form (htmx): the response carries the score panel out of band, and the
    card's reliability no longer mentions the debt."""
    slug = http.signup("Card Live Co")

    async def setup():
        db = Database(db_url, pool_size=2)
        try:
            schema = await tenant_schema(db, slug)
            await companies.write(db, schema, companies.pareto_company(300, seed=8), TODAY)
            client_id, debt_id = await _debtor(db, schema)
            async with db.session(schema) as s:
                await refresh(s, today=TODAY)
            return client_id, debt_id
        finally:
            await db.dispose()

    client_id, debt_id = asyncio.run(setup())
    card = http.get(f"/t/{slug}/clients/{client_id}").text
    panel = re.search(r'<div class="card score-panel".*?</div>\s*</div>', card, re.DOTALL).group(0)
    assert "overdue" in panel
    r = http.form(f"/t/{slug}/clients/{client_id}/operations/{debt_id}", {"paid_on": TODAY.isoformat()},
                  headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert 'id="score-panel"' in r.text and 'hx-swap-oob="true"' in r.text
    oob = r.text[r.text.index('id="score-panel"'):]
    assert "overdue" not in oob.split("returns-note")[0]
    card = http.get(f"/t/{slug}/clients/{client_id}").text
    panel = re.search(r'<div class="card score-panel".*?reliability-reason.*?</p>', card, re.DOTALL)
    assert "overdue" not in panel.group(0)
