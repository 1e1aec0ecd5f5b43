"""The clients API: `/api/v1/clients` and operations. The token decides the tenant and the role."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException, ServiceUnavailableException
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import operations as ops
from saas.clients import queries, service
from saas.clients.models import Client, Operation
from saas.clients.schemas import (
    ClientAnalyticsOut, ClientIn, ClientOut, ClientPageOut, ImportOut, Metrics, OperationIn, OperationOut,
    PassportIn, PassportOut, RejectedRowOut,
)
from saas.core.errors import ERRORS, FormError
from saas.accounts.deps import ApiCtx
from saas.core.i18n import _



@dataclass(frozen=True)
class ScoresView:
    """How the API reads and shows a client's scores. Analytics sits above clients, so it registers
    this at startup (`saas.analytics.api.register`) instead of the clients API importing it."""

    filters: Callable[[], dict[str, tuple[str, ...]]]  # list filter name -> the values it accepts
    load: Callable[[AsyncSession, int], Awaitable[Any]]  # one client's score row, or None
    out: Callable[[Any, str], ClientAnalyticsOut]  # (score row, company currency) -> payload


_scores: list[ScoresView] = []


def use_scores(view: ScoresView) -> None:
    _scores[:] = [view]


# The list's score filters and the ClientFilter fields they set; `segment` and `risk` are older names.
SCORE_FILTERS = {"status": "status", "rfm_segment": "segment", "reliability_group": "risk"}
OLD_NAMES = {"segment": "rfm_segment", "risk": "reliability_group"}


def score_filters(params: dict[str, Any]) -> dict[str, str]:
    """The score filters asked for (ClientFilter field -> value); an unknown value is a 422 naming the
    values allowed, since silently ignoring it would answer with the whole list."""
    if not _scores:
        return {}
    allowed = _scores[0].filters()
    chosen: dict[str, str] = {}
    errors: dict[str, str] = {}
    for old, name in OLD_NAMES.items():
        if str(params.get(old) or "").strip() and not str(params.get(name) or "").strip():
            params = {**params, name: params[old]}
    for name, field in SCORE_FILTERS.items():
        value = str(params.get(name) or "").strip()
        if not value:
            continue
        if value in allowed.get(name, ()):
            chosen[field] = value
        else:
            errors[name] = _("Unknown value \"%(value)s\": use one of %(allowed)s.", value=value[:40],
                             allowed=", ".join(allowed.get(name, ())))
    if errors:
        raise FormError(errors)
    return chosen


async def _names(ctx: ApiCtx, row: Any = None) -> tuple[dict[int, str], dict[int, str]]:
    """Every product group's and direction's name by id (archived ones too): read along with a
    card_row asked for queries.NAMES (`row`), else in a statement of their own."""
    if row is None:
        found = await queries.furniture(ctx.db, *queries.NAMES)
    else:
        found = queries.furniture_of(row, queries.NAMES)
    groups, dirs = (found[part] for part in queries.NAMES)
    return {g.id: g.name for g in groups}, {d.id: d.name for d in dirs}


def client_out(c: Any, groups: dict[int, str], dirs: dict[int, str], overdue: Any = 0,
               passport: dict[str, Any] | None = None, analytics: ClientAnalyticsOut | None = None) -> ClientOut:
    if passport is not None:
        pp = PassportOut(masked=False, **{k: passport.get(k) for k in
                                          ("series", "number", "issued_by", "issued_on", "division_code")})
    else:
        pp = PassportOut(masked=True, display=c.passport_mask) if c.passport_mask else None
    return ClientOut(
        id=c.id, last_name=c.last_name, first_name=c.first_name, middle_name=c.middle_name,
        birth_date=c.birth_date, phone=c.phone, email=c.email, address=c.address, passport=pp,
        consent={ch: ch in (c.consent or {}) for ch in service.CHANNELS}, tags=list(c.tags),
        product_groups=[groups[i] for i in c.product_group_ids if i in groups],
        directions=[dirs[i] for i in c.direction_ids if i in dirs], note=c.note, archived=c.archived_at is not None,
        metrics=Metrics(c.first_operation_on, c.last_operation_on, c.operations_count, str(c.revenue_total),
                        str(c.unpaid_total), str(overdue or "0.00")),
        created_at=c.created_at, custom=dict(c.custom or {}), analytics=analytics,
    )


def _analytics(ctx: ApiCtx, score: Any) -> ClientAnalyticsOut | None:
    return _scores[0].out(score, ctx.tenant.currency) if score is not None and _scores else None


def op_out(o: Operation | ops.AddedOperation, groups: dict[int, str], dirs: dict[int, str]) -> OperationOut:
    return OperationOut(o.id, o.client_id, o.kind, o.occurred_on, str(o.amount), groups.get(o.product_group_id),
                        dirs.get(o.direction_id), o.due_on, o.paid_on, o.note)


async def _present_fields(request: Request) -> set[str]:
    """Top-level keys sent, plus `passport.<part>` for the passport parts sent."""
    body = await request.json()
    if not isinstance(body, dict):
        return set()
    present = set(body)
    if isinstance(body.get("passport"), dict):
        present |= {f"passport.{k}" for k in body["passport"]}
    return present


async def _save(ctx: ApiCtx, data: ClientIn, present: set[str], client: Client | None) -> Client:
    raw: dict[str, Any] = {k: getattr(data, k) for k in service.PLAIN_FIELDS if k in present}
    fields = {k for k in service.PLAIN_FIELDS if k in present}
    if "passport" in present:
        passport = data.passport or PassportIn()
        for key in ("series", "number", "issued_by", "issued_on", "division_code"):
            # null clears the whole passport; otherwise only the parts sent change
            if data.passport is None or f"passport.{key}" in present:
                raw[f"passport_{key}"] = getattr(passport, key)
                fields.add(f"passport_{key}")
    consent = None
    if data.consent is not None:
        consent = {ch: v for ch in service.CHANNELS if (v := getattr(data.consent, ch)) is not None}
    groups = await service.resolve_names(ctx.db, "product_groups", data.product_groups, create=False) \
        if data.product_groups is not None else None
    dirs = await service.resolve_names(ctx.db, "directions", data.directions, create=False) \
        if data.directions is not None else None
    return await service.do_save_client(
        ctx.db, raw, actor=ctx.actor, client=client, present=fields, consent=consent, consent_source="api",
        tags=data.tags, product_group_ids=groups, direction_ids=dirs,
        custom=data.custom, custom_partial=client is not None,
    )


async def _one(ctx: ApiCtx, client: Client, reveal: str | None = None) -> ClientOut:
    groups, dirs = await _names(ctx)
    overdue = (await ops.overdue_amounts(ctx.db, [client.id])).get(client.id, 0)
    passport = None
    if reveal == "passport" and client.passport_enc is not None:
        if not ctx.allows("admin"):
            raise PermissionDeniedException("Revealing passport data needs the admin or owner role.")
        passport = service.reveal_passport(client)
        await service.audit(ctx.db, ctx.actor, "passport.revealed", "client", client.id)
    score = await _scores[0].load(ctx.db, client.id) if _scores else None
    return client_out(client, groups, dirs, overdue, passport, _analytics(ctx, score))


@get("/clients", summary="List clients (search, filters, keyset pages)", responses=ERRORS,
     description="Each client carries `analytics`, its scores from the last refresh (null before the first). "
                 "`status`, `rfm_segment` and `reliability_group` filter on them; an unknown value is a 422 "
                 "that lists the values allowed. Also `cf_<key>`, `cf_<key>_min`, `cf_<key>_max` filter on "
                 "custom fields. A bad number, id or date is a 422 that names the parameter.")
async def api_list_clients(  # the filters are read by parse_filter; declared here for the API document
    request: Request, ctx: ApiCtx, q: str | None = None, tag: str | None = None,
    status: Annotated[str | None, Parameter(description="new, active, at_risk or lost")] = None,
    rfm_segment: Annotated[str | None, Parameter(description="An RFM segment, e.g. champions")] = None,
    reliability_group: Annotated[str | None, Parameter(description="e.g. reliable, watch, risk")] = None,
    segment: Annotated[str | None, Parameter(description="Older name of rfm_segment")] = None,
    risk: Annotated[str | None, Parameter(description="Older name of reliability_group")] = None,
    debt: str | None = None, archived: str | None = None,
    sort: str | None = None, after: str | None = None, limit: str | None = None,
    product_group_id: str | None = None, direction_id: str | None = None, last_op_from: str | None = None,
    last_op_to: str | None = None, revenue_min: str | None = None, revenue_max: str | None = None,
    count: Annotated[bool, Parameter(description="Also return `total` (exact up to 10,000, else an estimate "
                                                 "flagged by `total_is_estimate`)")] = False,
) -> ClientPageOut:
    params = dict(request.query_params)
    chosen = score_filters(params)
    f = queries.parse_filter(params)
    if f.errors:  # a bad number, id or date would silently widen the list (or overflow in SQL)
        raise FormError(f.errors)
    if _scores:  # the values analytics knows, not parse_filter's fixed lists
        f.status, f.segment, f.risk = (chosen.get(k, "") for k in ("status", "segment", "risk"))
    page = await queries.list_clients(ctx.db, f, queries.API_COLUMNS, queries.ALL_SCORE)  # plain rows
    groups, dirs = await _names(ctx)
    total, estimated = await queries.count_clients(ctx.db, f, page) if count else (None, None)
    return ClientPageOut([client_out(c, groups, dirs, page.overdue.get(c.id, 0),
                                     analytics=_analytics(ctx, page.scores.get(c.id))) for c in page.rows],
                         page.next_cursor, total, estimated)


@post("/clients", summary="Create a client", responses=ERRORS)
async def api_create_client(request: Request, ctx: ApiCtx, data: ClientIn) -> ClientOut:
    client = await _save(ctx, data, await _present_fields(request), None)
    # New: no operation yet, so nothing overdue, and no scores (its id was drawn just now; scores are
    # written for existing clients only). The dictionaries' names only when it has some.
    groups, dirs = await _names(ctx) if client.product_group_ids or client.direction_ids else ({}, {})
    return client_out(client, groups, dirs, 0, None, None)


@get("/clients/{client_id:int}", summary="One client; ?reveal=passport for admins (audited)", responses=ERRORS)
async def api_get_client(ctx: ApiCtx, client_id: int, reveal: str | None = None) -> ClientOut:
    if reveal == "passport":  # decrypts: needs the whole Client
        return await _one(ctx, await service.access_client(ctx.db, client_id), reveal)
    # plain rows and the names, one statement
    row, score = await queries.card_row(ctx.db, client_id, queries.API_COLUMNS, furniture=queries.NAMES)
    groups, dirs = await _names(ctx, row)
    return client_out(row, groups, dirs, row.page_overdue or 0, None, _analytics(ctx, score))


@patch("/clients/{client_id:int}", summary="Change the fields sent", responses=ERRORS)
async def api_update_client(request: Request, ctx: ApiCtx, client_id: int, data: ClientIn) -> ClientOut:
    client = await service.access_client(ctx.db, client_id)
    client = await _save(ctx, data, await _present_fields(request), client)
    return await _one(ctx, client)


@delete("/clients/{client_id:int}", summary="Archive a client (restore with PATCH is not needed: see UI)",
        status_code=204, responses=ERRORS)
async def api_archive_client(ctx: ApiCtx, client_id: int) -> None:
    client = await service.access_client(ctx.db, client_id)
    await service.do_archive_client(ctx.db, client, ctx.actor, archived=True)


async def _op_raw(ctx: ApiCtx, data: OperationIn) -> tuple[dict[str, Any], dict[str, int], dict[int, str],
                                                              dict[int, str]]:
    """The operation's fields as the forms send them, with the names turned into ids, each name's row
    read once: (raw, the ids found, which check_operation need not read again, and the names by id,
    which answer a new operation)."""
    raw: dict[str, Any] = {k: getattr(data, k) for k in ("kind", "occurred_on", "amount", "due_on", "paid_on", "note")
                           if getattr(data, k) is not None}
    known: dict[str, int] = {}
    names: tuple[dict[int, str], dict[int, str]] = ({}, {})
    for i, (field, kind, name) in enumerate((("product_group_id", "product_groups", data.product_group),
                                             ("direction_id", "directions", data.direction))):
        if name is None:
            continue
        raw[field] = ""
        if name:
            row = await service.named_item(ctx.db, kind, name)
            raw[field] = known[field] = row.id
            names[i][row.id] = row.name
    return raw, known, *names


@get("/clients/{client_id:int}/operations", summary="A client's operations", responses=ERRORS)
async def api_list_operations(ctx: ApiCtx, client_id: int) -> list[OperationOut]:
    client = await service.access_client(ctx.db, client_id)
    groups, dirs = await _names(ctx)
    return [op_out(o, groups, dirs) for o in await ops.client_operations(ctx.db, client.id, limit=10_000)]


@post("/clients/{client_id:int}/operations", summary="Record a sale, service or return", responses=ERRORS)
async def api_add_operation(ctx: ApiCtx, client_id: int, data: OperationIn) -> OperationOut:
    client = await ops.lock_client(ctx.db, client_id)  # read and locked for the write in one statement
    raw, known, groups, dirs = await _op_raw(ctx, data)
    op = await ops.do_add_operation(ctx.db, client, raw, ctx.actor, known=known)
    return op_out(op, groups, dirs)  # the names just read (the answer names no other)


@patch("/operations/{operation_id:int}", summary="Change an operation", responses=ERRORS)
async def api_update_operation(ctx: ApiCtx, operation_id: int, data: OperationIn) -> OperationOut:
    op = await ops.access_operation(ctx.db, operation_id)
    op = await ops.do_update_operation(ctx.db, op, (await _op_raw(ctx, data))[0], ctx.actor)
    groups, dirs = await _names(ctx)
    return op_out(op, groups, dirs)


@delete("/operations/{operation_id:int}", summary="Delete an operation", status_code=204, responses=ERRORS)
async def api_delete_operation(ctx: ApiCtx, operation_id: int) -> None:
    await ops.do_delete_operation(ctx.db, await ops.access_operation(ctx.db, operation_id), ctx.actor)


HANDLERS = [api_list_clients, api_create_client, api_get_client, api_update_client, api_archive_client,
            api_list_operations, api_add_operation, api_update_operation, api_delete_operation]


# ---- imports ---------------------------------------------------------------------------------


def import_out(imp: Any, progress: int | None = None, reveal: bool = False) -> ImportOut:
    from saas.clients.imports.privacy import rejected_rows

    processed = imp.processed_rows if imp.status in ("done", "failed", "undone") else (progress or 0)
    return ImportOut(
        id=imp.id, kind=imp.kind, status=imp.status, filename=imp.filename, total_rows=imp.total_rows,
        processed_rows=processed, created=imp.created_count, updated=imp.updated_count, skipped=imp.skipped_count,
        rejected=imp.rejected_count, error=imp.error,
        rejected_rows=[RejectedRowOut(r["line"], r["reason"] or "", {k: str(v) for k, v in r["values"].items()})
                       for r in rejected_rows(imp, reveal=reveal, limit=1000)],  # passports masked unless revealed
    )


def _parse_mapping(raw: Any, headers: list[str]) -> dict[str, str] | None:
    """`mapping` is JSON: {"column header or index": "field"}."""
    import json

    if not raw:
        return None
    try:
        given = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        given = None
    if not isinstance(given, dict):
        raise FormError({"mapping": "The mapping must be a JSON object {\"column\": \"field\"}."})
    out = {}
    for key, field in given.items():
        index = str(key) if str(key).isdigit() else (str(headers.index(key)) if key in headers else None)
        if index is None:
            raise FormError({"mapping": f"No column named {key!r} in the file."})
        out[index] = str(field)
    return out


@dataclass
class ImportForm:
    """The multipart form of `POST /imports` (declared, so the API document shows the fields)."""

    file: UploadFile
    kind: str = "clients"  # clients | operations
    mapping: str | None = None  # JSON {"column header or index": "field"}; guessed from the headers if unset
    on_match: str | None = None  # update | skip
    mode: str | None = None  # accepted | all
    match_by: str | None = None  # comma-separated: phone, email, passport


@post("/imports", summary="Upload a CSV/XLSX file and start importing it (multipart)", status_code=202,
      responses=ERRORS)
async def api_create_import(
    ctx: ApiCtx, data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> ImportOut:
    from saas.clients.imports import service as imports
    from saas.clients.imports.jobs import do_start_import
    from saas.core.jobs import QueueUnavailable

    if not isinstance(data.file, UploadFile):
        raise FormError({"file": "Send the file as multipart field 'file'."})
    content = await data.file.read()
    imp = await imports.do_upload(ctx.db, data=content, filename=data.file.filename or "upload",
                                  kind=data.kind or "clients", actor=ctx.actor)
    mapping = _parse_mapping(data.mapping, imp.headers)
    if mapping is not None:
        imp.mapping = mapping
    for key in ("on_match", "mode"):
        if getattr(data, key):
            imp.options = {**imp.options, key: getattr(data, key)}
    if data.match_by:
        imp.options = {**imp.options, "match_by": [m.strip() for m in data.match_by.split(",")]}
    from saas.clients.custom import definitions

    imports.check_options(imp.kind, imp.mapping, imp.options, imp.headers,
                          [fd.key for fd in await definitions(ctx.db)])
    try:
        await do_start_import(ctx.db, ctx.tenant, imp, ctx.actor)
    except QueueUnavailable:
        raise ServiceUnavailableException("The queue is unavailable, try again.") from None
    return import_out(imp)


@get("/imports/{import_id:int}", summary="An import's status, progress, counts and rejected rows",
     description="Passport cells of the rejected rows are masked; `?reveal=passport` (admin or owner) gives "
                 "them in full and is recorded in the audit log.", responses=ERRORS)
async def api_get_import(ctx: ApiCtx, import_id: int, reveal: str | None = None) -> ImportOut:
    from sqlalchemy import select

    from saas.clients.imports import privacy
    from saas.clients.imports import service as imports
    from saas.core.models import Job

    imp = await imports.access_import(ctx.db, import_id)
    if reveal == "passport":
        if not ctx.allows("admin"):
            raise PermissionDeniedException("Revealing passport data needs the admin or owner role.")
        await service.audit(ctx.db, ctx.actor, "passport.revealed", "import", imp.id,
                            rows=privacy.revealed_count(imp))
    job = await ctx.db.scalar(select(Job).where(Job.kind == "import", Job.object_id == imp.id)
                              .order_by(Job.id.desc()).limit(1))
    return import_out(imp, job.progress if job else 0, reveal=reveal == "passport")


HANDLERS += [api_create_import, api_get_import]
