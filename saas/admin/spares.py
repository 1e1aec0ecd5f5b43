"""Spare company schemas: a small pool of schemas created ahead of time with every table at head,
so a signup renames one (`ALTER SCHEMA … RENAME`, about a millisecond) instead of running every
table's DDL in its transaction.

- The pool is the rows of `shared.spare_schemas` (name, version). A signup takes the oldest spare
  at the code's head with FOR NO KEY UPDATE SKIP LOCKED, so two signups never take the same one and never
  wait for each other; with none ready it creates the schema from the DDL as before.
- The worker refills it (`refill`): after each take (a queued job) and every ten minutes
  (admin.jobs). One refiller at a time (a session advisory lock); each spare is built in its own
  short transaction.
- `saas migrate` upgrades spares like tenants (migrate.migrate_spares); a spare at another version
  than the code's head is never taken.
"""
from __future__ import annotations

import asyncio
import logging
import secrets

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from saas.core.config import get_settings
from saas.core.db import ident

log = logging.getLogger("saas.admin.spares")
REFILL_LOCK = 7310002  # pg advisory lock id: one refiller at a time
_TAKE = text("""
    DELETE FROM shared.spare_schemas WHERE name = (
        SELECT name FROM shared.spare_schemas WHERE version = :v ORDER BY created_at, name
        FOR NO KEY UPDATE SKIP LOCKED LIMIT 1)
    RETURNING name""")
# Spares ready now: a row another transaction is deleting (a take) or upgrading (migrate) is already
# gone for our purpose. The lock modes are chosen so that counting never makes a take skip a spare:
# KEY SHARE does not conflict with a take's NO KEY UPDATE (the take's DELETE then waits the count's
# one statement out), while a row being deleted (or locked FOR UPDATE by migrate) is skipped here.
_READY = text("SELECT count(*) FROM (SELECT 1 FROM shared.spare_schemas WHERE version = :v "
              "FOR KEY SHARE SKIP LOCKED) AS ready")


def new_name() -> str:
    return f"spare_{secrets.token_hex(6)}"


async def take(conn: AsyncConnection, schema: str, version: str) -> bool:
    """Rename a spare at `version` to `schema` inside the caller's transaction (a rollback puts it
    back in the pool). False when none is ready."""
    name = (await conn.execute(_TAKE, {"v": version})).scalar()
    if name is None:
        return False
    await conn.execute(text(f"ALTER SCHEMA {ident(name, spare=True)} RENAME TO {ident(schema)}"))
    return True


async def ready(engine: AsyncEngine, version: str) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(_READY, {"v": version})).scalar_one())


async def refill(engine: AsyncEngine, size: int | None = None) -> int:
    """Create spares until `size` (default: the SPARE_SCHEMAS setting) are ready; returns how many
    were made (0 when another refiller holds the lock)."""
    from saas.admin.migrate import build_tenant_schema, head

    size = get_settings().spare_schemas if size is None else size
    version = head("tenant")
    made = 0
    async with engine.connect() as lock:
        if not (await lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": REFILL_LOCK})).scalar():
            return 0
        try:
            while await ready(engine, version) < size:
                name = new_name()
                async with engine.begin() as conn:
                    await build_tenant_schema(conn, name, spare=True)
                    await conn.execute(text("INSERT INTO shared.spare_schemas (name, version) VALUES (:n, :v)"),
                                       {"n": name, "v": version})
                made += 1
        finally:
            await lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REFILL_LOCK})
            await lock.commit()
    return made


def queue_refill() -> None:
    """Ask the worker to refill the pool soon. Never fails the caller (a signup): with the queue
    down, the periodic refill catches up. One refill queued at a time (a fixed id; no result kept,
    so the id is free again once it ran)."""
    from saas.core.jobs import get_queue

    settings = get_settings()
    try:
        get_queue(settings).enqueue("saas.admin.jobs.refill_spares", job_id=f"{settings.redis_prefix}-spares-refill",
                                    unique=True, result_ttl=0, failure_ttl=3600, job_timeout=600)
    except Exception:  # DuplicateJobError (one is queued already) or Redis down
        log.debug("spare refill not queued", exc_info=True)


async def queue_refill_async() -> None:
    await asyncio.to_thread(queue_refill)
