"""The refresh counts the dashboard's figures from its own arrays (issue 15's speed goal): the stored
snapshot's counts are exactly what the SQL over the scores just written counts (archived clients
left out, revenue per segment from the clients' rows, the top of the risk group and its factors)."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from sqlalchemy import text

from saas.analytics import dashboard
from saas.analytics.scoring import refresh
from testkit import Browser, with_database

from tests.integration.test_growth_payments_sql import company

TODAY = date(2026, 6, 30)


def operations(clients: int, seed: int = 21) -> list[tuple[int, str, date, float, date | None, date | None]]:
    rng = np.random.default_rng(seed)
    ops = []
    for i in range(clients - 5):  # the last five never bought
        for _ in range(int(rng.integers(1, 12))):
            day = TODAY - timedelta(days=int(rng.integers(0, 900)))
            kind = str(rng.choice(["sale", "sale", "service", "return"]))
            amount = round(float(rng.uniform(1, 5000)), 2)
            due = day + timedelta(days=14) if kind != "return" and rng.random() < 0.5 else None
            late = int(rng.integers(-10, 120))
            paid = due + timedelta(days=late) if due is not None and due + timedelta(days=late) <= TODAY \
                and rng.random() < 0.8 else None
            ops.append((i, kind, day, amount, due, paid))
    return ops


def test_the_snapshot_counts_are_those_of_the_scores_written(http: Browser, db_url: str) -> None:
    schema, ids = company(http, db_url, "Counts Co", 160, operations(160))

    async def go(db):
        async with db.session(schema) as s:
            await s.execute(text("UPDATE clients SET archived_at = now() WHERE id = ANY(:ids)"),
                            {"ids": ids[:7] + ids[-2:]})
            await s.execute(text("UPDATE clients SET erased_at = now() WHERE id = :id"), {"id": ids[9]})
        out = []
        for _run in range(2):  # the first refresh and the next (from the stored fits)
            async with db.session(schema) as s:
                await refresh(s, today=TODAY)
            async with db.session(schema) as s:
                stored = (await s.execute(text("SELECT value FROM settings WHERE key = 'dashboard'"))).scalar_one()
                out.append((stored["mix"], await dashboard.score_figures(s)))
        return out

    for stored, by_sql in with_database(db_url, go):
        assert stored.keys() == by_sql.keys()
        for key in by_sql:
            if key != "as_of":
                assert stored[key] == by_sql[key], key
        assert by_sql["clients"] == 160 - 9 - 1 and by_sql["top_risk"] and by_sql["status"].get("new")
        assert sum(by_sql["risk"].values()) == by_sql["clients"]
