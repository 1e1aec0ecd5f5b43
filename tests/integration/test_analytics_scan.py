"""The refresh's statistics from the raw rows with numpy (scan.py) equal the SQL reduction's
(statistics.read_sql) for every column, on a company built to hit every rule of the definitions."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from saas.analytics import scan, statistics
from tests.integration.test_growth_payments_sql import TODAY, company
from testkit import Browser, with_database

CUTOFF = TODAY - timedelta(weeks=13)
COLUMNS = ("ids", "n", "first_age", "last_age", "n_cal", "last_cal_age", "gross", "first_amount", "returned",
           "months", "years", "quarters", "ytd_last")


def tricky_operations() -> list[tuple]:
    """(client index, kind, day, amount, due, paid) covering the rules; clients 0..29."""
    t, c = TODAY, CUTOFF
    d = lambda n: t - timedelta(days=n)
    ops: list[tuple] = [
        # several purchases a day, a return between them, a service, cents
        (0, "sale", d(400), 100.10, None, None), (0, "return", d(400), 30.33, None, None),
        (0, "service", d(400), 50.01, None, None), (0, "sale", d(200), 0.01, None, None),
        (0, "sale", c, 12.34, None, None), (0, "sale", t, 999999999.99, None, None),
        # only returns
        (1, "return", d(10), 15.0, None, None), (1, "return", d(300), 5.5, None, None),
        # a return before the first purchase; purchases on the cut-off day and today only
        (2, "return", d(500), 40.0, None, None), (2, "sale", c, 70.0, None, None), (2, "sale", t, 1.0, None, None),
        # credit: paid on time, paid late, unpaid and overdue, unpaid and not yet due, paid after today,
        # due today, a return with a due date (never a payment)
        (3, "sale", d(100), 1000.0, d(86), d(90)), (3, "sale", d(90), 2000.0, d(76), d(30)),
        (3, "sale", d(60), 3000.0, d(46), None), (3, "sale", d(5), 500.0, t + timedelta(days=9), None),
        (3, "service", d(30), 700.0, d(16), t + timedelta(days=3)), (3, "sale", d(14), 80.0, t, None),
        (3, "return", d(20), 100.0, d(6), None),
        # never paid, long ago (weight ~0); paid the day it was due
        (4, "sale", d(2000), 450.0, d(1986), None), (4, "sale", d(1000), 10.0, d(990), d(990)),
        # after today: not read (nor its credit)
        (5, "sale", t + timedelta(days=1), 99.0, t + timedelta(days=15), None), (5, "sale", d(1), 9.0, None, None),
        # last year's year-to-date window and its edges
        (6, "sale", date(t.year - 1, 1, 1), 5.0, None, None), (7, "sale", date(t.year - 1, 1, 1) - timedelta(days=1),
                                                              5.0, None, None),
        (8, "sale", t.replace(year=t.year - 1), 5.0, None, None),
        (9, "sale", t.replace(year=t.year - 1) + timedelta(days=1), 5.0, None, None),
        # a purchase before the bit sets' history (left out of them), then recent ones
        (10, "sale", date(1950, 3, 1), 20.0, None, None), (10, "sale", d(3), 20.0, None, None),
        # quarters 63 and more after the first
        (11, "sale", date(2005, 1, 15), 1.0, None, None), (11, "sale", d(2), 1.0, None, None),
        # the erased client's rows count for nobody
        (12, "sale", d(50), 500.0, d(36), None), (12, "sale", d(40), 500.0, None, None),
    ]
    rng = np.random.default_rng(5)  # and a crowd of ordinary clients (13..29: 29 has none)
    for i in range(13, 29):
        for _ in range(int(rng.integers(1, 25))):
            kind = str(rng.choice(["sale", "sale", "service", "return"]))
            day = d(int(rng.integers(-5, 1500)))
            credit = rng.random() < 0.4
            due = day + timedelta(days=14) if credit else None
            paid = due + timedelta(days=int(rng.integers(-14, 60))) if credit and rng.random() < 0.7 else None
            ops.append((i, kind, day, round(float(rng.uniform(0.01, 5000)), 2), due, paid))
            if rng.random() < 0.2:  # another on the same day
                ops.append((i, "sale", day, round(float(rng.uniform(0.01, 50)), 2), None, None))
    return ops


def _column(stats: statistics.Stats, name: str) -> np.ndarray:
    value = getattr(stats, name, None) if name not in stats.factors else stats.factors[name]
    assert value is not None, name
    return np.asarray(value)


@pytest.mark.parametrize("split", [False, True])
def test_the_numpy_statistics_equal_the_sql(http: Browser, db_url: str, monkeypatch: pytest.MonkeyPatch,
                                            split: bool) -> None:
    schema, ids = company(http, db_url, f"Scan Co {split}", 30, tricky_operations())

    async def read(db):
        async with db.session(schema) as s:
            await s.execute(text("UPDATE clients SET erased_at = now() WHERE id = :id"), {"id": ids[12]})
            await s.commit()
        monkeypatch.setattr(statistics, "SPLIT_FROM", -1 if split else 10**12)
        out = []
        for today, cutoff in ((TODAY, CUTOFF), (TODAY - timedelta(days=45), TODAY - timedelta(days=200)),
                              (date(2024, 2, 29), date(2023, 12, 31))):
            async with db.session(schema) as s:
                out.append((today, await scan.read_all(s, today, cutoff), await statistics.read_sql(s, today, cutoff)))
        return out

    for today, by_numpy, by_sql in with_database(db_url, read):
        assert ids[12] not in by_sql.ids.tolist() and by_numpy.ids.tolist() == by_sql.ids.tolist(), today
        assert by_sql.n.sum() > 0 and by_sql.factors["payments"].sum() > 0  # the comparison has figures
        for name in (*COLUMNS, *by_sql.factors):
            a, b = _column(by_numpy, name), _column(by_sql, name)
            assert a.dtype.kind == b.dtype.kind, (today, name)
            if a.dtype.kind == "f":  # the same sums in the same order; a tolerance for libm's last bit
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=f"{today} {name}")
            else:
                assert np.array_equal(a, b), (today, name, np.flatnonzero(a != b).tolist())
        assert list(by_numpy.factors) == list(by_sql.factors)


def test_a_company_without_operations_or_clients(http: Browser, db_url: str) -> None:
    schema, ids = company(http, db_url, "Empty Scan Co", 3, [])

    async def read(db):
        async with db.session(schema) as s:
            with_clients = await scan.read_all(s, TODAY, CUTOFF)
            await s.execute(text("DELETE FROM clients"))
            return with_clients, await scan.read_all(s, TODAY, CUTOFF)

    three, none = with_database(db_url, read)
    assert three.ids.tolist() == ids and three.n.tolist() == [0, 0, 0] and three.first_age.tolist() == [-1] * 3
    assert three.months is not None and three.months.tolist() == [0, 0, 0]
    assert len(none) == 0
