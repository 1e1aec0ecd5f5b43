"""Engine, sessions and tenant binding.

A tenant is bound per transaction: `after_begin` runs `set_config('search_path', schema, true)`
(SET LOCAL) from `session.info["schema"]`, so the binding ends with the transaction and can never
leak to the next user of a pooled connection. An unbound session sees no tenant tables at all.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session

SCHEMA_RE = re.compile(r"^t_[0-9a-z]+$")
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class SharedBase(DeclarativeBase):
    """Tables of the platform, in the explicitly qualified `shared` schema."""

    metadata = MetaData(schema="shared", naming_convention=NAMING)


class TenantBase(DeclarativeBase):
    """Tables of one company. Unqualified: they resolve through the bound search_path."""

    metadata = MetaData(naming_convention=NAMING)


def schema_for(tenant_id: int) -> str:
    schema = f"t_{tenant_id}"
    check_schema(schema)
    return schema


def check_schema(schema: str) -> str:
    if not SCHEMA_RE.match(schema):
        raise ValueError("invalid tenant schema name")
    return schema


@event.listens_for(Session, "after_begin")
def _bind_tenant(session: Session, transaction, connection) -> None:  # noqa: ANN001
    schema = session.info.get("schema")
    if schema is not None:
        connection.execute(text("SELECT set_config('search_path', :s, true)"), {"s": check_schema(schema)})


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, **kwargs) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"server_settings": {"application_name": "kartoteka"}, "timeout": 5},
        **kwargs,
    )


class Database:
    """One engine and its session factory; created at startup, never at import."""

    def __init__(self, url: str, **engine_kwargs) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self, schema: str | None = None) -> AsyncIterator[AsyncSession]:
        """A session, bound to a tenant schema when one is given. Commits on success."""
        async with self.sessions() as session:
            if schema is not None:
                session.info["schema"] = check_schema(schema)
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
