"""A company's "Export everything": a ZIP of CSV files its owner can open in Excel, and restore
into another company (see restore.py).

The ZIP is built by a background job from one read-only snapshot, in the company's language, with
the cells formula-safe and passports masked unless an owner or admin asked for them in full (the
client export's rules, reused). It is kept in the job row for 24 hours; the hourly platform
maintenance empties expired ones. A manifest names each file's columns (so the restore does not
depend on the translated headers) and the totals the restore must reproduce.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import export as client_export
from saas.clients import service as client_service
from saas.clients.models import Client, CustomField, Direction, Operation, ProductGroup
from saas.core.config import Settings, get_settings
from saas.core import clock
from saas.core.db import Database, bind, check_schema
from saas.core.jobs import start_job
from saas.core.models import Job, Tenant
from saas.core.i18n import _

FORMAT = "kartoteka-company-export"
VERSION = 1
VALID_FOR = timedelta(hours=24)
BATCH = 2000
KINDS = ("export", "restore")


def expiring_key(settings: Settings) -> str:
    """A Redis sorted set of "<schema>:<job id>" by expiry time: the maintenance job's to-do list."""
    return f"{settings.redis_prefix}-exports-expiring"


# ---- the files -------------------------------------------------------------------------------


def operation_columns() -> list[tuple[str, str]]:
    return [("id", "ID"), ("client_id", _("Client ID")), ("kind", _("Kind")), ("occurred_on", _("Date")),
            ("amount", _("Amount")), ("product_group_id", _("Product group ID")),
            ("product_group", _("Product group")), ("direction_id", _("Direction ID")), ("direction", _("Direction")),
            ("due_on", _("Due date")), ("paid_on", _("Paid on")), ("note", _("Note")), ("created_at", _("Created"))]


DICTIONARY_COLUMNS = [("id", "ID"), ("name", "name"), ("archived_at", "archived_at")]
CUSTOM_FIELD_COLUMNS = [(k, k) for k in ("key", "label_ru", "label_en", "type", "options", "required", "in_list",
                                         "position", "archived_at")]
CAMPAIGN_COLUMNS = [(k, k) for k in (
    "id", "name", "goal", "channel", "status", "starts_on", "ends_on", "size", "control_share", "members_count",
    "control_count", "built_at", "launched_at", "response_days", "criteria", "ranking", "suppression")]
MEMBER_COLUMNS = [(k, k) for k in ("campaign_id", "rank", "client_id", "score", "control", "reason")]


def _cell(value: Any) -> str:
    if isinstance(value, dict | list) and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, default=str)
    return client_export._text(value)  # noqa: SLF001 - the client export's formula-safe cell


class _CsvFile:
    """One CSV entry of the ZIP: UTF-8 with BOM, ';' (what Excel opens in Russia), a header row."""

    def __init__(self, zf: zipfile.ZipFile, name: str, columns: list[tuple[str, str]]) -> None:
        self.name, self.keys, self.rows = name, [k for k, _label in columns], 0
        self.text = io.TextIOWrapper(zf.open(name, "w", force_zip64=True), encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.text, delimiter=";")
        self.writer.writerow([label for _k, label in columns])

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.writer.writerow([_cell(row.get(k)) for k in self.keys])
            self.rows += 1

    def close(self) -> dict[str, Any]:
        self.text.close()
        return {"columns": self.keys, "rows": self.rows}


async def _keyset(db: AsyncSession, model: Any, order: Any) -> Any:
    """All rows of a table in batches by key, never the whole table in memory."""
    last = None
    while True:
        query = select(model).order_by(order).limit(BATCH)
        if last is not None:
            query = query.where(order > last)
        batch = list(await db.scalars(query))
        if not batch:
            return
        yield batch
        last = getattr(batch[-1], order.key)


def _plain(obj: Any, keys: list[str]) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in keys}


