"""Schema migrations: the shared schema, then every tenant schema, and fast tenant creation.

Alembic scripts live in migrations/shared and migrations/tenant. Both are run here through
`EnvironmentContext` directly, so the script directory is read once and a tenant upgrade costs one
transaction. Tenant scripts use unqualified names; the transaction's search_path picks the schema.
"""
from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from saas.core.db import bind, ident, schema_for
from saas.core.engine import is_citus
# Every table of every domain in the metadata: each import registers its module's tables.
from saas.accounts import models as _accounts  # noqa: F401 - registers its tables
from saas.admin import models as _admin  # noqa: F401 - registers its tables
from saas.admin import spares
from saas.analytics import models as _analytics  # noqa: F401 - registers its tables
from saas.campaigns import models as _campaigns  # noqa: F401 - registers its tables
from saas.clients import models as _clients  # noqa: F401 - registers its tables
from saas.core import models as _core  # noqa: F401 - registers its tables
from saas.core.db import SharedBase, TenantBase

shared_metadata = SharedBase.metadata
tenant_metadata = TenantBase.metadata

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"


@functools.cache
def _config(name: str, location: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", location or str(MIGRATIONS / name))
    return config


@functools.cache
def script_directory(name: str, location: str | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(_config(name, location))


def head(name: str, location: str | None = None) -> str:
    return script_directory(name, location).get_current_head()


def _upgrade(sync_conn: Connection, name: str, schema: str, location: str | None) -> None:
    script = script_directory(name, location)

    def upgrade(rev: str, context: MigrationContext) -> list[RevisionStep]:
        return script._upgrade_revs("head", rev)  # noqa: SLF001 - as alembic's own command.upgrade does

    env = EnvironmentContext(_config(name, location), script, fn=upgrade)
    env.configure(
        connection=sync_conn,
        target_metadata=shared_metadata if name == "shared" else tenant_metadata,
        version_table_schema=schema,
    )
    env.run_migrations()


async def migrate_shared(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        # On Citus every new schema would become a distributed schema on some worker; `shared` must
        # stay on the coordinator (docs/scaling.md). A harmless placeholder setting on plain PostgreSQL.
        await conn.execute(text("SELECT set_config('citus.enable_schema_based_sharding', 'off', true)"))
        await conn.execute(text("CREATE SCHEMA IF NOT EXISTS shared"))
        # One migrator at a time: a second `saas migrate` waits here instead of racing.
        await conn.execute(text("SELECT pg_advisory_xact_lock(7310001)"))
        await conn.run_sync(_upgrade, "shared", "shared", None)


async def migrate_tenant(engine: AsyncEngine, schema: str, location: str | None = None) -> str:
    target = head("tenant", location)
    async with engine.begin() as conn:
        await bind(conn, schema)
        await conn.run_sync(_upgrade, "tenant", schema, location)
        await conn.execute(
            text("UPDATE shared.tenants SET schema_version = :v WHERE schema_name = :s"), {"v": target, "s": schema}
        )
    return target


async def migrate_spares(engine: AsyncEngine, location: str | None = None) -> int:
    """Upgrade the spare schemas behind head like tenants, each in its own transaction with its
    pool row locked (a signup skips it meanwhile; one taken before we got here is gone)."""
    target = head("tenant", location)
    async with engine.connect() as conn:
        names = list((await conn.execute(text(
            "SELECT name FROM shared.spare_schemas WHERE version IS DISTINCT FROM :v ORDER BY name"),
            {"v": target})).scalars())
    done = 0
    for name in names:
        async with engine.begin() as conn:
            if (await conn.execute(text("SELECT 1 FROM shared.spare_schemas WHERE name = :n FOR UPDATE"),
                                   {"n": name})).first() is None:
                continue
            await bind(conn, name, spare=True)
            await conn.run_sync(_upgrade, "tenant", name, location)
            await conn.execute(text("UPDATE shared.spare_schemas SET version = :v WHERE name = :n"),
                               {"v": target, "n": name})
        done += 1
    return done


async def migrate_tenants(
    engine: AsyncEngine,
    *,
    location: str | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Bring every tenant behind head up to date, one at a time; resumable (each commits alone).

    Alembic's `op` is one process-wide proxy, so tenants are never migrated concurrently inside a
    process: parallelism comes from processes, each taking the shard `id % n == i`.
    """
    target = head("tenant", location)
    index, count = shard
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT schema_name FROM shared.tenants WHERE status <> 'deleted' "
                "AND schema_version IS DISTINCT FROM :v AND id % :n = :i ORDER BY id"
            ),
            {"v": target, "n": count, "i": index},
        )
        schemas = [r[0] for r in rows]
    for done, schema in enumerate(schemas, start=1):
        await migrate_tenant(engine, schema, location)
        if progress:
            progress(done, len(schemas))
    return len(schemas)


def _migrate_shard(url: str, index: int, count: int, location: str | None) -> int:
    """Entry of a migration process (see migrate_tenants_parallel)."""
    from saas.core.db import make_engine

    async def main() -> int:
        engine = make_engine(url, pool_size=1, max_overflow=0)
        try:
            return await migrate_tenants(engine, shard=(index, count), location=location)
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def migrate_tenants_parallel(engine: AsyncEngine, processes: int, *, location: str | None = None,
                                   progress: Callable[[int, int], None] | None = None) -> int:
    processes = max(1, min(processes, os.cpu_count() or 1))
    if processes == 1:
        return await migrate_tenants(engine, location=location, progress=progress)
    from concurrent.futures import ProcessPoolExecutor

    url = engine.url.render_as_string(hide_password=False)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes) as pool:
        counts = await asyncio.gather(*(loop.run_in_executor(pool, _migrate_shard, url, i, processes, location)
                                        for i in range(processes)))
    return sum(counts)


def citus_unsupported(since: list[str | None], location: str | None = None) -> list[tuple[str, str]]:
    """(revision, reason) of the tenant revisions after any of `since` (versions companies are at)
    whose script says CITUS_UNSUPPORTED = "why"."""
    script, found = script_directory("tenant", location), {}
    for version in since:
        for rev in script.iterate_revisions("head", version):
            reason = getattr(rev.module, "CITUS_UNSUPPORTED", None)
            if reason:
                found[rev.revision] = reason
    return sorted(found.items())


class MigrationRefused(RuntimeError):
    """`saas migrate` stopped before changing anything; the message says why and what to do."""


async def refuse_what_citus_cannot(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        if not await is_citus(conn):
            return
        from saas.admin.citus import refusals

        has_registry = (await conn.execute(text("SELECT to_regclass('shared.tenants')"))).scalar() is not None
        versions = list((await conn.execute(text(
            "SELECT DISTINCT schema_version FROM shared.tenants WHERE status <> 'deleted'"))).scalars()
        ) if has_registry else []
        problems = await refusals(conn, citus_unsupported([v for v in versions if v != head("tenant")]))
    if problems:
        raise MigrationRefused("migrate: nothing was changed.\n- " + "\n- ".join(problems))


async def migrate_all(engine: AsyncEngine, *, echo: Callable[[str], None] = print, processes: int = 1) -> None:
    started = time.monotonic()
    await refuse_what_citus_cannot(engine)
    await migrate_shared(engine)
    last = [0.0]

    def report(done: int, total: int) -> None:
        if done == total or time.monotonic() - last[0] > 1:
            last[0] = time.monotonic()
            echo(f"migrate: tenants {done}/{total}")

    count = await migrate_tenants_parallel(engine, processes, progress=report)
    spared = await migrate_spares(engine)
    echo(f"migrate: shared, {count} tenant schema(s) and {spared} spare(s) up to date "
         f"in {time.monotonic() - started:.1f}s")


# ---- fast tenant creation ----------------------------------------------------------------


@functools.cache
def tenant_ddl() -> str:
    """The tenant tables as one precompiled DDL script (unqualified names)."""
    return ";\n".join(tenant_ddl_statements()) + ";"


@functools.cache
def tenant_ddl_statements() -> tuple[str, ...]:
    """The same DDL statement by statement, for Citus (it propagates each one to the worker)."""
    dialect = postgresql.dialect()
    parts = []
    for table in tenant_metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    parts.append(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    # One multi-statement script takes no parameters.
    parts.append(f"INSERT INTO alembic_version (version_num) VALUES ('{head('tenant')}')")  # noqa: S608 - our own revision id
    return tuple(parts)


async def create_tenant_schema(conn: AsyncConnection, schema: str) -> str:
    """Make a new company's schema at head inside the caller's transaction (the schema factory):
    rename a spare from the pool when one is ready, else run the DDL. A take asks the worker to
    refill the pool."""
    version = head("tenant")
    if await spares.take(conn, schema, version):
        await spares.queue_refill_async()
        return version
    return await build_tenant_schema(conn, schema)


async def build_tenant_schema(conn: AsyncConnection, schema: str, *, spare: bool = False) -> str:
    """Create a tenant schema (or a spare) at head in one round trip, inside the caller's transaction."""
    await conn.execute(text(f"CREATE SCHEMA {ident(schema, spare=spare)}"))
    await bind(conn, schema, spare=spare)
    raw = await conn.get_raw_connection()
    if await is_citus(conn):  # Citus refuses a multi-statement script ("multiple commands")
        for statement in tenant_ddl_statements():
            await raw.driver_connection.execute(statement)
    else:  # asyncpg runs a multi-statement script through the simple query protocol: one round trip
        await raw.driver_connection.execute(tenant_ddl())
    await bind(conn, None)
    return head("tenant")


def run_alembic_cli(name: str) -> None:
    """Entry for migrations/*/env.py: autogenerate against a scratch database (DATABASE_URL).

    The tenant environment compares the models with the scratch schema `t_0`, so author a tenant
    revision against a database where `t_0` is at the previous head.
    """
    from alembic import context

    from saas.core.config import get_settings
    from saas.core.db import make_engine

    schema = "shared" if name == "shared" else schema_for(0)
    metadata = shared_metadata if name == "shared" else tenant_metadata

    def run(sync_conn: Connection) -> None:
        # Reflection of unqualified tables looks in the dialect's cached default schema, not the
        # search_path we set: point it at the scratch tenant schema.
        sync_conn.dialect.default_schema_name = schema
        context.configure(
            connection=sync_conn,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=name == "shared",
            include_name=(lambda n, t, p: t != "schema" or n == "shared") if name == "shared"
            else (lambda n, t, p: not (t == "table" and n == "alembic_version")),
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = make_engine(get_settings().database_url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA IF NOT EXISTS " + (schema if name == "shared" else ident(schema))))
            await bind(conn, schema, allow_shared=True)
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(main())
