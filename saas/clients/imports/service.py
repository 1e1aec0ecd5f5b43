"""Imports of clients and operations: upload, mapping, dry run, the background run, and undo.

A run is one transaction: a worker killed half-way leaves nothing behind, and the retry starts
clean. In "accepted rows" mode bad rows are skipped and reported; in "all or nothing" mode one bad
row rolls the whole file back. Progress goes to the job row through its own short transactions.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import BigInteger, Text, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import crypto, service
from saas.clients.imports import bulk
from saas.clients.imports.mapping import guess_mapping
from saas.clients.imports.reader import MAX_BYTES, ImportFileError, Survey, survey_in_thread
from saas.clients.imports.rows import MATCH_KEYS, batches, client_keys
from saas.clients.models import Client, Import, ImportUndo, Operation
from saas.clients.operations import refresh_metrics
from saas.clients.rules import CLIENT_FIELDS, OPERATION_FIELDS, RowResult, split_full_name
from saas.core import clock
from saas.accounts.limits import room
from saas.core.models import Job
from saas.core.errors import FormError
from saas.core.i18n import _
from saas.core.values import formula_safe, joined

BATCH = 1000
MAX_REJECTED_KEPT = 10_000
JSON_COLUMNS = ("consent", "custom")
UNDO_FIELDS = ("last_name", "first_name", "middle_name", "birth_date", "phone", "email", "address", "note",
               "tags", "product_group_ids", "direction_ids", "consent", "custom", "passport_enc", "passport_key_id",
               "passport_bidx", "passport_mask")


def fields_for(kind: str) -> list[str]:
    return CLIENT_FIELDS if kind == "clients" else OPERATION_FIELDS


def default_options(kind: str) -> dict[str, Any]:
    return {"match_by": ["phone", "email", "passport"], "on_match": "update", "mode": "accepted"}


async def do_upload(db: AsyncSession, *, data: bytes, filename: str, kind: str, actor: str,
                    mapping: dict[str, str] | None = None) -> Import:
    """Check the file as a whole and remember it; nothing is imported yet. The API answers with the
    rows counted, so the file is read here, in a bounded thread pool (the event loop keeps serving);
    the pages store the file and let a worker read it (`jobs.do_store_upload`)."""
    check_upload(data, kind)
    try:
        found = await survey_in_thread(data, filename)
    except ImportFileError as exc:
        raise FormError({"file": _(str(exc))}) from None
    imp = Import(kind=kind, filename=filename[:200] or "upload", payload=data, options=default_options(kind),
                 created_by=actor)
    await apply_survey(db, imp, found, mapping)
    db.add(imp)
    await db.flush()
    await service.audit(db, actor, "import.uploaded", "import", imp.id, kind=kind, rows=found.total)
    return imp


def check_upload(data: bytes, kind: str) -> None:
    """What can be said of an upload without reading it."""
    if kind not in ("clients", "operations"):
        raise FormError({"kind": _("Choose what the file holds: clients or operations.")})
    if len(data) > MAX_BYTES:
        raise FormError({"file": _("The file is larger than 100 MB.")})
    if not data:
        raise FormError({"file": _("The file is empty.")})


async def apply_survey(db: AsyncSession, imp: Import, found: Survey, mapping: dict[str, str] | None = None) -> None:
    """Put what reading the file found on the import: its shape, row count, first rows, and the
    mapping (guessed from the headers unless given)."""
    if found.total == 0:
        raise FormError({"file": _("The file has a header but no rows.")})
    table = found.table
    guessed = {str(i): f for i, f in guess_mapping(table.headers, imp.kind).items()}
    if mapping:
        from saas.clients.custom import definitions

        allowed = set(fields_for(imp.kind)) | {f"custom:{fd.key}" for fd in await definitions(db)}
        bad = [f for f in mapping.values() if f and f not in allowed]
        if bad:
            raise FormError({"mapping": _("Unknown fields in the mapping: %(f)s", f=", ".join(bad))})
        guessed = {str(k): v for k, v in mapping.items() if v}
    imp.file_type, imp.encoding, imp.delimiter = table.file_type, table.encoding, table.delimiter
    imp.headers, imp.mapping, imp.total_rows, imp.sample = table.headers, guessed, found.total, found.sample


async def access_import(db: AsyncSession, import_id: int) -> Import:
    from litestar.exceptions import NotFoundException

    imp = await db.get(Import, import_id)
    if imp is None:
        raise NotFoundException()
    return imp


def check_options(kind: str, mapping: dict[str, str], options: dict[str, Any], headers: list[str],
                  custom_keys: list[str] = ()) -> None:
    allowed = set(fields_for(kind)) | ({f"custom:{k}" for k in custom_keys} if kind == "clients" else set())
    clean = {k: v for k, v in mapping.items() if v}
    errors = {}
    if any(v not in allowed for v in clean.values()) or any(not k.isdigit() or int(k) >= len(headers) for k in clean):
        errors["mapping"] = _("The mapping names an unknown column or field.")
    taken = list(clean.values())
    if len(taken) != len(set(taken)):
        errors["mapping"] = _("Each field can come from one column only.")
    if kind == "clients" and not set(taken) & {"full_name", "last_name", "first_name"}:
        errors["mapping"] = _("Map at least one name column (full name, last name or first name).")
    if kind == "operations":
        if not set(taken) & {"client_phone", "client_email", "client_passport", "client_name"}:
            errors["mapping"] = _("Map a column that finds the client: phone, email, passport or name.")
        elif not {"occurred_on", "amount"} <= set(taken):
            errors["mapping"] = _("Map the date and amount columns.")
    if options.get("on_match") not in ("update", "skip") or options.get("mode") not in ("accepted", "all"):
        errors["options"] = _("Choose what to do with matches and with bad rows.")
    if errors:
        raise FormError(errors)


# ---- matching --------------------------------------------------------------------------------


async def find_matches(db: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Existing clients for many (kind, value) keys in three indexed queries."""
    found: dict[tuple[str, str], int] = {}
    # The import's own new rows are not in the statistics yet, so the planner, guessing how many
    # clients share a phone, scans the whole (growing) table for each batch: 75 ms a lookup at 400k
    # rows, and an import that slows as it goes. These lookups are by indexed value: say so.
    await db.execute(text("SET LOCAL enable_seqscan = off"))
    for kind, column in (("phone", Client.phone), ("email", Client.email), ("passport", Client.passport_bidx)):
        values = list({v for k, v in keys if k == kind})
        if values:
            # = ANY(one array parameter): an expanding IN would compile a parameter per value.
            rows = await db.execute(select(column, Client.id)
                                    .where(column == func.any(bindparam("values", values, type_=ARRAY(Text))),
                                           Client.erased_at.is_(None))
                                    .order_by(Client.id))
            for value, cid in rows:
                found.setdefault((kind, value), cid)
    await db.execute(text("SET LOCAL enable_seqscan = on"))
    return found


