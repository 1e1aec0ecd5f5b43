"""Kartoteka on a Citus cluster: where each company lives, moving a company to another worker, and
what `saas migrate` checks before it changes anything.

Each company is a distributed schema: all its tables sit together on one worker. `placement()` reads
Citus's own catalog (citus_shards) for the node and size of every company; `move()` wraps
`citus_schema_move`. While a schema moves, reads keep being served from the old placement; writes
wait for the move's final switch-over (in `block_writes` mode, the only one without logical
replication, writes wait for the whole copy), then continue on the new node. Nothing is lost.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from saas.admin.service import audit, get_by_slug
from saas.core.errors import FormError
from saas.core.models import Tenant


@dataclass(frozen=True)
class Placement:
    slug: str
    schema: str
    node: str  # host:port, or "coordinator" for a schema Citus does not distribute
    size_bytes: int


async def nodes(db: AsyncSession) -> list[str]:
    rows = (await db.execute(text(
        "SELECT nodename || ':' || nodeport FROM pg_dist_node"
        " WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodeid"))).scalars()
    return list(rows)


async def _require_citus(db: AsyncSession) -> None:
    found = (await db.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))).first()
    if found is None:
        raise FormError({"engine": "This database is plain PostgreSQL: there is no cluster to place companies on."})


async def placement(db: AsyncSession) -> list[Placement]:
    """Every company with the node holding its schema and the schema's size, biggest first."""
    await _require_citus(db)
    shards = {row.schema: (row.node, int(row.size)) for row in (await db.execute(text(
        "SELECT n.nspname AS schema, min(s.nodename || ':' || s.nodeport) AS node, sum(s.shard_size) AS size"
        " FROM citus_shards s JOIN pg_class c ON c.oid = s.table_name JOIN pg_namespace n ON n.oid = c.relnamespace"
        " GROUP BY n.nspname"))).all()}
    tenants = (await db.execute(select(Tenant.slug, Tenant.schema_name).order_by(Tenant.slug))).all()
    out = [Placement(slug, schema, *shards.get(schema, ("coordinator", 0))) for slug, schema in tenants]
    return sorted(out, key=lambda p: (-p.size_bytes, p.slug))


def parse_node(node: str) -> tuple[str, int]:
    host, _, port = node.rpartition(":")
    if not host or not port.isdigit():
        raise FormError({"node": "A node is HOST:PORT, as `saas tenants placement` prints it."})
    return host, int(port)


async def transfer_mode(db: AsyncSession) -> str:
    """`auto` (logical replication: writes wait only for the switch-over) when the cluster's
    wal_level allows it, else `block_writes` (writes wait for the copy)."""
    level = (await db.execute(text("SHOW wal_level"))).scalar_one()
    return "auto" if level == "logical" else "block_writes"


async def move(db: AsyncSession, slug: str, node: str, actor: str) -> Placement:
    """Move the company at SLUG to NODE (host:port of a worker); audited on the platform log."""
    await _require_citus(db)
    host, port = parse_node(node)
    if node not in await nodes(db):
        raise FormError({"node": f"{node} is not an active worker of this cluster."})
    tenant = await get_by_slug(db, slug)
    before = next((p for p in await placement(db) if p.slug == slug), None)
    if before is not None and before.node == node:
        return before
    mode = await transfer_mode(db)
    await db.execute(text("SELECT citus_schema_move(CAST(:schema AS regnamespace), :host, :port, "
                          "CAST(:mode AS citus.shard_transfer_mode))"),
                     {"schema": tenant.schema_name, "host": host, "port": port, "mode": mode})
    audit(db, actor, "tenant.moved", tenant, source=before.node if before else None, target=node, mode=mode)
    after = next(p for p in await placement(db) if p.slug == slug)
    return after


# ---- before `saas migrate` ---------------------------------------------------------------------


async def refusals(conn: AsyncConnection, pending: list[tuple[str, str]]) -> list[str]:
    """What Citus cannot do with this database as it is, each said with the fix; empty when the
    migration may run. `pending` lists (revision, its CITUS_UNSUPPORTED reason) of the tenant
    revisions still to apply that declare they cannot run on Citus."""
    problems = []
    sharding = (await conn.execute(text(
        "SELECT current_setting('citus.enable_schema_based_sharding', true)"))).scalar_one()
    if sharding != "on":
        problems.append("citus.enable_schema_based_sharding is off for this database: new companies would stay "
                        "on the coordinator. Turn it on (ALTER DATABASE … SET citus.enable_schema_based_sharding "
                        "= on) and run `saas migrate` again.")
    shared = (await conn.execute(text(
        "SELECT 1 FROM citus_schemas WHERE schema_name::text = 'shared'"))).first()
    if shared is not None:
        problems.append("The shared schema is a distributed schema (it was created while schema-based sharding "
                        "was on), so it cannot be used with the companies' schemas in one transaction. Move the "
                        "data out (pg_dump -n shared), drop the schema and run `saas migrate`: it creates "
                        "`shared` on the coordinator.")
    local = (await conn.execute(text(
        "SELECT t.schema_name FROM shared.tenants t JOIN pg_namespace n ON n.nspname = t.schema_name"
        " WHERE t.status <> 'deleted' AND NOT EXISTS (SELECT 1 FROM citus_schemas c"
        " WHERE c.schema_name = CAST(t.schema_name AS regnamespace)) ORDER BY t.id LIMIT 20")
    )).scalars().all() if (await conn.execute(text("SELECT to_regclass('shared.tenants')"))).scalar() else []
    if local:
        problems.append(f"Companies on the coordinator, not distributed: {', '.join(local)}. Distribute each "
                        "(SELECT citus_schema_distribute('<schema>')) and run `saas migrate` again.")
    for revision, reason in pending:
        problems.append(f"Tenant migration {revision} cannot run on Citus: {reason}")
    return problems
