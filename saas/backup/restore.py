"""Restore a Kartoteka export ZIP (exports.py) into another, empty company.

The manifest names each file's columns, so the translated headers do not matter. Rows go through
the row rules every write path uses (`saas/clients/rules.py`) and the form's passport and
consent rules; operations find their client by the exported client id, so clients
without phone or email keep their history. Dictionaries and custom fields are matched by name and
key. It all runs in one transaction: a failure leaves the company as it was. Campaigns are not
restored: their criteria name the old company's ids, and their lists are snapshots of it.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import crypto
from saas.clients import service as client_service
from saas.clients.imports.reader import MAX_BYTES
from saas.clients.rules import CLIENT_FIELDS, normalise_client_row, normalise_operation_row
from saas.clients.models import Client, CustomField, Direction, Operation, ProductGroup
from saas.core import clock
from saas.core.db import Database
from saas.backup.service import FORMAT, VERSION, do_start_job
from saas.core.models import Job, Tenant
from saas.core.errors import FormError
from saas.core.i18n import _
from saas.core.values import formula_unsafe, joined, parse_bool

BATCH = 1000
REQUIRED = ("manifest.json", "clients.csv", "operations.csv", "product_groups.csv", "directions.csv")


class RestoreError(ValueError):
    """The file cannot be restored as a whole (over the plan, say): nothing was written."""


def unformula(value: str) -> str:
    """Undo formula_safe: the apostrophe it put before a leading = + - @ goes (older exports put
    one before phones too)."""
    return formula_unsafe(value)


def read_manifest(data: bytes) -> dict[str, Any]:
    """Check the upload is a Kartoteka export we can read; FormError with a clear message if not."""
    if len(data) > MAX_BYTES:
        raise FormError({"file": _("The file is larger than 100 MB.")})
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = set(zf.namelist())
        if sum(i.file_size for i in zf.infolist()) > 20 * MAX_BYTES:
            raise FormError({"file": _("The file is far too large when unpacked.")})
        manifest = json.loads(zf.read("manifest.json")) if "manifest.json" in names else {}
    except (zipfile.BadZipFile, ValueError, KeyError):
        raise FormError({"file": _("This is not a Kartoteka export ZIP.")}) from None
    if manifest.get("format") != FORMAT or not set(REQUIRED) <= names:
        raise FormError({"file": _("This is not a Kartoteka export ZIP.")})
    if manifest.get("version") != VERSION:
        raise FormError({"file": _("This export comes from another version of Kartoteka and cannot be restored.")})
    return manifest


async def do_start_restore(db: AsyncSession, tenant: Tenant, *, user_id: int, actor: str, data: bytes) -> Job:
    manifest = read_manifest(data)
    if await db.scalar(select(func.count()).select_from(Client)):
        raise FormError({"file": _("Restoring is for an empty company: this one already has clients. Create a "
                                   "new company and restore there.")})
    return await do_start_job(db, tenant, restore_job, kind="restore", user_id=user_id, actor=actor, payload=data,
                              total=manifest["totals"]["clients"] + manifest["totals"]["operations"],
                              result={"totals": manifest["totals"], "passport": manifest.get("passport")})


def _rows(zf: zipfile.ZipFile, manifest: dict[str, Any], name: str) -> Iterator[tuple[int, dict[str, str]]]:
    keys = manifest["files"].get(name, {}).get("columns")
    if keys is None:
        return
    with zf.open(name) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""),
                            delimiter=manifest.get("delimiter", ";"))
        next(reader, None)
        for line, cells in enumerate(reader, start=2):
            yield line, {k: unformula(v) for k, v in zip(keys, cells, strict=False)}


def _when(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def _dictionary(db: AsyncSession, zf: zipfile.ZipFile, manifest: dict, name: str, model: Any) -> dict[str, int]:
    """Exported id -> id here, by name (case-insensitive); new names keep their archived state."""
    here = {n.lower(): i for i, n in (await db.execute(select(model.id, model.name))).all()}
    ids: dict[str, int] = {}
    for _line, row in _rows(zf, manifest, name):
        found = here.get(row["name"].lower())
        if found is None:
            found = await db.scalar(insert(model).values(name=row["name"], archived_at=_when(row["archived_at"]))
                                    .returning(model.id))
            here[row["name"].lower()] = found
        ids[row["id"]] = found
    return ids


async def _custom_fields(db: AsyncSession, zf: zipfile.ZipFile, manifest: dict) -> list[CustomField]:
    from saas.clients.custom import definitions

    known = {f.key for f in await definitions(db, include_archived=True)}
    for _line, row in _rows(zf, manifest, "custom_fields.csv"):
        if row["key"] not in known:
            db.add(CustomField(key=row["key"], label_ru=row["label_ru"], label_en=row["label_en"], type=row["type"],
                               options=json.loads(row["options"] or "[]"), required=parse_bool(row["required"]),
                               in_list=parse_bool(row["in_list"]), position=int(row["position"] or 0),
                               archived_at=_when(row["archived_at"])))
    await db.flush()
    return await definitions(db, include_archived=True)


def _client_values(row: dict[str, str], values: dict[str, Any], groups: dict[str, int], dirs: dict[str, int],
                   job_id: int, company: str) -> dict[str, Any]:
    client = Client()
    for field in client_service.PLAIN_FIELDS:
        setattr(client, field, values.get(field, client_service.TEXT_DEFAULTS.get(field)))
    client.consent = {}
    consents = {ch: bool(values[f"consent_{ch}"]) for ch in client_service.CHANNELS if f"consent_{ch}" in values}
    client_service._apply_consent(client, consents, f"restore:{job_id}")  # noqa: SLF001 - the form's consent history
    out = {f: getattr(client, f) for f in (*client_service.PLAIN_FIELDS, "consent")}
    # The form's encryption under this company's binding, sealed once `insert_clients` drew the id.
    out.update(client_service.passport_columns(values, company, None))
    out.update(tags=values.get("tags", []), custom=values.get("custom", {}),
               product_group_ids=[groups[i] for i in row.get("product_group_ids", "").split() if i in groups],
               direction_ids=[dirs[i] for i in row.get("direction_ids", "").split() if i in dirs],
               archived_at=_when(row.get("archived_at", "")), erased_at=_when(row.get("erased_at", "")))
    if row.get("created_at"):
        out["created_at"] = _when(row["created_at"])
    if not row.get("passport_series") and row.get("passport_mask"):
        out["passport_mask"] = row["passport_mask"]  # a masked export keeps only the mask
    return out


async def restore(db: AsyncSession, data: bytes, job_id: int, progress: Any = None) -> dict[str, Any]:
    """Write the export into the bound company in the caller's transaction; returns the counts."""
    from saas.clients.custom import check_values
    from saas.clients.operations import refresh_all_metrics
    from saas.accounts.limits import check_limit

    zf = zipfile.ZipFile(io.BytesIO(data))
    manifest = read_manifest(data)
    total = manifest["totals"]["clients"] + manifest["totals"]["operations"]
    groups = await _dictionary(db, zf, manifest, "product_groups.csv", ProductGroup)
    dirs = await _dictionary(db, zf, manifest, "directions.csv", Direction)
    fields = await _custom_fields(db, zf, manifest)
    counts = {"clients": 0, "operations": 0, "rejected": 0}
    company = crypto.company_of(db)  # passports are sealed anew to this company and the new ids
    rejected: list[dict[str, Any]] = []
    client_ids: dict[str, int] = {}
    done = 0

    def reject(name: str, line: int, reason: str) -> None:
        counts["rejected"] += 1
        if len(rejected) < 1000:
            rejected.append({"file": name, "line": line, "reason": reason})

    async def insert_clients(batch: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            await check_limit(db, None, "clients", adding=len(batch))
        except FormError as exc:
            raise RestoreError(" ".join(exc.errors.values())) from None
        ids = await client_service.seal_new_rows(db, [values for _old, values in batch])
        await db.execute(insert(Client), [{"id": i, **values} for i, (_old, values) in zip(ids, batch, strict=True)])
        client_ids.update(zip((old for old, _v in batch), ids, strict=True))
        counts["clients"] += len(ids)

    batch: list[tuple[str, dict[str, Any]]] = []
    for line, row in _rows(zf, manifest, "clients.csv"):
        result = normalise_client_row({f: row[f] for f in CLIENT_FIELDS if f in row}, line)
        custom_raw = {k[7:]: v for k, v in row.items() if k.startswith("custom:") and v.strip()}
        if custom_raw:
            try:
                result.values["custom"] = check_values(fields, custom_raw, partial=True)
            except FormError as exc:
                result.errors.update(exc.errors)
        if result.errors:
            reject("clients.csv", line, joined(result.errors.values(), _))
            continue
        batch.append((row["id"], _client_values(row, result.values, groups, dirs, job_id, company)))
        if len(batch) >= BATCH:
            await insert_clients(batch)
            done += len(batch)
            batch = []
            if progress:
                await progress(done, total)
    if batch:
        await insert_clients(batch)
        done += len(batch)

    ops: list[dict[str, Any]] = []
    for line, row in _rows(zf, manifest, "operations.csv"):
        # The client comes from the exported id, not from a key in the row.
        raw = {k: row.get(k, "") for k in ("kind", "occurred_on", "amount", "due_on", "paid_on", "note")}
        result = normalise_operation_row(raw, line, client_known=True)
        client_id = client_ids.get(row.get("client_id", ""))
        if client_id is None:
            result.errors.setdefault("client", "No client matches this row.")
        if result.errors:
            reject("operations.csv", line, joined(result.errors.values(), _))
            continue
        v = result.values
        ops.append({"client_id": client_id, "kind": v["kind"], "occurred_on": v["occurred_on"], "amount": v["amount"],
                    "product_group_id": groups.get(row.get("product_group_id", "")),
                    "direction_id": dirs.get(row.get("direction_id", "")), "due_on": v.get("due_on"),
                    "paid_on": v.get("paid_on"), "note": v.get("note")})
        if len(ops) >= BATCH:
            await db.execute(insert(Operation), ops)
            counts["operations"] += len(ops)
            done += len(ops)
            ops = []
            if progress:
                await progress(done, total)
    if ops:
        await db.execute(insert(Operation), ops)
        counts["operations"] += len(ops)
    await refresh_all_metrics(db)
    revenue, unpaid = (await db.execute(select(func.coalesce(func.sum(Client.revenue_total), 0),
                                               func.coalesce(func.sum(Client.unpaid_total), 0)))).one()
    counts.update(revenue=str(revenue), unpaid=str(unpaid),
                  matches=(counts["clients"], counts["operations"], str(revenue), str(unpaid)) == (
                      manifest["totals"]["clients"], manifest["totals"]["operations"],
                      manifest["totals"]["revenue"], manifest["totals"]["unpaid"]))
    return {**counts, "rejected_rows": rejected}


def restore_job(tenant_id: int, job_id: int) -> dict:
    from saas.clients.imports.service import Progress
    from saas.core.jobs import run_tenant_job

    async def body(db: Database, tenant: Tenant, job: Job) -> dict:
        schema = tenant.schema_name
        async with db.session(schema) as s:
            data = await s.scalar(select(Job.payload).where(Job.id == job.id))
        try:
            if data is None:
                raise RestoreError(_("The uploaded file has expired. Upload it again."))
            async with db.session(schema) as s:
                counts = await restore(s, data, job.id, progress=Progress(lambda: db.session(schema), job.id))
                summary = {k: v for k, v in counts.items() if k != "rejected_rows"}
                await client_service.audit(s, f"job:{job.id}", "export.restored", "export", job.id, **summary)
        except (RestoreError, FormError) as exc:  # the file's problem, not ours: no retry, the reason shown
            message = str(exc) if isinstance(exc, RestoreError) else " ".join(exc.errors.values())
            async with db.session(schema) as s:
                await s.execute(update(Job).where(Job.id == job.id).values(
                    payload=None, status="failed", error=message[:500], finished_at=clock.now()))
            return {"failed": message}
        async with db.session(schema) as s:  # the file is not kept once used
            await s.execute(update(Job).where(Job.id == job.id).values(
                payload=None, result={**job.result, **counts}, progress=job.total))
        from saas.clients import events

        await events.import_finished(db, tenant)  # the restored history gets its scores
        return summary

    return run_tenant_job(tenant_id, job_id, body)
