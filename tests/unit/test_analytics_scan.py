"""scan.py without a server: its row format, its batching and its reduction against a plain
per-client computation of the definitions (the SQL comparison is tests/integration/test_analytics_scan.py)."""
from __future__ import annotations

import asyncio
import struct
from datetime import date, timedelta

import numpy as np
import pytest

from saas.analytics import scan, statistics
from saas.analytics.reliability import HALF_LIFE_DAYS, TERMS_FULL_DAYS

TODAY, CUTOFF = date(2026, 6, 30), date(2026, 3, 31)
DAY = lambda d: (d - scan.EPOCH).days


def rows_of(records: list[tuple[int, int, bool, int, int, int]]) -> np.ndarray:
    """ROW rows as PostgreSQL sends them: (client, day, return, due, paid, cents)."""
    rows = np.zeros(len(records), dtype=scan.ROW)
    for name, value in scan._LAYOUT.items():
        rows[name] = value
    for i, (client, day, ret, due, paid, cents) in enumerate(records):
        whole, frac = divmod(cents, 100)
        whole += 10**12
        rows[i]["client"], rows[i]["day"], rows[i]["ret"], rows[i]["due"], rows[i]["paid"] = client, day, ret, due, paid
        rows[i]["digits"] = [whole // 10**12, whole // 10**8 % 10**4, whole // 10**4 % 10**4, whole % 10**4,
                             frac * 100 + 10]
    return rows


def test_rows_are_read_with_exact_cents_and_a_wrong_layout_is_refused() -> None:
    cents = [1, 1234, 99999999999999, 100]
    columns = scan._columns(rows_of([(7, 100, False, scan.NONE, scan.NONE, c) for c in cents]))
    assert columns["cents"].tolist() == cents and columns["client"].tolist() == [7] * 4
    assert columns["due"].tolist() == [scan.NONE] * 4 and not columns["ret"].any()
    bad = rows_of([(7, 100, False, scan.NONE, scan.NONE, 100)])
    bad["ndigits"] = 4  # a numeric PostgreSQL shortened
    with pytest.raises(ValueError, match="layout"):
        scan._columns(bad)


def test_a_stream_is_taken_in_fixed_batches_whatever_its_chunks() -> None:
    rows = rows_of([(i, 100 + i, False, scan.NONE, scan.NONE, 100 * i) for i in range(1, 8)])
    stream = b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + struct.pack(">h", -1)
    for chunk in (1, 5, 64, len(stream)):
        taken: list[list[int]] = []
        reader = scan._Rows(scan.ROW, lambda r: taken.append(r["client"].tolist()), batch=3)  # noqa: B023
        for lo in range(0, len(stream), chunk):
            asyncio.run(reader(stream[lo:lo + chunk]))
        reader.done()
        assert taken == [[1, 2, 3], [4, 5, 6], [7]], chunk
    reader = scan._Rows(scan.ROW, lambda r: None)
    asyncio.run(reader(stream[:-3]))
    with pytest.raises(ValueError, match="layout"):
        reader.done()


def random_rows(seed: int, clients: int = 40, count: int = 600) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    day = DAY(TODAY) - rng.integers(-10, 1500, count)
    day[:5] = DAY(date(1950, 1, 1))  # before the bit sets' history
    credit = rng.random(count) < 0.4
    due = np.where(credit, day + 14, scan.NONE)
    paid = np.where(credit & (rng.random(count) < 0.6), due + rng.integers(-14, 60, count), scan.NONE)
    return {"client": rng.integers(1, clients + 3, count),  # ids above `clients` are not clients (erased)
            "day": day.astype(np.int32), "ret": rng.random(count) < 0.15,
            "due": due.astype(np.int32), "paid": paid.astype(np.int32), "cents": rng.integers(1, 500_000, count)}


