"""The growth and payment SQL on real PostgreSQL: companies built by hand, figures checked against
what their construction implies (growth.py, dashboard.py, payments.py, reliability.py, rfm.py)."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from saas.analytics import dashboard, statistics
from saas.analytics.dashboard import growth_figures, store_dashboard
from saas.clients.operations import refresh_all_metrics
from testkit import Browser, with_database

TODAY = date(2026, 6, 30)


def schema_of(db_url: str, slug: str) -> str:
    async def go(db):
        async with db.session() as s:
            return (await s.execute(text("SELECT schema_name FROM shared.tenants WHERE slug = :s"),
                                    {"s": slug})).scalar_one()

    return with_database(db_url, go)


def _slug_of(db_url: str, schema: str) -> str:
    async def go(db):
        async with db.session() as s:
            return (await s.execute(text("SELECT slug FROM shared.tenants WHERE schema_name = :s"),
                                    {"s": schema})).scalar_one()

    return with_database(db_url, go)


def company(http: Browser, db_url: str, name: str, clients: int,
            operations: list[tuple[int, str, date, float, date | None, date | None]]) -> tuple[str, list[int]]:
    """A new company with `clients` clients and operations (client index, kind, date, amount, due, paid)."""
    schema = schema_of(db_url, http.signup(name))

    async def go(db) -> list[int]:
        async with db.session(schema) as s:
            raw = (await (await s.connection()).get_raw_connection()).driver_connection
            ids = [r["id"] for r in await raw.fetch(
                "INSERT INTO clients (last_name, first_name) SELECT 'Client', g::text "
                "FROM generate_series(1, $1) g ORDER BY g RETURNING id", clients)]
            rows = [(ids[i], kind, when, amount, due, paid) for i, kind, when, amount, due, paid in operations]
            await raw.copy_records_to_table(
                "operations", records=rows, schema_name=schema,
                columns=["client_id", "kind", "occurred_on", "amount", "due_on", "paid_on"])
            await refresh_all_metrics(s)
        return ids

    return schema, with_database(db_url, go)


def figures(db_url: str, schema: str, today: date = TODAY, *, covered: bool = True) -> dict:
    """The growth figures by their own SQL, checked equal to those the refresh counts from the
    statistics pass's bit sets (when they cover the company: `covered`)."""
    async def go(db):
        async with db.session(schema) as s:
            stats = await statistics.read(s, today, today - timedelta(weeks=13))
            return await growth_figures(s, today), dashboard.covers(stats), dashboard.figures_from_stats(stats)

    by_sql, covers, by_stats = with_database(db_url, go)
    assert covers == covered
    if covered:
        assert by_stats == by_sql
    return by_sql


def yearly_purchases(cohorts: dict[int, int], history_from: date, today: date) -> list[tuple]:
    """Each client buys once a year on its own day of the year (spread evenly within its cohort),
    from its cohort's year on; nothing before `history_from` (the history was imported from there)."""
    ops, index = [], 0
    for year, size in sorted(cohorts.items()):
        for j in range(size):
            day = (j * 365) // size
            for y in range(year, today.year + 1):
                when = date(y, 1, 1) + timedelta(days=day)
                if history_from <= when <= today:
                    ops.append((index, "sale", when, 1000.0, None, None))
            index += 1
    return ops


