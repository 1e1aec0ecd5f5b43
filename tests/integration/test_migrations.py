"""A tenant schema built by replaying every migration equals one created from the models."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from saas.core.db import Database
from saas.admin.migrate import create_tenant_schema, head, migrate_tenant

SHAPE = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default, ordinal_position
                  FROM information_schema.columns WHERE table_schema = :s""",
    "indexes": """SELECT tablename, indexname, replace(indexdef, :s || '.', '') FROM pg_indexes
                  WHERE schemaname = :s""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE connamespace = (SELECT oid FROM pg_namespace WHERE nspname = :s)""",
}


async def shape(db: Database, schema: str) -> dict[str, set]:
    async with db.session() as s:
        out = {}
        for name, sql in SHAPE.items():
            rows = (await s.execute(text(sql), {"s": schema})).all()
            out[name] = {tuple(str(v).replace(f"{schema}.", "") for v in row) for row in rows}
        return out


def test_migrated_schema_equals_fresh_schema(db_url: str) -> None:
    async def go() -> tuple[dict, dict, str]:
        db = Database(db_url, pool_size=2)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS t_fresh0 CASCADE"))
            await conn.execute(text("DROP SCHEMA IF EXISTS t_migr0 CASCADE"))
            await create_tenant_schema(conn, "t_fresh0")
            await conn.execute(text("CREATE SCHEMA t_migr0"))
        version = await migrate_tenant(db.engine, "t_migr0")
        fresh, migrated = await shape(db, "t_fresh0"), await shape(db, "t_migr0")
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA t_fresh0 CASCADE"))
            await conn.execute(text("DROP SCHEMA t_migr0 CASCADE"))
        await db.dispose()
        return fresh, migrated, version

    fresh, migrated, version = asyncio.run(go())
    assert version == head("tenant")
    assert fresh["columns"] and fresh == migrated