@dataclass
class Run:
    """What one import run remembers from batch to batch."""
    imp: Import
    match_by: list[str]
    on_match: str
    # Keys of the clients this file created or matched: they decide before the database does.
    seen: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    # (kind, exact name) -> id: a file repeats a few dictionary names and clients' names on every row,
    # and only this run changes what they resolve to, so each is asked once a run.
    names: dict[tuple[str, str], int | None] = dataclasses.field(default_factory=dict)
    # Clients given an undo row; this run writes the import's only ones (a failed run rolled back).
    snapshotted: set[int] = dataclasses.field(default_factory=set)


@dataclass
class Outcome:
    action: str  # created | updated | skipped | rejected
    line: int
    client_id: int | None = None
    reason: str | None = None


# ---- the run ---------------------------------------------------------------------------------


class Progress:
    """Writes progress to the job row in its own transaction, at most every BATCH rows."""

    def __init__(self, db_factory, job_id: int | None) -> None:  # noqa: ANN001
        self.db_factory, self.job_id = db_factory, job_id

    async def __call__(self, done: int, total: int, phase: str | None = None) -> None:
        """`phase` names a step before rows are written ("reading", "checking"), shown instead of a count."""
        if self.job_id is None:
            return
        async with self.db_factory() as s:
            await s.execute(update(Job).where(Job.id == self.job_id).values(
                progress=done, total=total, result={"phase": phase} if phase else {}))


