"""Engine, sessions and THE tenant binding: no module outside saas/core binds a schema.

A tenant is bound per transaction: `after_begin` runs `set_config('search_path', schema, true)`
(SET LOCAL) from `session.info["schema"]`, so the binding ends with the transaction and can never
leak to the next user of a pooled connection. An unbound session sees no tenant tables at all.

The ways in, all checking the name against ^t_[0-9a-z]+$:
- `Database.tenant_session(tenant)` (or `.session(schema)`): a session bound from its first query;
- `bind(session_or_connection, schema)`: bind a transaction already open (the demo and restore
  create the schema first);
- `binding_column(schema, when)` + `adopt_binding(session, schema)`: the web request's access query
  (membership, API token) binds the company it finds in the same round trip;
- `qualified(schema, table)` / `ident(schema)`: the only way a schema name is written into SQL
  (platform statistics, purges, exports that read a company without binding).
"""
from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import msgspec
from sqlalchemy import Connection, MetaData, and_, case, event, func, text, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction

from saas.core.config import ConfigError

SCHEMA_RE = re.compile(r"^t_[0-9a-z]+$")
# A spare: a company schema made ahead of time (saas/admin/spares.py), renamed to t_<id> at signup.
# Never a tenant's name, so a tenant session can never be bound to one.
SPARE_RE = re.compile(r"^spare_[0-9a-z]+$")
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


def check_schema(schema: str, *, spare: bool = False) -> str:
    if not (SCHEMA_RE.match(schema) or (spare and SPARE_RE.match(schema))):
        raise ValueError("invalid tenant schema name")
    return schema


TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
SET_PATH = text("SELECT set_config('search_path', :s, true)")


def ident(schema: str, *, spare: bool = False) -> str:
    """The schema's name quoted for SQL, after the check (`spare`: a spare's name is allowed too)."""
    return f'"{check_schema(schema, spare=spare)}"'


def qualified(schema: str, table: str) -> str:
    """`"t_1".clients`: a company's table named in SQL without binding the session."""
    if not TABLE_RE.match(table):
        raise ValueError("invalid table name")
    return f"{ident(schema)}.{table}"


class _HasSchema(Protocol):
    schema_name: str


async def bind(target: AsyncSession | AsyncConnection, schema: str | None, *, allow_shared: bool = False,
               spare: bool = False) -> None:
    """Bind the open transaction to `schema` (None: unbind it). A session stays bound for its later
    transactions too; a bare connection only for this transaction (SET LOCAL). `allow_shared` is for
    authoring shared-schema migrations only; `spare` for building and migrating spare schemas."""
    if schema is not None and not (allow_shared and schema == "shared"):
        check_schema(schema, spare=spare)
    if isinstance(target, AsyncSession):
        if schema is None:
            target.info.pop("schema", None)
        else:
            target.info["schema"] = schema
        if not target.in_transaction():  # the next transaction binds itself (_bind_tenant): one round trip
            return
    await target.execute(SET_PATH, {"s": schema or ""})


def binding_column(schema: ColumnElement[str], when: ColumnElement[bool]) -> ColumnElement[Any]:
    """A column that binds the transaction (SET LOCAL) to `schema` on the row where `when` holds:
    the request's access query binds the company it finds without a round trip of its own (each
    one costs the web process more than the statement). The name is checked in SQL by the same
    pattern check_schema uses; the caller then calls adopt_binding, or bind(session, None) when it
    refuses the access after all."""
    return case((and_(when, schema.regexp_match(SCHEMA_RE.pattern)), func.set_config("search_path", schema, true())))


def adopt_binding(session: AsyncSession, schema: str) -> None:
    """Record that the open transaction was bound to `schema` by a binding_column: the session's
    later transactions bind themselves (_bind_tenant)."""
    session.info["schema"] = check_schema(schema)


@asynccontextmanager
async def same_snapshot_readers(db: AsyncSession, count: int) -> AsyncIterator[list[Any] | None]:
    """`count` more connections (asyncpg's) that see exactly what this session's transaction sees
    (its exported snapshot, read-only), bound to the same tenant: one long read split over several
    server processes. None when that cannot hold: the transaction has written (others would not see
    its own rows), the session is unbound, or the server is Citus (its snapshots are per node)."""
    from saas.core.engine import is_citus  # engine.py imports nothing from here at module level

    schema = db.info.get("schema")
    conn = await db.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    wrote = "SELECT pg_current_xact_id_if_assigned() IS NOT NULL"
    if schema is None or await is_citus(conn) or await raw.fetchval(wrote):
        yield None
        return
    snapshot = await raw.fetchval("SELECT pg_export_snapshot()")
    async with contextlib.AsyncExitStack() as stack:
        readers = []
        for _ in range(count):
            other = await stack.enter_async_context(conn.engine.connect())
            reader: Any = (await other.get_raw_connection()).driver_connection
            await reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            stack.push_async_callback(reader.execute, "ROLLBACK")  # read only: nothing to keep
            await reader.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # the server's own id
            await reader.execute("SELECT set_config('search_path', $1, true)", check_schema(schema))
            readers.append(reader)
        yield readers