async def write_zip(db: AsyncSession, out: Any, *, full_passport: bool, progress: Any = None) -> dict[str, Any]:
    """Write the whole company into `out` (a binary file); returns the manifest."""
    totals = (await db.execute(select(func.count(Client.id), func.coalesce(func.sum(Client.revenue_total), 0),
                                      func.coalesce(func.sum(Client.unpaid_total), 0)))).one()
    n_ops = await db.scalar(select(func.count(Operation.id)))
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "exported_at": clock.now().isoformat(),
        "passport": "full" if full_passport else "masked", "delimiter": ";", "encoding": "utf-8-sig",
        "totals": {"clients": totals[0], "operations": n_ops, "revenue": str(totals[1]), "unpaid": str(totals[2])},
        "files": {},
    }
    done, total = 0, totals[0] + n_ops
    groups = {g.id: g.name for g in await client_service.dictionary(db, "product_groups", include_archived=True)}
    dirs = {d.id: d.name for d in await client_service.dictionary(db, "directions", include_archived=True)}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, model in (("product_groups.csv", ProductGroup), ("directions.csv", Direction)):
            f = _CsvFile(zf, name, DICTIONARY_COLUMNS)
            async for batch in _keyset(db, model, model.id):
                f.write(_plain(x, ["id", "name", "archived_at"]) for x in batch)
            manifest["files"][name] = f.close()
        f = _CsvFile(zf, "custom_fields.csv", CUSTOM_FIELD_COLUMNS)
        async for batch in _keyset(db, CustomField, CustomField.id):
            f.write(_plain(x, [k for k, _l in CUSTOM_FIELD_COLUMNS]) for x in batch)
        manifest["files"]["custom_fields.csv"] = f.close()

        extra = [("archived_at", _("Archived")), ("erased_at", _("Erased")), ("created_at", _("Created")),
                 ("product_group_ids", _("Product group IDs")), ("direction_ids", _("Direction IDs"))]
        f = _CsvFile(zf, "clients.csv", client_export.columns(full_passport)
                     + await client_export.custom_columns(db) + extra)
        async for batch in _keyset(db, Client, Client.id):
            rows = []
            for c in batch:
                row = client_export._row(c, groups, dirs, full_passport)  # noqa: SLF001 - one row shape for both
                row.update(archived_at=c.archived_at, erased_at=c.erased_at, created_at=c.created_at,
                           product_group_ids=" ".join(map(str, c.product_group_ids)),
                           direction_ids=" ".join(map(str, c.direction_ids)))
                rows.append(row)
            f.write(rows)
            done += len(batch)
            if progress:
                await progress(done, total)
        manifest["files"]["clients.csv"] = f.close()

        f = _CsvFile(zf, "operations.csv", operation_columns())
        keys = [k for k, _l in operation_columns() if k not in ("product_group", "direction")]
        async for batch in _keyset(db, Operation, Operation.id):
            f.write({**_plain(o, keys), "product_group": groups.get(o.product_group_id),
                     "direction": dirs.get(o.direction_id)} for o in batch)
            done += len(batch)
            if progress:
                await progress(done, total)
        manifest["files"]["operations.csv"] = f.close()

        from saas.campaigns.models import Campaign, CampaignMember

        f = _CsvFile(zf, "campaigns.csv", CAMPAIGN_COLUMNS)
        async for batch in _keyset(db, Campaign, Campaign.id):
            f.write(_plain(x, [k for k, _l in CAMPAIGN_COLUMNS]) for x in batch)
        manifest["files"]["campaigns.csv"] = f.close()
        f = _CsvFile(zf, "campaign_members.csv", MEMBER_COLUMNS)
        for (campaign_id,) in (await db.execute(select(Campaign.id).order_by(Campaign.id))).all():
            members = await db.scalars(select(CampaignMember).where(CampaignMember.campaign_id == campaign_id)
                                       .order_by(CampaignMember.rank))
            f.write(_plain(m, [k for k, _l in MEMBER_COLUMNS]) for m in members)
        manifest["files"]["campaign_members.csv"] = f.close()
        zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    return manifest


# ---- starting, finding and expiring ------------------------------------------------------------


async def do_start_job(db: AsyncSession, tenant: Tenant, func: Callable[..., Any], *, kind: str, user_id: int,
                       actor: str,
                       result: dict[str, Any], payload: bytes | None = None, total: int = 0) -> Job:
    """Create the job row, commit it, and queue it. QueueUnavailable leaves the row failed."""
    settings = get_settings()
    job = Job(kind=kind, created_by=user_id, result=result, payload=payload, total=total)
    db.add(job)
    await db.flush()
    _audit(db, actor, f"{kind}.requested", job.id, passport=result.get("passport"))

    def undo() -> None:
        job.payload = None

    await start_job(db, tenant, job, func, undo=undo)
    if payload is not None:  # an upload that never runs is emptied by the maintenance all the same
        await remember_expiry(settings, tenant.schema_name, job.id, clock.now() + VALID_FOR)
    return job


def _audit(db: AsyncSession, actor: str, action: str, job_id: int, **details: Any) -> None:
    from saas.accounts.company import audit

    audit(db, actor, action, "export", job_id, **{k: v for k, v in details.items() if v is not None})


async def do_start_export(db: AsyncSession, tenant: Tenant, *, user_id: int, actor: str, full_passport: bool) -> Job:
    return await do_start_job(db, tenant, build_export, kind="export", user_id=user_id, actor=actor,
                              result={"passport": "full" if full_passport else "masked",
                                      "key": secrets.token_urlsafe(18)})


async def recent_jobs(db: AsyncSession, limit: int = 10) -> list[Job]:
    return list(await db.scalars(select(Job).where(Job.kind.in_(KINDS)).order_by(Job.id.desc()).limit(limit)))


async def access_job(db: AsyncSession, job_id: int) -> Job:
    """An export or restore job of this company (the session is bound to it), or 404."""
    job = await db.scalar(select(Job).where(Job.id == job_id, Job.kind.in_(KINDS)))
    if job is None:
        raise NotFoundException()
    return job


def expires_at(job: Job) -> datetime | None:
    value = (job.result or {}).get("expires_at")
    return datetime.fromisoformat(value) if value else None


def is_expired(job: Job, now: datetime | None = None) -> bool:
    when = expires_at(job)
    return bool((job.result or {}).get("expired")) or (when is not None and (now or clock.now()) >= when)