async def run_import(db: AsyncSession, imp: Import, *, progress: Progress | None = None) -> dict[str, int]:
    """Apply the import in the caller's transaction; returns the counts."""
    opts = imp.options or {}
    run = Run(imp, [k for k in opts.get("match_by", []) if k in MATCH_KEYS], opts.get("on_match", "update"))
    rejected: list[dict[str, Any]] = []
    counts = {"created": 0, "updated": 0, "skipped": 0, "rejected": 0}
    touched: set[int] = set()
    done = 0

    async def flush(batch: list[tuple[RowResult, dict[str, str]]], created_by_sql: int = 0) -> None:
        nonlocal done
        handler = _client_batch if imp.kind == "clients" else _operation_batch
        for outcome, raw in await handler(db, run, batch) if batch else ():
            counts[outcome.action] += 1
            if outcome.client_id:
                touched.add(outcome.client_id)
            if outcome.action == "rejected" and len(rejected) < MAX_REJECTED_KEPT:
                rejected.append({"line": outcome.line, "reason": outcome.reason, "values": raw})
        counts["created"] += created_by_sql
        done += len(batch) + created_by_sql
        if progress:
            await progress(done, imp.total_rows)

    from saas.clients.custom import definitions

    fields = await definitions(db) if imp.kind == "clients" else None
    chunks = await bulk.plan(db, imp, fields, run.match_by, progress) if imp.kind == "clients" else None
    if chunks is not None:  # most rows go in set-based; the rest, below, row by row as before
        async for chunk in chunks:
            await flush(chunk.rest, chunk.created)
    else:
        async for rows in batches(imp, fields, BATCH):
            await flush(rows)
    if imp.kind == "clients":
        await bulk.drop_staging(db)
    if imp.kind == "operations":
        await refresh_metrics(db, sorted(touched))
    imp.created_count, imp.updated_count = counts["created"], counts["updated"]
    imp.skipped_count, imp.rejected_count, imp.rejected = counts["skipped"], counts["rejected"], rejected
    imp.processed_rows = done
    return counts


async def _client_batch(db: AsyncSession, run: Run,
                        batch: list[tuple[RowResult, dict]]) -> list[tuple[Outcome, dict]]:
    match_by, seen = run.match_by, run.seen
    company = crypto.company_of(db)
    keys = [k for result, _raw in batch if not result.errors for k in client_keys(result.values, match_by, company)]
    found = await find_matches(db, [k for k in keys if k not in seen])

    def lookup(key: tuple[str, str]) -> int | None:
        """The file's own earlier rows decide first, then the clients that were there before."""
        return seen[key] if key in seen else found.get(key)

    # The clients this batch will update, loaded in one query: each row's get() is then no query.
    to_update = {m for k in keys if (m := lookup(k)) is not None} if run.on_match == "update" else set()
    loaded = {c.id: c for c in await db.scalars(select(Client).where(Client.id == func.any(
        bindparam("ids", sorted(to_update), type_=ARRAY(BigInteger)))))} if to_update else {}
    out: list[tuple[Outcome, dict]] = []
    undo_rows: list[dict[str, Any]] = []
    pending: list[tuple[int, list, dict]] = []  # (index in out, keys, column values)
    pending_keys: set[tuple[str, str]] = set()

    async def insert_pending() -> None:
        """New clients go in with one COPY, not a flush per row."""
        if pending and (space := await room(db, None, "clients")) is not None:
            for index, _keys, _values in pending[space.left:]:  # past the plan's limit, in file order
                out[index][0].action, out[index][0].reason = "rejected", space.message
            del pending[space.left:]
        if not pending:
            pending_keys.clear()
            return
        ids = await copy_new_clients(db, [values for _i, _k, values in pending])
        for (index, row_keys, _values), client_id in zip(pending, ids, strict=True):
            out[index][0].client_id = client_id
            for k in row_keys:
                seen[k] = client_id
        pending.clear()
        pending_keys.clear()

    for result, raw in batch:
        if result.errors:
            out.append((Outcome("rejected", result.line, reason=_reason(result)), raw))
            continue
        row_keys = client_keys(result.values, match_by, company)
        if not pending_keys.isdisjoint(row_keys):
            await insert_pending()  # the file repeats a client created a few rows above
        match = next((m for k in row_keys if (m := lookup(k)) is not None), None)
        if match is None:
            pending.append((len(out), row_keys, await _new_client_values(db, run, result.values)))
            pending_keys.update(row_keys)
            out.append((Outcome("created", result.line), raw))
        elif run.on_match == "skip":
            out.append((Outcome("skipped", result.line, match), raw))
        else:
            client = loaded.get(match) or await db.get(Client, match)  # created earlier in this batch: not loaded
            replaced = await _update_client(db, run, client, result.values, undo_rows)
            for k in row_keys:
                seen[k] = match
            # The batch's lookups were made before this row: a value this update took away from
            # the client is looked up again, so that the outcome is the row-by-row one whatever the
            # batches (and the set-based import's, which batches differently).
            if stale := [k for k in replaced if k[0] in match_by and k not in seen]:
                for k in stale:
                    found.pop(k, None)
                found.update(await find_matches(db, stale))
            out.append((Outcome("updated", result.line, match), raw))
    await insert_pending()
    if undo_rows:
        await db.execute(insert(ImportUndo), undo_rows)
    return out


