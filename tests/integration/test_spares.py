"""Spare company schemas (issue 17): a signup renames a ready spare, the worker refills the pool,
concurrent signups get distinct schemas, and `saas migrate` brings spares up to head."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from saas.accounts.service import do_create_tenant
from saas.admin import spares
from saas.admin.migrate import head
from saas.core.db import Database
from testkit import cli, sql, with_database
from tests.integration.processes import wait_for


def names(db_url: str) -> set[str]:
    return {r[0] for r in sql(db_url, "SELECT name FROM shared.spare_schemas")}


def tables(db_url: str, schema: str) -> int:
    return sql(db_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s", {"s": schema})[0][0]


def clear_pool(db_url: str) -> None:
    async def go(db: Database) -> None:
        async with db.engine.begin() as conn:
            for name in (await conn.execute(text("DELETE FROM shared.spare_schemas RETURNING name"))).scalars():
                await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))  # test cleanup: names from our table

    with_database(db_url, go)


def test_signup_renames_a_spare_and_the_worker_refills_the_pool(db_url, http) -> None:
    clear_pool(db_url)
    assert with_database(db_url, lambda db: spares.refill(db.engine, 3)) == 3
    before = names(db_url)
    fresh_tables = tables(db_url, sorted(before)[0])
    assert len(before) == 3 and fresh_tables > 15

    slug = http.signup("Spare Pool Co")
    schema, version = sql(db_url, "SELECT schema_name, schema_version FROM shared.tenants WHERE slug = :s",
                          {"s": slug})[0]
    left = names(db_url)
    assert len(left) == 2 and left < before  # one spare was taken ...
    taken = (before - left).pop()
    assert not sql(db_url, "SELECT 1 FROM pg_namespace WHERE nspname = :n", {"n": taken})  # ... and renamed
    assert version == head("tenant") and tables(db_url, schema) == fresh_tables
    assert sql(db_url, f'SELECT version_num FROM "{schema}".alembic_version')[0][0] == head("tenant")
    assert http.get(f"/t/{slug}/clients").status_code == 200  # the company works

    # the signup queued a refill; a worker runs it and the pool is full again
    r = cli("worker", "--burst")
    assert r.returncode == 0, r.stderr[-2000:]
    wait_for(lambda: len(names(db_url)) == 3, 30, "the refill")


def test_concurrent_creations_get_distinct_schemas(db_url) -> None:
    clear_pool(db_url)
    assert with_database(db_url, lambda db: spares.refill(db.engine, 3)) == 3
    ready = names(db_url)

    async def go(db: Database) -> list[str]:
        async def one(i: int) -> str:
            async with db.session() as s:
                tenant = await do_create_tenant(s, f"Concurrent {i}")
                return tenant.schema_name

        return await asyncio.gather(*(one(i) for i in range(6)))

    schemas = with_database(db_url, go)
    assert len(set(schemas)) == 6
    # every spare that was ready was taken (each take asks the suite's worker for a refill, so new
    # spares may already be back: only the ones ready before count)
    assert ready and not ready & names(db_url)
    counts = {tables(db_url, s) for s in schemas}
    assert len(counts) == 1 and counts.pop() > 15


def test_migrate_upgrades_spares_and_signup_skips_one_behind(db_url, http) -> None:
    clear_pool(db_url)
    # a spare as an older release left it: an empty schema recorded at another version
    sql(db_url, 'CREATE SCHEMA "spare_behind1"')
    sql(db_url, "INSERT INTO shared.spare_schemas (name, version) VALUES ('spare_behind1', 't0001')")
    slug = http.signup("Behind Spare Co")  # not taken: it is not at head
    # (the suite's worker may refill the pool meanwhile: only this spare is followed)
    assert "spare_behind1" in names(db_url) and slug

    r = cli("migrate")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 spare(s)" in r.stdout
    assert sql(db_url, "SELECT version FROM shared.spare_schemas WHERE name = 'spare_behind1'")[0][0] == head("tenant")
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]
    assert tables(db_url, "spare_behind1") == tables(db_url, schema)
    # The oldest spare at head goes first. A refill that began before behind1 was inserted (the
    # suite's worker, after an earlier signup) stamps its spare with its transaction's start, so
    # behind1 is made the oldest explicitly rather than by the order of this test's steps.
    sql(db_url, "UPDATE shared.spare_schemas SET created_at = now() - interval '1 day' WHERE name = 'spare_behind1'")
    http.cookies.clear()
    http.signup("Now It Is Taken Co")
    assert "spare_behind1" not in names(db_url)


def test_counting_the_pool_never_makes_a_signup_skip_a_spare(db_url) -> None:
    """The refill counts ready spares while a signup takes one: the signup still gets the oldest
    (it waits out the count's statement) instead of skipping it and building a schema from the DDL.
    (With both sides locking FOR UPDATE, the take skipped every spare the count had just seen.)"""
    clear_pool(db_url)
    with_database(db_url, lambda db: spares.refill(db.engine, 2))  # (or the suite's worker, holding the lock, does)
    wait_for(lambda: len(names(db_url)) >= 2, 30, "spares in the pool")
    oldest = sql(db_url, "SELECT name FROM shared.spare_schemas ORDER BY created_at, name LIMIT 1")[0][0]

    async def go(db: Database) -> tuple[bool, bool, int]:
        async with db.engine.connect() as counting, db.engine.connect() as signup:
            await counting.begin()
            seen = (await counting.execute(spares._READY, {"v": head("tenant")})).scalar_one()  # locks held
            await signup.begin()
            taking = asyncio.create_task(spares.take(signup, "t_999999991", head("tenant")))
            await asyncio.sleep(0.3)
            waited = not taking.done()  # the take waits for the count's transaction, it does not skip
            await counting.commit()
            took = await taking
            gone = (await signup.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"),
                                         {"n": oldest})).scalar_one() == 0
            await signup.rollback()  # the spare goes back to the pool
            return took and gone, waited, seen

    took_oldest, waited, seen = with_database(db_url, go)
    assert seen >= 2 and waited and took_oldest
    assert oldest in names(db_url)  # rolled back: still a spare
