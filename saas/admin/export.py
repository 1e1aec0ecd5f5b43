"""A company's full export: a ZIP with one JSON Lines file per table of its schema and a manifest.

Rows are streamed table by table through a server-side cursor, so a large company never sits in
memory. JSON Lines keeps types a CSV would lose (null vs empty, lists, nested JSON). The only
binary column that leaves is the passport ciphertext (base64; AES-GCM under the platform's
DATA_KEY, never decrypted here). Whatever holds personal data in plain text outside the cards is
withheld (`WITHHELD`, listed in the manifest): stored import files and their samples, the cells of
rejected import rows (their line and reason stay), and the company's saved export ZIPs and restore
uploads (which can hold passports in full). Every other binary column is withheld too, so a new
one cannot leak by default. Each export is written to the company's audit log as well as the
platform's.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import text

from saas.core.db import Database, check_schema, qualified
from saas.core.models import AuditEvent, Tenant
from saas.core.clock import now

BATCH = 1000
FORMAT = "kartoteka-tenant-export"
BINARY_ALLOWED = {("clients", "passport_enc")}  # ciphertext only
WITHHELD = {  # (table, column) -> what leaves instead
    ("imports", "payload"): "NULL",
    ("imports", "sample"): "NULL",
    ("imports", "rejected"): ("(SELECT coalesce(jsonb_agg(jsonb_set(r, '{values}', '{}'::jsonb) ORDER BY n), "
                              "'[]'::jsonb) FROM "
                              "jsonb_array_elements(CASE WHEN jsonb_typeof(rejected) = 'array' THEN rejected "
                              "ELSE '[]'::jsonb END) WITH ORDINALITY AS e(r, n))"),
    ("jobs", "payload"): "NULL",
}


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot export a {type(value).__name__}")


def _line(record: Any) -> bytes:
    return (json.dumps(dict(record), default=_default, ensure_ascii=False) + "\n").encode()


async def export_tenant(database: Database, tenant: Tenant, out: Path, *, actor: str = "platform") -> dict[str, Any]:
    """Write the ZIP to `out`; returns the manifest. File writes run in a thread (the web calls this).
    The company's audit log records it (`actor`: who asked); the caller writes the platform's."""
    schema = check_schema(tenant.schema_name)
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": 1, "exported_at": now().isoformat(),
        "tenant": {"id": tenant.id, "slug": tenant.slug, "name": tenant.name, "plan": tenant.plan,
                   "status": tenant.status, "currency": tenant.currency, "timezone": tenant.timezone,
                   "locale": tenant.locale, "schema_version": tenant.schema_version},
        "encoding": "one JSON object per line; bytea columns in base64 (passports stay encrypted)",
        "withheld": "stored import files and samples, rejected rows' cells, saved export and restore files, "
                    "any other binary column: see each table's `withheld`",
        "tables": {},
    }
    zf = await asyncio.to_thread(zipfile.ZipFile, out, "w", zipfile.ZIP_DEFLATED)
    try:
        async with database.session() as s:  # unbound: names are qualified; one snapshot for every table
            await s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            tables = list(await s.scalars(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"), {"s": schema}))
            raw = (await (await s.connection()).get_raw_connection()).driver_connection
            for table in tables:
                manifest["tables"][table] = await _table(raw, zf, schema, table)
        body = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
        await asyncio.to_thread(zf.writestr, "manifest.json", body)
    finally:
        await asyncio.to_thread(zf.close)
    async with database.session(schema) as s:
        s.add(AuditEvent(actor=actor, action="company.exported_by_platform", object_type="company",
                         object_id=tenant.id, details={"rows": {t: v["rows"] for t, v in manifest["tables"].items()}}))
    return manifest


async def _table(raw: Any, zf: zipfile.ZipFile, schema: str, table: str) -> dict[str, Any]:
    described = await raw.fetch(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 "
        "ORDER BY ordinal_position", schema, table)
    select_list, withheld = [], []
    for column, udt in ((r["column_name"], r["udt_name"]) for r in described):
        instead = WITHHELD.get((table, column))
        if instead is None and udt == "bytea" and (table, column) not in BINARY_ALLOWED:
            instead = "NULL"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", column):
            raise ValueError(f"unexpected column name in {table}")
        select_list.append(f"{instead} AS {column}" if instead else column)
        if instead:
            withheld.append(column)
    stmt = await raw.prepare(f"SELECT {', '.join(select_list)} FROM {qualified(schema, table)}")  # noqa: S608 - names checked
    columns = [{"name": a.name, "type": a.type.name} for a in stmt.get_attributes()]
    entry = await asyncio.to_thread(zf.open, f"{table}.jsonl", "w", force_zip64=True)
    rows, chunk = 0, []
    try:
        async for record in stmt.cursor(prefetch=BATCH):
            chunk.append(_line(record))
            rows += 1
            if len(chunk) >= BATCH:
                await asyncio.to_thread(entry.write, b"".join(chunk))
                chunk = []
        if chunk:
            await asyncio.to_thread(entry.write, b"".join(chunk))
    finally:
        await asyncio.to_thread(entry.close)
    return {"file": f"{table}.jsonl", "rows": rows, "columns": columns, "withheld": withheld}