def bind_sync(connection: Any, schema: str | None) -> None:
    """`bind` for a synchronous connection (Alembic's migrations run through run_sync)."""
    connection.execute(SET_PATH, {"s": check_schema(schema) if schema is not None else ""})


SchemaFactory = Callable[[AsyncConnection, str], Awaitable[str]]
_schema_factory: list[SchemaFactory] = []


def set_schema_factory(factory: SchemaFactory) -> None:
    """How a new company's schema is made (every domain's tables at head): registered at startup by
    saas.wiring, because only the composition root knows every domain."""
    _schema_factory[:] = [factory]


async def create_schema(conn: AsyncConnection, schema: str) -> str:
    """Create the company schema `schema` inside the caller's transaction; returns its version."""
    if not _schema_factory:
        raise RuntimeError("no schema factory: call saas.wiring.wire() at startup")
    return await _schema_factory[0](conn, check_schema(schema))


@event.listens_for(Session, "after_begin")
def _bind_tenant(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    schema = session.info.get("schema")
    # A savepoint (nested) inherits the enclosing transaction's SET LOCAL: no second round trip.
    if schema is not None and not transaction.nested:
        connection.execute(SET_PATH, {"s": check_schema(schema)})


async def core_rows(db: AsyncSession, statement: Any, params: dict[str, Any] | None = None) -> Any:
    """A Core statement's result on the session's connection, past the ORM's execution: its row
    loading cost a third more of a page of 50 rows than the statement itself. For statements that
    select columns, never entities. No autoflush: a caller that reads its own pending changes
    flushes first."""
    return await (await db.connection()).execute(statement, params or {})


def decode_json(text: str | bytes) -> Any:
    """jsonb as Python: the same dicts and lists as json.loads, by msgspec's decoder at a fraction of
    its cost (custom fields, consent and risk factors decode on every list row). A number beyond a
    double (valid jsonb, refused by msgspec) goes through json.loads, which reads it as infinity."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, pool_pre_ping: bool = True,
                **kwargs: Any) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pool_pre_ping,
        pool_timeout=10,
        hide_parameters=True,  # an error's text names the statement, never the values (personal data)
        json_deserializer=decode_json,
        connect_args={"server_settings": {"application_name": "kartoteka"}, "timeout": 5},
        **kwargs,
    )


class _SessionScope:
    """`async with db.session()`: commit on success, roll back on an error, close. A class, not an
    async generator: the web's db dependency is a generator that Litestar abandons when a later
    dependency refuses the request, and the collector then finalised both generators at once
    ("aclose(): asynchronous generator is already running")."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __aenter__(self) -> AsyncSession:
        return self.session

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc_type is None:
                await self.session.commit()
            else:
                await self.session.rollback()
        finally:
            await self.session.close()


class Database:
    """One engine and its session factory; created at startup, never at import."""

    def __init__(self, url: str | None, **engine_kwargs: Any) -> None:
        if not url:  # the settings' URL, unset only where the embedded server was not started
            raise ConfigError("DATABASE_URL is not set")
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # The same pool; each statement commits on its own: no BEGIN and COMMIT round trips.
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def session(self, schema: str | None = None) -> _SessionScope:
        """A session, bound to a tenant schema when one is given. Commits on success."""
        session = self.sessions()
        if schema is not None:
            session.info["schema"] = check_schema(schema)
        return _SessionScope(session)

    @asynccontextmanager
    async def autocommit_session(self) -> AsyncIterator[AsyncSession]:
        """An unbound session whose statements each commit on their own, flushed at the end: for a
        lone check such as the API gate's token (three round trips in a transaction, one here).
        It can never be bound to a company: a binding lives in a transaction."""
        async with self.autocommit.connect() as conn, AsyncSession(bind=conn, expire_on_commit=False) as session:
            yield session
            await session.flush()

    def tenant_session(self, tenant: _HasSchema) -> Any:
        """A session bound to the company's schema (the registry's name, checked)."""
        return self.session(tenant.schema_name)

    async def dispose(self) -> None:
        await self.engine.dispose()
