"""The demo company: counts, realistic shares, analytics that find structure, determinism, reset, CLI."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import text

import testkit
from saas.clients.models import Client
from saas.clients.service import reveal_passport
from saas.core.db import Database
from saas.demo import DemoError, DemoResult, create_demo
from testkit import Browser, with_database

N, SEED, TODAY = 1500, 11, date(2026, 6, 30)


async def _schema(db: Database, slug: str) -> str:
    async with db.session() as s:
        query = text("SELECT schema_name FROM shared.tenants WHERE slug = :s")
        return (await s.execute(query, {"s": slug})).scalar_one()


async def _rows(db: Database, slug: str, sql: str, **params) -> list:
    async with db.session(await _schema(db, slug)) as s:
        return list((await s.execute(text(sql), params)).all())


@pytest.fixture(scope="module")
def demo(db_url: str) -> DemoResult:
    return with_database(db_url, lambda db: create_demo(db, clients=N, years=3, seed=SEED, name="Демо Тест",
                                                        today=TODAY))


def test_the_company_its_team_and_dictionaries(demo, db_url) -> None:
    assert demo.slug == "demo-test" and demo.password == f"demo-{SEED}-pass"
    assert demo.counts["clients"] == N and demo.counts["operations"] > N

    async def go(db: Database):
        async with db.session() as s:
            tenant = (await s.execute(text("SELECT id, is_demo, locale, currency FROM shared.tenants WHERE slug = :s"),
                                      {"s": demo.slug})).one()
            team = (await s.execute(text("SELECT u.email, m.role FROM shared.memberships m JOIN shared.users u "
                                         "ON u.id = m.user_id WHERE m.tenant_id = :t"), {"t": tenant.id})).all()
        counts = (await _rows(db, demo.slug, "SELECT (SELECT count(*) FROM clients), "
                              "(SELECT count(*) FROM operations), "
                              "(SELECT array_agg(name ORDER BY name) FROM product_groups), "
                              "(SELECT array_agg(name ORDER BY name) FROM directions)"))[0]
        return tenant, team, counts

    tenant, team, (clients, operations, groups, directions) = with_database(db_url, go)
    assert tenant.is_demo and tenant.locale == "ru" and tenant.currency == "RUB"
    assert sorted(role for _email, role in team) == ["marketer", "owner", "viewer"]
    assert {email for email, _role in team} == {email for email, _role in demo.members}
    assert demo.owner_email == "owner@demo-test.demo.kartoteka.local"
    assert clients == N and operations == demo.counts["operations"]
    assert {"Мебель", "Текстиль", "Посуда", "Освещение"} <= set(groups)
    assert set(directions) == {"Розница", "Интернет-магазин", "Ремонт и сервис", "Опт"}


def test_cards_look_real_and_passports_are_encrypted(demo, db_url) -> None:

    async def go(db: Database):
        cards = await _rows(db, demo.slug, "SELECT last_name, first_name, middle_name, phone, email, birth_date, "
                            "consent, tags, product_group_ids FROM clients")
        async with db.session(await _schema(db, demo.slug)) as s:
            holders = list(await s.scalars(text("SELECT id FROM clients WHERE passport_enc IS NOT NULL")))
            sample = [await s.get(Client, i) for i in holders[:25]]
            leaks = 0
            for c in sample:
                p = reveal_passport(c)
                assert re.fullmatch(r"\d{4}", p["series"]) and re.fullmatch(r"\d{6}", p["number"])
                assert re.fullmatch(r"\d{3}-\d{3}", p["division_code"]) and p["issued_by"]
                issued = date.fromisoformat(p["issued_on"])
                assert date(c.birth_date.year + 14, c.birth_date.month, min(c.birth_date.day, 28)) < issued < TODAY
                assert c.passport_mask.endswith(p["number"][-2:]) and p["number"] not in c.passport_mask
                leaks += (await s.execute(text("SELECT count(*) FROM clients WHERE strpos(clients::text, :d) > 0"),
                                          {"d": p["series"] + p["number"]})).scalar_one()
        return cards, len(holders), leaks

    cards, passports, leaks = with_database(db_url, go)
    assert 0.25 < passports / N < 0.35 and leaks == 0
    assert all(c.middle_name and c.last_name and c.first_name for c in cards)  # patronymics throughout
    female = [c for c in cards if c.middle_name.endswith("на")]
    assert 0.4 < len(female) / N < 0.7
    assert sum(c.last_name.endswith(("а", "я")) for c in female) / len(female) > 0.9  # the gender matches
    phones = [c.phone for c in cards]
    assert len(set(phones)) == N and all(re.fullmatch(r"\+79\d{9}", p) for p in phones)
    emails = [c.email for c in cards if c.email]
    assert len(set(emails)) == len(emails) > 0.8 * N
    assert all(re.fullmatch(r"[a-z0-9.]+@[a-z.]+", e) for e in emails)
    assert all(date(1950, 1, 1) <= c.birth_date <= date(2005, 12, 31) for c in cards)
    share = {ch: sum(ch in c.consent for c in cards) / N for ch in ("email", "sms", "calls")}
    assert 0.5 < share["email"] < 0.7 and 0.3 < share["sms"] < 0.5 and 0.15 < share["calls"] < 0.35, share
    assert all(v["source"] == "demo" and v["at"] for c in cards for v in c.consent.values())
    tags = {t for c in cards for t in c.tags}
    assert {"vip", "опт"} <= tags and 0.02 < sum(bool(c.tags) for c in cards) / N < 0.4
    assert sum(bool(c.product_group_ids) for c in cards) > N / 2


def test_history_has_the_structure_of_a_real_shop(demo, db_url) -> None:
    (sales, services, returns, deferred, late, overdue, winter, summer, metrics_ok) = with_database(
        db_url, lambda db: _rows(db, demo.slug, """
        SELECT count(*) FILTER (WHERE kind = 'sale'), count(*) FILTER (WHERE kind = 'service'),
               count(*) FILTER (WHERE kind = 'return'),
               count(*) FILTER (WHERE kind <> 'return' AND due_on IS NOT NULL),
               count(*) FILTER (WHERE paid_on - due_on >= 20),
               count(*) FILTER (WHERE kind <> 'return' AND paid_on IS NULL AND due_on < :today),
               count(*) FILTER (WHERE extract(month FROM occurred_on) IN (11, 12))::float8 / 2,
               count(*) FILTER (WHERE extract(month FROM occurred_on) IN (6, 7, 8))::float8 / 3,
               (SELECT sum(operations_count) FROM clients) = count(*) FILTER (WHERE kind <> 'return')
        FROM operations""", today=TODAY))[0]
    assert 0.02 < returns / sales < 0.06
    assert 0.08 < services / (sales + services) < 0.25
    assert 0.30 < deferred / (sales + services) < 0.40
    assert late > 0 and overdue > 0
    assert winter > 1.3 * summer  # seasonality: November-December above the summer months
    assert metrics_ok  # refresh_all_metrics ran


def test_the_analytics_find_structure(demo, db_url) -> None:
    assert demo.method in ("pareto-nbd", "bg-nbd", "mbg-nbd")  # the refresh chooses by its backtest

    async def go(db: Database):
        statuses = dict(await _rows(db, demo.slug, "SELECT status, count(*) FROM client_scores GROUP BY status"))
        dashboard = (await _rows(db, demo.slug, "SELECT value FROM settings WHERE key = 'dashboard'"))[0][0]
        fits = await _rows(db, demo.slug, "SELECT model, converged FROM model_fits")
        return statuses, dashboard, fits

    statuses, dashboard, fits = with_database(db_url, go)
    assert sum(statuses.values()) == N
    for status in ("active", "at_risk", "lost"):
        assert statuses.get(status, 0) >= 0.03 * N, statuses
    assert (demo.method, True) in fits
    years = dashboard["years"]
    assert len(years) >= 3 and dashboard["method"] == demo.method
    complete = [y["active"] for y in years if y["key"] < TODAY.year]
    assert complete == sorted(complete) and complete[-1] > complete[0]  # the growth chart rises


def test_the_import_history_has_one_undone_import(demo, db_url) -> None:
    rows = with_database(db_url, lambda db: _rows(db, demo.slug, """
        SELECT i.id, i.kind, i.status, i.filename, i.created_count, i.undone_at,
               (SELECT count(*) FROM clients c WHERE c.import_id = i.id)
        FROM imports i ORDER BY i.id"""))
    assert [r.status for r in rows].count("undone") == 1 and len(rows) == 3
    for r in rows:
        assert r.kind == "clients" and r.filename.endswith((".csv", ".xlsx"))
        if r.status == "undone":
            assert r.undone_at is not None and r.count == 0 and r.created_count > 0  # its rows are gone
        else:
            assert r.status == "done" and r.count == r.created_count > 0
    assert any("1С" in r.filename for r in rows)


def test_reset_recreates_a_demo_and_refuses_other_companies(db_url) -> None:
    from saas.accounts.service import do_create_tenant

    async def go(db: Database):
        old = await create_demo(db, clients=40, years=1, seed=3, name="Сброс")
        old_schema = await _schema(db, old.slug)
        new = await create_demo(db, clients=30, years=1, seed=4, name="Сброс", reset=True)
        async with db.session() as s:
            await do_create_tenant(s, "Настоящая фирма")
        with pytest.raises(DemoError):
            await create_demo(db, clients=10, years=1, seed=1, name="Настоящая фирма", reset=True)
        async with db.session() as s:
            left = (await s.execute(text(
                "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = :old), "
                "(SELECT count(*) FROM shared.tenants WHERE slug LIKE 'sbros%'), "
                "(SELECT count(*) FROM shared.users WHERE email LIKE '%@sbros.demo.kartoteka.local'), "
                "(SELECT count(*) FROM shared.tenants WHERE name = 'Настоящая фирма' AND NOT is_demo)"),
                {"old": old_schema})).one()
        clients = (await _rows(db, new.slug, "SELECT count(*) FROM clients"))[0][0]
        return old, new, tuple(left), clients

    old, new, left, clients = with_database(db_url, go)
    assert new.slug == old.slug == "sbros" and clients == 30
    assert left == (0, 1, 3, 1)  # the old schema is gone, one company, its three users, the real firm kept


def test_cli_prints_a_login_that_works_and_the_same_seed_gives_the_same_company(http: Browser, db_url) -> None:
    result = testkit.cli("demo", "--clients", "300", "--years", "2", "--seed", "1")
    assert result.returncode == 0, result.stderr
    login = re.search(r"^Login: (\S+) / (\S+)$", result.stdout, re.MULTILINE)
    assert login and login.group(2) == "demo-1-pass", result.stdout
    assert "300 clients" in result.stdout and "total" in result.stdout
    r = http.form("/login", {"email": login.group(1), "password": login.group(2)})
    assert r.status_code == 303, r.text
    assert http.get(r.headers["location"]).status_code == 200
    cli_slug = r.headers["location"].split("/")[2]

    # The same seed again (a second company, numbered: the first is not reset) gives the same company.
    again = with_database(db_url, lambda db: create_demo(db, clients=300, years=2, seed=1))
    assert again.slug == f"{cli_slug}-2" and again.name.endswith(" 2")
    cards = "SELECT last_name, first_name, middle_name, phone, email, birth_date FROM clients ORDER BY id LIMIT 20"
    ops = "SELECT count(*), sum(amount), count(DISTINCT occurred_on), count(due_on), count(paid_on) FROM operations"
    scores = "SELECT status, count(*) FROM client_scores GROUP BY 1 ORDER BY 1"
    for query, rows in ((cards, 20), (ops, 1), (scores, 4)):
        a = with_database(db_url, lambda db, q=query: _rows(db, cli_slug, q))
        b = with_database(db_url, lambda db, q=query: _rows(db, again.slug, q))
        assert a == b and len(a) == rows, (a, b)


def test_the_finished_campaign_reports_an_uplift_with_an_interval(demo, db_url) -> None:
    from sqlalchemy import select

    from saas.campaigns import service as campaigns
    from saas.campaigns.models import Campaign

    async def go(db: Database):
        async with db.session(await _schema(db, demo.slug)) as s:
            rows = list(await s.scalars(select(Campaign).order_by(Campaign.id)))
            finished = next(c for c in rows if c.launched_at is not None)
            return rows, await campaigns.results(s, finished)

    rows, result = with_database(db_url, go)
    assert len(rows) == 3 and {c.status for c in rows} == {"ready", "draft"}
    assert result["finished"] and result["target"].members > 100 and result["control"].members > 30
    uplift = result["rate"]
    assert uplift.low < uplift.value < uplift.high
    assert uplift.value > 0.05 and uplift.low > 0  # the simulated response: 24% against 10%