async def do_download(db: AsyncSession, job: Job, key: str, actor: str) -> bytes | None:
    """The ZIP for a valid link (audited), None when it has expired. A wrong key is not found."""
    if job.kind != "export" or job.status != "done" or not secrets.compare_digest(
            str((job.result or {}).get("key", "")), key):
        raise NotFoundException()
    if is_expired(job):
        await _forget(db, job.id)
        return None
    data = await db.scalar(select(Job.payload).where(Job.id == job.id))
    if data is None:
        return None
    passport = job.result.get("passport")
    _audit(db, actor, "export.downloaded", job.id, passport=passport, bytes=len(data))
    if passport == "full":  # decrypted passports left the system: the same trail as a passport view
        _audit(db, actor, "passport.exported", job.id, rows=job.result.get("clients"))
    return data


async def _forget(db: AsyncSession, job_id: int) -> bool:
    done = await db.execute(update(Job).where(Job.id == job_id, Job.kind.in_(KINDS)).values(
        payload=None, result=Job.result.op("||", return_type=JSONB)(literal_column("'{\"expired\": true}'::jsonb"))))
    return bool(done.rowcount)


async def forget_after_erasure(db: AsyncSession, client_id: int) -> dict[str, int]:
    """A client was erased (`clients.events.client_erased`): every saved export and restore upload
    of the company may hold them, so each is dropped now (its page says why; build a new one).
    Exports being built are locked until the erasure commits: their save then sees it and rebuilds."""
    await db.execute(select(Job.id).where(Job.kind == "export", Job.status.in_(("queued", "running")))
                     .with_for_update())
    done = await db.execute(update(Job).where(Job.kind.in_(KINDS), Job.payload.is_not(None)).values(
        payload=None, result=Job.result.op("||", return_type=JSONB)(
            literal_column("'{\"expired\": true, \"removed\": \"erasure\"}'::jsonb"))))
    return {"saved_exports": done.rowcount}


async def erased_count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Client).where(Client.erased_at.is_not(None))) or 0


async def remember_expiry(settings: Settings, schema: str, job_id: int, when: datetime) -> None:
    from saas.core.jobs import sync_redis

    await asyncio.to_thread(sync_redis(settings.redis_url).zadd, expiring_key(settings),
                            {f"{schema}:{job_id}": when.timestamp()})


async def remove_expired(db: Database, settings: Settings | None = None, now: datetime | None = None) -> int:
    """Empty every export (and restore upload) past its time; called by the hourly maintenance."""
    from saas.core.jobs import sync_redis

    settings = settings or get_settings()
    redis = sync_redis(settings.redis_url)
    key = expiring_key(settings)
    due = await asyncio.to_thread(redis.zrangebyscore, key, "-inf", (now or clock.now()).timestamp())
    removed = 0
    for member in due:
        schema, _sep, job_id = member.decode().partition(":")
        try:
            async with db.session(check_schema(schema)) as s:
                removed += await _forget(s, int(job_id))
        except Exception:  # noqa: BLE001, S110 - a company deleted since: nothing left to remove
            pass
        await asyncio.to_thread(redis.zrem, key, member)
    return removed


# ---- the job -----------------------------------------------------------------------------------


def build_export(tenant_id: int, job_id: int) -> dict:
    from saas.clients.imports.service import Progress
    from saas.core.jobs import run_tenant_job

    async def body(db: Database, tenant: Tenant, job: Job) -> dict:
        schema = check_schema(tenant.schema_name)
        full = job.result.get("passport") == "full"
        for _attempt in range(3):
            out = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115 - closed once read
            async with db.session() as s:  # one read-only snapshot: clients and operations agree
                await s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
                await bind(s, schema)
                erased = await erased_count(s)
                manifest = await write_zip(s, out, full_passport=full,
                                           progress=Progress(lambda: db.session(schema), job.id))
            out.seek(0)
            data = out.read()
            out.close()
            async with db.session(schema) as s:
                # A client erased while the snapshot was read would live on in this file: build again.
                # The erasure locks this row too (forget_after_erasure): the count below runs after
                # it commits, or the erasure's drop runs after this save commits.
                await s.execute(select(Job.id).where(Job.id == job.id).with_for_update())
                if await erased_count(s) != erased:
                    continue
                finished = clock.now()
                result = {**job.result, "expires_at": (finished + VALID_FOR).isoformat(), "bytes": len(data),
                          "clients": manifest["totals"]["clients"], "operations": manifest["totals"]["operations"]}
                await s.execute(update(Job).where(Job.id == job.id).values(payload=data, result=result))
                break
        else:
            raise RuntimeError("clients kept being erased while the export was read")  # RQ retries later
        async with db.session(schema) as s:
            _audit(s, f"job:{job.id}", "export.built", job.id, passport=result["passport"],
                                 clients=result["clients"], operations=result["operations"])
        await remember_expiry(get_settings(), schema, job.id, finished + VALID_FOR)
        return {"bytes": len(data)}

    return run_tenant_job(tenant_id, job_id, body)