def test_a_flat_base_whose_history_starts_in_november_shows_no_growth(http: Browser, db_url: str) -> None:
    ops = yearly_purchases({2015: 1000}, date(2019, 11, 1), TODAY)
    # returns never count as activity: every client also returns something in March 2023, and 100
    # more clients have returns only
    ops += [(i, "return", date(2023, 3, 10), 50.0, None, None) for i in range(1000)]
    ops += [(1000 + i, "return", date(2025, 2, 1) + timedelta(days=i), 80.0, None, None) for i in range(100)]
    schema, _ids = company(http, db_url, "Flat Co", 1100, ops)
    slug = _slug_of(db_url, schema)
    f = figures(db_url, schema)

    assert f["history_start"] == "2019-11-01" and f["first_complete_year"] == 2020
    years = {p["key"]: p for p in f["years"]}
    assert sorted(years) == list(range(2020, 2027))  # the partial 2019 is not in the series
    assert all(years[y]["active"] == 1000 for y in range(2020, 2026))
    assert years[2026]["partial"] and years[2026]["rate"] is None
    assert years[2020]["rate"] is None  # nothing whole before it
    s = f["summary"]
    assert (s["first_year"], s["last_year"]) == (2020, 2025)
    assert s["cagr"] == pytest.approx(0.0, abs=0.05) and s["mean_rate"] == pytest.approx(0.0, abs=0.05)
    # this year to date against the same dates of 2025: the same clients (those whose day is before 1 July)
    ytd = f["ytd"]
    assert ytd["through"] == "2026-06-30" and ytd["last_year_through"] == "2025-06-30"
    assert ytd["active"] == ytd["last_year_active"] == sum(1 for j in range(1000) if (j * 365) // 1000 <= 180)
    assert ytd["rate"] == pytest.approx(0.0, abs=0.05)

    # the dashboard says which years it compares, and shows the monthly new/lost chart
    async def store(db):
        async with db.session(schema) as s:
            await store_dashboard(s, TODAY, "rules", 0, 1000)

    with_database(db_url, store)
    page = http.get(f"/t/{slug}/", headers={"Accept-Language": "en"}).text
    assert "your history starts on Nov 1, 2019, so the yearly figures start with 2020" in page
    assert "CAGR covers the complete years 2020–2025: active clients went from 1,000 to 1,000, 0.0% a year" in page
    assert "2026 is still running: it is compared with the same dates of last year." in page
    assert 'aria-label="New and lost clients per month"' in page


def test_a_base_growing_ten_percent_a_year_shows_ten_percent(http: Browser, db_url: str) -> None:
    sizes = {y: round(1000 * 1.1 ** (y - 2019)) for y in range(2019, 2027)}
    cohorts = {2019: sizes[2019], **{y: sizes[y] - sizes[y - 1] for y in range(2020, 2027)}}
    schema, _ids = company(http, db_url, "Growing Co", sum(cohorts.values()),
                           yearly_purchases(cohorts, date(2019, 11, 1), TODAY))
    f = figures(db_url, schema)
    s = f["summary"]
    assert (s["first_year"], s["last_year"]) == (2020, 2025)
    assert (s["first_active"], s["last_active"]) == (sizes[2020], sizes[2025])
    assert s["cagr"] == pytest.approx(0.10, abs=0.02) and s["mean_rate"] == pytest.approx(0.10, abs=0.02)
    assert f["ytd"]["rate"] == pytest.approx(0.10, abs=0.02)
    # the new clients of each whole year are its cohort (first purchase ever)
    assert [p["new"] for p in f["years"] if not p["partial"]][1:] == [cohorts[y] for y in range(2021, 2026)]


def test_the_monthly_series_does_not_count_old_monthly_buyers_as_new(http: Browser, db_url: str) -> None:
    def months(first: date, last: date):
        d = first
        while d <= last:
            yield d
            d = date(d.year + (d.month == 12), d.month % 12 + 1, d.day)

    ops = [(i, "sale", d, 500.0, None, None) for i in range(200) for d in months(date(2015, 1, 5), TODAY)]
    ops += [(200 + i, "sale", d, 500.0, None, None) for i in range(50) for d in months(date(2024, 3, 5), TODAY)]
    ops += [(250 + i, "return", d, 100.0, None, None) for i in range(30) for d in months(date(2023, 1, 7), TODAY)]
    schema, _ids = company(http, db_url, "Monthly Co", 280, ops)
    f = figures(db_url, schema)
    series = f["months"]
    keys = [p["key"] for p in series]
    # 36 complete months: June 2023 .. May 2026 (the running June 2026 is left out)
    assert len(series) == 36 and keys[0] == 2023 * 12 + 5 and keys[-1] == 2026 * 12 + 4
    assert series[0]["new"] == 0 and series[0]["lost"] == 0  # they have bought every month since 2015
    by_key = {p["key"]: p for p in series}
    assert by_key[2024 * 12 + 2]["new"] == 50  # March 2024: the first purchase ever of 50 clients
    assert sum(p["new"] for p in series) == 50 and all(p["lost"] == 0 for p in series)
    assert by_key[2024 * 12 + 1]["active"] == 200 and by_key[2024 * 12 + 2]["active"] == 250


def test_no_purchases_gives_no_growth_figures(http: Browser, db_url: str) -> None:
    schema, _ids = company(http, db_url, "Returns Only Co", 3,
                           [(0, "return", date(2025, 5, 1), 10.0, None, None)])
    assert figures(db_url, schema) is None


def test_payment_sums_follow_the_definition(http: Browser, db_url: str) -> None:
    t = TODAY
    ago = lambda n: t - timedelta(days=n)
    ops = [
        (0, "sale", ago(60), 1000.0, ago(30), ago(29)),    # one day late
        (0, "sale", ago(230), 2000.0, ago(200), ago(201)),  # a day early
        (0, "sale", ago(40), 500.0, ago(10), None),         # unpaid, 10 days past due
        (0, "sale", ago(3), 700.0, t + timedelta(days=5), None),  # not due yet: not a due payment
        (0, "service", ago(100), 300.0, None, None),        # no deferred payment
        (0, "return", ago(20), 300.0, None, None),
        (2, "sale", ago(15), 400.0, ago(1), None),          # due yesterday, unpaid
    ]
    schema, ids = company(http, db_url, "Payments Co", 3, ops)

    async def go(db):
        async with db.session(schema) as s:
            every, some = await statistics.read(s, t, t), await statistics.read(s, t, t, [ids[2], ids[0]])
            return every, some

    every, some = with_database(db_url, go)
    assert every.ids.tolist() == ids and some.ids.tolist() == [ids[0], ids[2]]
    for name, values in some.factors.items():  # live scoring reads the same sums for a few clients
        assert values.tolist() == pytest.approx(every.factors[name][[0, 2]].tolist(), rel=1e-12), name
    f = every.factors
    w = lambda days: 0.5 ** (days / 180)
    a = {k: v[0] for k, v in f.items()}
    assert (a["payments"], a["late"], a["returns"], a["deals"], a["overdue_items"]) == (3, 2, 1, 5, 1)
    assert a["wa"] == pytest.approx(w(30) * 1000 + w(200) * 2000 + w(10) * 500)
    assert a["wa_terms"] == pytest.approx(w(30) * 1000 * 1 + w(10) * 500 * 10)
    assert a["wa_days"] == pytest.approx(w(30) * 1000 * 1 + w(10) * 500 * 10)
    assert a["w"] == pytest.approx(w(30) + w(200) + w(10))
    assert a["w_terms"] == pytest.approx(w(30) * 1 + w(10) * 10)
    assert (a["due_amount"], a["overdue"], a["overdue_days"]) == pytest.approx((3500, 500, 500 * 10))
    assert all(v[1] == 0 for v in f.values())  # no operations at all
    c = {k: v[2] for k, v in f.items()}
    assert (c["payments"], c["late"], c["overdue"], c["overdue_days"]) == pytest.approx((1, 1, 400, 400))


def test_refresh_writes_not_enough_history_and_ranks_buyers_only(http: Browser, db_url: str) -> None:
    from saas.analytics.scoring import refresh

    rng = np.random.default_rng(11)
    ops = []
    for i in range(40):  # buyers, some with deferred payments
        for _k in range(int(rng.integers(1, 6))):
            when = TODAY - timedelta(days=int(rng.integers(1, 700)))
            due = when + timedelta(days=14) if i % 2 else None
            settled = due is not None and due < TODAY - timedelta(days=20)
            paid = (due + timedelta(days=int(rng.integers(0, 20)))) if settled else None
            ops.append((i, "sale", when, float(rng.integers(100, 5000)), due, paid))
    schema, ids = company(http, db_url, "Ranked Co", 40, ops)

    async def scores(db):
        async with db.session(schema) as s:
            await refresh(s, today=TODAY)
        async with db.session(schema) as s:
            rows = await s.execute(text("SELECT client_id, r_score, f_score, m_score, segment, risk_group, "
                                        "risk_factors->>'payments' FROM client_scores ORDER BY client_id"))
            return {r[0]: r[1:] for r in rows}

    before = with_database(db_url, scores)
    assert {r[4] for cid, r in before.items() if cid in ids[::2]} == {"unknown"}  # no deferred payment at all
    assert "unknown" not in {r[4] for cid, r in before.items() if int(r[5]) >= 3}

    async def add_prospects(db):
        async with db.session(schema) as s:
            await s.execute(text("INSERT INTO clients (last_name, first_name) "
                                 "SELECT 'Prospect', g::text FROM generate_series(1, 40) g"))

    with_database(db_url, add_prospects)
    after = with_database(db_url, scores)
    assert {cid: r[:4] for cid, r in after.items() if cid in before} == {cid: r[:4] for cid, r in before.items()}
    prospects = [r for cid, r in after.items() if cid not in before]
    assert len(prospects) == 40 and {r[:4] for r in prospects} == {(0, 0, 0, "prospects")}
    assert {r[4] for r in prospects} == {"unknown"}


def test_statistics_count_purchase_days_not_rows(http: Browser, db_url: str) -> None:
    """The one pass over operations: several operations on a day are one purchase, a return is never
    a purchase day (before the first purchase, on a purchase day, between two sales of one day),
    and the first purchase day's total holds every sale of that day."""
    d0, d1, d2, d3, cutoff = date(2025, 1, 10), date(2025, 2, 1), date(2025, 6, 15), date(2026, 5, 1), date(2026, 3, 31)
    ops = [
        (0, "return", d0, 40.0, None, None), (0, "sale", d1, 100.0, None, None), (0, "service", d1, 50.0, None, None),
        (0, "return", d1, 30.0, None, None), (0, "sale", d2, 70.0, None, None),
        (0, "sale", d3, 10.0, None, None), (0, "return", d3, 20.0, None, None), (0, "sale", d3, 5.0, None, None),
        (1, "return", d2, 15.0, None, None),                                            # only returns
        (3, "sale", date(2020, 1, 1), 9.0, None, None), (3, "sale", cutoff, 11.0, None, None),  # on the cut-off
        (3, "sale", TODAY + timedelta(days=1), 99.0, None, None),                        # after today: not read
    ]
    schema, ids = company(http, db_url, "Days Co", 4, ops)

    async def go(db):
        async with db.session(schema) as s:
            return await statistics.read(s, TODAY, cutoff)

    st = with_database(db_url, go)
    assert st.ids.tolist() == ids
    age = lambda d, since=TODAY: (since - d).days
    assert st.n.tolist() == [3, 0, 0, 2] and st.n_cal.tolist() == [2, 0, 0, 2]
    assert st.first_age.tolist() == [age(d1), -1, -1, age(date(2020, 1, 1))]
    assert st.last_age.tolist() == [age(d3), -1, -1, age(cutoff)]
    assert st.last_cal_age.tolist() == [age(d2, cutoff), -1, -1, 0]
    assert st.gross.tolist() == [235.0, 0.0, 0.0, 20.0] and st.first_amount.tolist() == [150.0, 0.0, 0.0, 9.0]
    assert st.returned.tolist() == [90.0, 15.0, 0.0, 0.0]
    assert st.deals.tolist() == [5, 0, 0, 2] and st.factors["returns"].tolist() == [3, 1, 0, 0]
    assert st.holdout.tolist() == [1.0, 0.0, 0.0, 0.0] and st.repeat_mean[0] == pytest.approx((235 - 150) / 2)


def test_growth_from_the_statistics_pass_equals_the_sql(http: Browser, db_url: str) -> None:
    """A company with irregular buying (several purchases a day, returns, clients who only
    returned, long gaps, history from mid-2018): the counts from the bit sets equal the SQL's, on
    ordinary days, on a leap day and at both ends of a year."""
    rng = np.random.default_rng(21)
    ops: list[tuple] = []
    start = date(2018, 7, 15)
    for i in range(120):
        first = start + timedelta(days=int(rng.integers(0, (TODAY - start).days)))
        days = sorted({first, *(first + timedelta(days=int(g)) for g in rng.integers(0, 2000, rng.integers(0, 12)))})
        for day in days:
            if day > TODAY:
                continue
            kind = "return" if i % 17 == 0 else "sale"
            ops += [(i, kind, day, float(rng.integers(10, 900)), None, None)] * int(rng.integers(1, 3))
            if rng.random() < 0.1:
                ops.append((i, "return", day, 5.0, None, None))
    schema, _ids = company(http, db_url, "Irregular Co", 120, ops)
    for today in (TODAY, date(2024, 2, 29), date(2024, 12, 31), date(2025, 1, 1)):
        f = figures(db_url, schema, today)
        assert f["years"] and f["months"] and f["cohorts"]  # every series has figures to compare


def test_growth_falls_back_to_the_sql_beyond_the_bit_sets(http: Browser, db_url: str) -> None:
    """No new client for 15 years (the cohorts shown began more than statistics.OLDER quarters ago),
    or a purchase older than statistics.HISTORY_YEARS: the dashboard's figures come from the SQL."""
    old_cohorts = yearly_purchases({2005: 30, 2010: 20}, date(2005, 1, 1), TODAY)
    very_old = yearly_purchases({2023: 40}, date(2023, 1, 1), TODAY)
    very_old.append((40, "sale", date(1960, 5, 1), 10.0, None, None))
    for name, clients, ops in (("Old Cohorts Co", 50, old_cohorts), ("Since 1960 Co", 41, very_old)):
        schema, _ids = company(http, db_url, name, clients, ops)
        expected = figures(db_url, schema, covered=False)

        async def store(db, schema=schema, clients=clients):
            async with db.session(schema) as s:
                stats = await statistics.read(s, TODAY, TODAY - timedelta(weeks=13))
                await store_dashboard(s, TODAY, "rules", 0, clients, stats)
            async with db.session(schema) as s:
                return (await s.execute(text("SELECT value FROM settings WHERE key = 'dashboard'"))).scalar_one()

        stored = with_database(db_url, store)
        assert stored["years"] == expected["years"] and stored["cohorts"] == [list(c) for c in expected["cohorts"]]
        assert stored["history_start"] == expected["history_start"]


def test_a_split_pass_reads_what_one_pass_reads(http: Browser, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big company's statistics are read in id ranges by several connections in one exported
    snapshot: every figure equals the single pass's; a transaction that has written reads alone
    (the others could not see its rows), and its own new row counts."""
    rng = np.random.default_rng(7)
    ops = [(int(i), str(k), TODAY - timedelta(days=int(d)), float(a), None, None)
           for i, k, d, a in zip(rng.integers(0, 300, 2000), rng.choice(["sale", "service", "return"], 2000),
                                 rng.integers(0, 900, 2000), rng.integers(1, 500, 2000), strict=True)]
    schema, ids = company(http, db_url, "Split pass", 300, ops)

    async def read(db, split: bool, write_first: bool = False) -> tuple[statistics.Stats, int]:
        monkeypatch.setattr(statistics, "SPLIT_FROM", -10 if split else 10**12)
        calls = 0
        real = statistics.same_snapshot_readers

        def counting(db, count):
            nonlocal calls
            calls += 1
            return real(db, count)

        monkeypatch.setattr(statistics, "same_snapshot_readers", counting)
        async with db.session(schema) as s:
            if write_first:
                await s.execute(text("INSERT INTO operations (client_id, kind, occurred_on, amount) "
                                     "VALUES (:c, 'sale', :d, 10)"), {"c": ids[-1], "d": TODAY})
            stats = await statistics.read(s, TODAY, TODAY - timedelta(weeks=13))
            await s.rollback()
        return stats, calls

    async def go(db):
        return await read(db, False), await read(db, True), await read(db, True, write_first=True)

    (one, one_calls), (split, split_calls), (wrote, _calls) = with_database(db_url, go)
    assert one_calls == 0 and split_calls == 1
    assert one.ids.tolist() == split.ids.tolist() == sorted(ids)
    for name in (*statistics.NAMES,):
        a = getattr(one, name, None)
        a = one.factors[name] if a is None else a
        b = getattr(split, name, None)
        b = split.factors[name] if b is None else b
        assert np.array_equal(a, b), name
    last = sorted(ids).index(ids[-1])
    assert wrote.deals[last] == one.deals[last] + 1  # the transaction's own row: it read alone
