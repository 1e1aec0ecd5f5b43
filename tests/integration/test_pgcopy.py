"""Binary COPY built by numpy (saas.analytics.pgcopy) reads back in PostgreSQL as the same values
(COPY keeps no row order and the encoder groups rows by layout, so rows are compared by `b`)."""
from __future__ import annotations

import asyncio
import io
import json
from decimal import Decimal

import numpy as np

from saas.analytics import pgcopy
from saas.core.db import Database


def test_every_type_round_trips(db_url: str) -> None:
    ints = np.array([1, -7, 2**40, 0])
    small = np.array([5, 3, 0, -12])  # the order read back
    floats = np.array([0.5, np.nan, -1e-9, 123456.789])
    money = np.array([1234.5, -0.01, np.nan, 999999999999.99])
    words = np.array(["active", "at_risk", "active", "lost"], dtype=object)
    factors = {"payments": np.array([3.0, 0.0, 12.0, 1.0]), "overdue": np.array([8000.0, 0.0, 12.346, np.nan]),
               "days": np.array([-2.5, 0.1, 100.0, 7.0])}
    data = pgcopy.encode([pgcopy.int8(ints), pgcopy.int4(small), pgcopy.float8(floats), pgcopy.numeric2(money),
                          pgcopy.text(words), pgcopy.jsonb(factors)], 4)

    async def go():
        db = Database(db_url, pool_size=1)
        try:
            async with db.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                await raw.execute("CREATE TEMP TABLE t (a bigint, b int, c float8, d numeric(14, 2), e text, f jsonb)")
                await raw.copy_to_table("t", source=io.BytesIO(data), format="binary")
                # rows may come in any order
                return [tuple(r) for r in await raw.fetch("SELECT * FROM t ORDER BY b DESC")]
        finally:
            await db.dispose()

    rows = asyncio.run(go())
    assert [r[0] for r in rows] == ints.tolist() and [r[1] for r in rows] == small.tolist()
    assert rows[0][2] == 0.5 and rows[1][2] is None and rows[3][2] == 123456.789
    assert [r[3] for r in rows] == [Decimal("1234.50"), Decimal("-0.01"), None, Decimal("999999999999.99")]
    assert [r[4] for r in rows] == words.tolist()
    stored = [r[5] if isinstance(r[5], dict) else json.loads(r[5]) for r in rows]
    assert stored[0] == {"payments": 3, "overdue": 8000, "days": -2.5}
    assert stored[2] == {"payments": 12, "overdue": 12.35, "days": 100}  # two decimals kept
    assert stored[3]["overdue"] is None and stored[1] == {"payments": 0, "overdue": 0, "days": 0.1}


def test_many_nullable_fields_and_many_rows(db_url: str) -> None:
    """Nine nullable columns (more layouts than one 64-bit key holds) over 5,000 rows."""
    rng = np.random.default_rng(4)
    n = 5000
    cols = [np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)) for _ in range(9)]
    data = pgcopy.encode([pgcopy.int8(np.arange(n))] + [pgcopy.float8(c) for c in cols], n)

    async def go():
        db = Database(db_url, pool_size=1)
        try:
            async with db.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                await raw.execute("CREATE TEMP TABLE m (i bigint, " + ", ".join(f"c{k} float8" for k in range(9)) + ")")
                await raw.copy_to_table("m", source=io.BytesIO(data), format="binary")
                return [tuple(r) for r in await raw.fetch("SELECT * FROM m ORDER BY i")]
        finally:
            await db.dispose()

    rows = asyncio.run(go())
    assert [r[0] for r in rows] == list(range(n))
    for k in range(9):
        got = np.array([np.nan if r[k + 1] is None else r[k + 1] for r in rows])
        assert np.array_equal(got, cols[k], equal_nan=True)


def test_a_stream_of_small_chunks_with_numbers_of_every_width(db_url: str) -> None:
    """The stream in chunks of 700 rows reads back as one COPY; jsonb numbers of every width and
    sign (right-aligned in one width) read back rounded to two decimals, NaN as null."""
    rng = np.random.default_rng(9)
    n = 5000
    scale = 10.0 ** rng.integers(-3, 13, n)
    values = np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n) * scale)
    words = rng.choice(np.array(["new", "active", "at_risk"], dtype=object), n)
    fields = [pgcopy.int8(np.arange(n)), pgcopy.text(words), pgcopy.jsonb({"v": values, "k": np.arange(n) % 7.0})]
    parts = list(pgcopy.chunks(fields, n, size=700))
    assert len(parts) == 2 + 8  # header, 8 chunks, trailer

    async def go():
        db = Database(db_url, pool_size=1)
        try:
            async with db.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                await raw.execute("CREATE TEMP TABLE s (i bigint, w text, f jsonb)")

                async def stream():
                    for part in parts:
                        yield part

                await raw.copy_to_table("s", source=stream(), format="binary")
                return [tuple(r) for r in await raw.fetch("SELECT i, w, f::text FROM s ORDER BY i")]
        finally:
            await db.dispose()

    rows = asyncio.run(go())
    assert [r[0] for r in rows] == list(range(n)) and [r[1] for r in rows] == words.tolist()
    stored = [json.loads(r[2]) for r in rows]
    assert [s["k"] for s in stored] == (np.arange(n) % 7).tolist()
    for s, v in zip(stored, values, strict=True):
        assert s["v"] is None if np.isnan(v) else s["v"] == float(Decimal(str(round(v, 2))))


def test_jsonb_leaves_zeros_out_but_the_last_name(db_url: str) -> None:
    """omit_zeros: a figure that rounds to 0 is not written (readers take it as 0); NaN stays null;
    the last name is written in every row, zero or not, so every object is valid JSON."""
    factors = {"late": np.array([0.0, 2.0, 0.001, np.nan]), "overdue": np.array([0.0, 0.0, 12.5, -0.004]),
               "payments": np.array([0.0, 3.0, 1.0, 0.0])}
    data = pgcopy.encode([pgcopy.int4(np.arange(4)), pgcopy.jsonb(factors, omit_zeros=True)], 4)

    async def go():
        db = Database(db_url, pool_size=1)
        try:
            async with db.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                await raw.execute("CREATE TEMP TABLE z (i int, f jsonb)")
                await raw.copy_to_table("z", source=io.BytesIO(data), format="binary")
                return [r[0] for r in await raw.fetch("SELECT f::text FROM z ORDER BY i")]
        finally:
            await db.dispose()

    assert [json.loads(r) for r in asyncio.run(go())] == [
        {"payments": 0}, {"late": 2, "payments": 3}, {"overdue": 12.5, "payments": 1}, {"late": None, "payments": 0}]