def reference(ids: list[int], rows: dict[str, np.ndarray]) -> dict[str, list]:
    """The definitions (statistics.py, payments.py), one client and one row at a time."""
    t, c = DAY(TODAY), DAY(CUTOFF)
    start, months_ago, years_ago, quarters_ago = statistics.growth_lookup(TODAY)
    s = DAY(start)
    ly = (DAY(date(TODAY.year - 1, 1, 1)), DAY(date(TODAY.year - 1, TODAY.month, TODAY.day)))
    out: dict[str, list] = {}
    for cid in ids:
        mine = [i for i in range(len(rows["client"])) if rows["client"][i] == cid and rows["day"][i] <= t]
        bought = [i for i in mine if not rows["ret"][i]]
        days = sorted({int(rows["day"][i]) for i in bought})
        first = days[0] if days else None
        cal = [d for d in days if d <= c]
        money = lambda i: int(rows["cents"][i]) / 100
        figures = {
            "n": len(days), "n_cal": len(cal), "first_age": t - first if days else -1,
            "last_age": t - days[-1] if days else -1, "last_cal_age": c - cal[-1] if cal else -1,
            "gross": sum(int(rows["cents"][i]) for i in bought) / 100,
            "first_amount": sum(int(rows["cents"][i]) for i in bought if rows["day"][i] == first) / 100,
            "returned": sum(int(rows["cents"][i]) for i in mine if rows["ret"][i]) / 100,
            "returns": sum(1 for i in mine if rows["ret"][i]), "deals": len(bought),
            "months": sum(1 << m for m in {months_ago[d - s] for d in days if d >= s}),
            "years": sum(1 << y for y in {years_ago[d - s] for d in days if d >= s}),
            "quarters": sum(1 << q for q in {min(quarters_ago[first - s] - quarters_ago[d - s], statistics.OLDER)
                                             if first >= s else statistics.OLDER for d in days}),
            "ytd_last": any(ly[0] <= d <= ly[1] for d in days),
        }
        sums = dict.fromkeys(("payments", "late", "wa", "wa_terms", "wa_days", "w", "w_terms", "w_days",
                              "due_amount", "overdue", "overdue_days", "overdue_items"), 0.0)
        for i in mine:
            due, paid = int(rows["due"][i]), int(rows["paid"][i])
            if rows["ret"][i] or due == scan.NONE or (paid == scan.NONE and due >= t):
                continue
            a, d = money(i), float(max(min(t if paid == scan.NONE else paid, t) - due, 0))
            age = float(max(t - due, 0))
            w = 0.5 ** (age / HALF_LIFE_DAYS)
            terms = min(d, TERMS_FULL_DAYS)
            for name, value in (("payments", 1), ("late", d > 0), ("wa", w * a), ("wa_terms", w * a * terms),
                                ("wa_days", w * a * d), ("w", w), ("w_terms", w * terms), ("w_days", w * d),
                                ("due_amount", a)):
                sums[name] += value
            if paid == scan.NONE:
                sums["overdue"] += a
                sums["overdue_days"] += a * age
                sums["overdue_items"] += 1
        for name, value in {**figures, **sums}.items():
            out.setdefault(name, []).append(value)
    for name in ("months", "years", "quarters"):  # as int8: bit 63 is the sign
        out[name] = [v - 2**64 if v >= 2**63 else v for v in out[name]]
    return out


FLOATS = {"gross", "first_amount", "returned", "wa", "wa_terms", "wa_days", "w", "w_terms", "w_days", "due_amount",
          "overdue", "overdue_days"}


def same(got: dict[str, list], expected: dict[str, list]) -> None:
    assert set(got) == set(expected)
    for name, values in expected.items():
        if name in FLOATS:  # sums in another order: the last bits may differ
            assert got[name] == pytest.approx(values, rel=1e-12, abs=0), name
        else:
            assert got[name] == values, name


def as_dict(stats: statistics.Stats) -> dict[str, list]:
    names = ("n", "n_cal", "first_age", "last_age", "last_cal_age", "gross", "first_amount", "returned", "months",
             "years", "quarters", "ytd_last")
    return {**{k: getattr(stats, k).tolist() for k in names}, **{k: v.tolist() for k, v in stats.factors.items()}}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reduction_follows_the_definitions_in_any_batches(seed: int) -> None:
    rows = random_rows(seed)
    ids = np.arange(1, 41, dtype=np.int64)
    expected = reference(ids.tolist(), rows)
    whole = as_dict(scan.reduce(ids, TODAY, CUTOFF, [rows]))
    cuts = [0, 77, 78, 300, len(rows["client"])]
    batched = as_dict(scan.reduce(ids, TODAY, CUTOFF, [{k: v[a:b] for k, v in rows.items()}
                                                       for a, b in zip(cuts, cuts[1:], strict=False)]))
    assert sum(expected["n"]) > 0 and sum(expected["payments"]) > 0 and sum(expected["overdue_items"]) > 0
    same(whole, expected)
    same(batched, expected)


def test_sparse_ids_and_no_rows() -> None:
    rows = random_rows(4)
    rows["client"] = rows["client"] * 1000  # ids far apart: looked up by search, not a table
    ids = np.arange(1, 41, dtype=np.int64) * 1000
    same(as_dict(scan.reduce(ids, TODAY, CUTOFF, [rows])), reference(ids.tolist(), rows))
    empty = scan.reduce(ids[:3], TODAY, CUTOFF - timedelta(days=1), [])
    assert empty.n.tolist() == [0, 0, 0] and empty.first_age.tolist() == [-1] * 3
    assert empty.factors["w"].tolist() == [0.0] * 3 and empty.months is not None and not empty.months.any()