async def copy_new_clients(db: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """New clients through COPY in the caller's transaction, with ids drawn from the table's own
    sequence first: an INSERT … RETURNING through the ORM costs more than parsing the rows."""
    ids = await service.seal_new_rows(db, rows)  # the ids first: each passport's seal names its client
    columns = ["id", *rows[0]]
    records = [(client_id, *(json.dumps(row[k]) if k in JSON_COLUMNS else row[k] for k in columns[1:]))
               for client_id, row in zip(ids, rows, strict=True)]
    raw = (await (await db.connection()).get_raw_connection()).driver_connection
    await raw.copy_records_to_table("clients", records=records, columns=columns)  # search_path: the tenant
    return ids


async def _interest_ids(db: AsyncSession, run: Run, values: dict[str, Any]) -> dict[str, list[int]]:
    """Dictionary ids for a row's names, created when new (each name asked once a run: `Run.names`)."""
    cache = run.names
    out = {}
    for kind, column in (("product_groups", "product_group_ids"), ("directions", "direction_ids")):
        ids = []
        for name in values.get(kind) or ():
            if (kind, name) not in cache:
                cache[kind, name] = (await service.resolve_names(db, kind, [name], create=True))[0]
            if cache[kind, name] not in ids:
                ids.append(cache[kind, name])
        if ids:
            out[column] = ids
    return out


async def _new_client_values(db: AsyncSession, run: Run, values: dict[str, Any]) -> dict[str, Any]:
    """Column values of a new client: the same encryption and consent rules as the form."""
    imp = run.imp
    client = SimpleNamespace()  # plain attributes: an ORM instance per row costs more than the rest of the row
    for field in service.PLAIN_FIELDS:
        setattr(client, field, values.get(field, service.TEXT_DEFAULTS.get(field)))
    client.consent = {}
    service._apply_consent(client, _consents(values), f"import:{imp.id}")  # noqa: SLF001
    row = {field: getattr(client, field) for field in (*service.PLAIN_FIELDS, "consent")}
    # The form's encryption, sealed once `copy_new_clients` has drawn the id.
    row.update(service.passport_columns(values, crypto.company_of(db), None))
    row.update(import_id=imp.id, tags=values.get("tags", []), custom=values.get("custom", {}),
               product_group_ids=[], direction_ids=[])
    for column, ids in (await _interest_ids(db, run, values)).items():
        row[column] = ids
    return row


async def _update_client(db: AsyncSession, run: Run, client: Client, values: dict[str, Any],
                         undo_rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Apply a matched row (its undo snapshot, the first time, goes to `undo_rows`); returns the
    client's matching keys this replaced (kind, old value)."""
    before = {"phone": client.phone, "email": client.email, "passport": client.passport_bidx}
    unchanged = tuple(getattr(client, field) for field in UNDO_FIELDS)
    imp = run.imp
    if client.id not in run.snapshotted:
        run.snapshotted.add(client.id)
        undo_rows.append({"import_id": imp.id, "client_id": client.id, "before": _snapshot(client)})
    for field in service.PLAIN_FIELDS:
        if values.get(field) not in (None, ""):
            setattr(client, field, values[field])
    if values.get("passport_number"):
        service._apply_passport(client, values, crypto.company_of(db))  # noqa: SLF001
    service._apply_consent(client, {k: v for k, v in _consents(values).items() if v}, f"import:{imp.id}")  # noqa: SLF001
    if values.get("tags"):
        client.tags = list(dict.fromkeys([*client.tags, *values["tags"]]))
    if values.get("custom"):
        client.custom = {**(client.custom or {}), **values["custom"]}
    for column, ids in (await _interest_ids(db, run, values)).items():
        setattr(client, column, list(dict.fromkeys([*getattr(client, column), *ids])))
    if tuple(getattr(client, field) for field in UNDO_FIELDS) != unchanged:
        client.updated_at = clock.now()  # a row that repeats the card changes nothing, not even this
    after = {"phone": client.phone, "email": client.email, "passport": client.passport_bidx}
    return [(kind, old) for kind, old in before.items() if old and after[kind] != old]


def _reason(result: RowResult) -> str:
    """A rejected row's reasons in the company's language (the job runs in it), as the report shows them."""
    return joined(result.errors.values(), _)


def _consents(values: dict[str, Any]) -> dict[str, bool]:
    return {ch: bool(values[f"consent_{ch}"]) for ch in service.CHANNELS if f"consent_{ch}" in values}


def _snapshot(client: Client) -> dict[str, Any]:
    snap = {}
    for field in UNDO_FIELDS:
        value = getattr(client, field)
        if isinstance(value, bytes):
            value = value.hex()
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        snap[field] = value
    return snap


async def _operation_batch(db: AsyncSession, run: Run,
                           batch: list[tuple[RowResult, dict]]) -> list[tuple[Outcome, dict]]:
    keys: list[tuple[str, str]] = []
    company = crypto.company_of(db)
    for result, _raw in batch:
        v = result.values
        if v.get("client_phone"):
            keys.append(("phone", v["client_phone"]))
        if v.get("client_email"):
            keys.append(("email", v["client_email"]))
        if v.get("client_passport"):
            keys.append(("passport", crypto.blind_index(v["client_passport"], company=company)))
    found = await find_matches(db, keys)
    out = []
    new_ops = []
    for result, raw in batch:
        if result.errors:
            out.append((Outcome("rejected", result.line, reason=_reason(result)), raw))
            continue
        v = result.values
        candidates = [("phone", v.get("client_phone")), ("email", v.get("client_email")),
                      ("passport", crypto.blind_index(v["client_passport"], company=company)
                       if v.get("client_passport") else None)]
        client_id = next((found[(k, val)] for k, val in candidates if val and (k, val) in found), None)
        if client_id is None and v.get("client_name"):
            client_id = await _client_by_name(db, run, v["client_name"])
        if client_id is None:
            out.append((Outcome("rejected", result.line, reason=_("No client matches this row.")), raw))
            continue
        ids = await _interest_ids(db, run, {"product_groups": [v["product_group"]] if v.get("product_group") else [],
                                       "directions": [v["direction"]] if v.get("direction") else []})
        new_ops.append({
            "client_id": client_id, "kind": v.get("kind", "sale"), "occurred_on": v["occurred_on"],
            "amount": v["amount"], "product_group_id": (ids.get("product_group_ids") or [None])[0],
            "direction_id": (ids.get("direction_ids") or [None])[0], "due_on": v.get("due_on"),
            "paid_on": v.get("paid_on"), "note": v.get("note"), "import_id": run.imp.id,
        })
        out.append((Outcome("created", result.line, client_id), raw))
    if new_ops:
        await db.execute(Operation.__table__.insert(), new_ops)
    return out


async def _client_by_name(db: AsyncSession, run: Run, name: str) -> int | None:
    """The one client with this name, else None (an ambiguous name matches nobody). An operations
    file creates no clients, so each name is asked once a run (`Run.names`)."""
    cache = run.names
    if ("client", name) not in cache:
        last, first, middle = split_full_name(name)
        ids = list(await db.scalars(select(Client.id).where(
            func.lower(Client.last_name) == last.lower(), func.lower(Client.first_name) == first.lower(),
            func.lower(Client.middle_name) == middle.lower(), Client.erased_at.is_(None)).limit(2)))
        cache["client", name] = ids[0] if len(ids) == 1 else None
    return cache["client", name]


# ---- undo ------------------------------------------------------------------------------------


async def do_undo(db: AsyncSession, imp: Import, actor: str) -> dict[str, int]:
    """Take a finished import back: its operations and new clients go, updated clients revert.
    An erased client is never touched: not deleted (their other operations' amounts stay), never
    given values back (the erasure also deleted their snapshots)."""
    if imp.status != "done":
        raise FormError({"import": _("Only a finished import can be undone.")})
    if imp.expired_at is not None:
        from saas.clients.imports.retention import undo_gone_message

        raise FormError({"import": undo_gone_message(imp)})
    affected = set(await db.scalars(select(Operation.client_id).where(Operation.import_id == imp.id).distinct()))
    ops_deleted = (await db.execute(delete(Operation).where(Operation.import_id == imp.id))).rowcount
    clients_deleted = (await db.execute(delete(Client).where(Client.import_id == imp.id,
                                                             Client.erased_at.is_(None)))).rowcount
    restored = 0
    for undo in await db.scalars(select(ImportUndo).where(
            ImportUndo.import_id == imp.id, ImportUndo.client_id.in_(
                select(Client.id).where(Client.erased_at.is_(None))))):
        values = dict(undo.before)
        if values.get("passport_enc"):
            values["passport_enc"] = bytes.fromhex(values["passport_enc"])
        for key in ("birth_date",):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key]).date()
        await db.execute(update(Client).where(Client.id == undo.client_id, Client.erased_at.is_(None))
                         .values(**values))
        restored += 1
    await db.execute(delete(ImportUndo).where(ImportUndo.import_id == imp.id))
    await refresh_metrics(db, sorted(affected))
    imp.status, imp.undone_at = "undone", clock.now()
    await service.audit(db, actor, "import.undone", "import", imp.id, operations=ops_deleted,
                        clients=clients_deleted, restored=restored)
    return {"operations": ops_deleted, "clients": clients_deleted, "restored": restored}


def rejected_csv(imp: Import, rows: list[dict[str, Any]] | None = None) -> bytes:
    """The rejected rows with their reasons, for download (formula-safe, UTF-8 with BOM); `rows`
    are the import's rejected rows as the reader may see them (passports masked: `privacy.py`)."""
    rows = imp.rejected if rows is None else rows
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";")
    # The file's own columns, under its own headers and in its order (those the mapping read: a
    # row keeps only those), then the line and the reason, so the file can be fixed and sent again.
    columns = [(header, (imp.mapping or {}).get(str(i))) for i, header in enumerate(imp.headers or [])]
    columns = [(header, field) for header, field in columns if field]
    known = {field for _h, field in columns}
    columns += [(field, field) for field in dict.fromkeys(v for row in rows for v in row.get("values", {}))
                if field not in known]  # a mapping changed since: nothing is dropped
    writer.writerow([*(formula_safe(str(h)) for h, _f in columns), _("Line"), _("Reason")])
    for row in rows:
        writer.writerow([*(formula_safe(str(row["values"].get(f, ""))) for _h, f in columns),
                         row["line"], formula_safe(row["reason"] or "")])
    return buf.getvalue().encode("utf-8-sig")


