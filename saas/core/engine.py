"""Which database engine we run on: plain PostgreSQL, or a Citus coordinator with N workers.

Detected once per engine at startup (and again by /healthz, which reports it). The difference that
matters to the code is small and kept here: on Citus the `shared` schema must stay on the
coordinator (created with schema-based sharding off), DDL goes statement by statement (Citus
propagates each one to the company's worker), and work that would join a coordinator temp table
with a company table stages inside the company's own schema instead.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@dataclass(frozen=True)
class EngineInfo:
    kind: str  # "postgresql" or "citus"
    server_version: str
    citus_version: str | None = None
    workers: int = 0
    schema_sharding: bool = False

    @property
    def citus(self) -> bool:
        return self.kind == "citus"

    def describe(self) -> str:
        if not self.citus:
            return f"PostgreSQL {self.server_version}"
        return f"Citus {self.citus_version} on PostgreSQL {self.server_version}, {self.workers} worker(s)"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "server_version": self.server_version}
        if self.citus:
            out.update(citus_version=self.citus_version, workers=self.workers,
                       schema_sharding=self.schema_sharding)
        return out


async def detect(conn: AsyncConnection) -> EngineInfo:
    version = (await conn.execute(text("SHOW server_version"))).scalar_one().split(" ")[0]
    citus = (await conn.execute(text(
        "SELECT extversion FROM pg_extension WHERE extname = 'citus'"))).scalar_one_or_none()
    if citus is None:
        return EngineInfo("postgresql", version)
    workers = (await conn.execute(text(
        "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive"))).scalar_one()
    sharding = (await conn.execute(text(
        "SELECT current_setting('citus.enable_schema_based_sharding', true)"))).scalar_one()
    return EngineInfo("citus", version, citus, int(workers), sharding == "on")


_known: dict[int, EngineInfo] = {}


async def engine_info(engine: AsyncEngine) -> EngineInfo:
    """The engine's kind, detected on first use and remembered for this process."""
    info = _known.get(id(engine))
    if info is None:
        async with engine.connect() as conn:
            info = _known[id(engine)] = await detect(conn)
    return info


async def is_citus(conn: AsyncConnection) -> bool:
    """Whether the connection's engine is Citus (detected on this connection the first time)."""
    info = _known.get(id(conn.engine))
    if info is None:
        info = _known[id(conn.engine)] = await detect(conn)
    return info.citus
