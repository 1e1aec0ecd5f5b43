"""Clients and the company's dictionaries.

One validation serves every write path (form, API, import, restore): `check_client` (in
`rules.py`) runs the import's row rules over raw strings keyed by field name, so the rules are
never written twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import crypto
from saas.clients.models import Client, Direction, Operation, ProductGroup
from saas.clients.rules import check_client
from saas.core import clock
from saas.accounts.limits import check_limit
from saas.core.models import AuditEvent
from saas.core.errors import FormError
from saas.core.i18n import _

CHANNELS = ("email", "sms", "calls")
PLAIN_FIELDS = ("last_name", "first_name", "middle_name", "birth_date", "phone", "email", "address", "note")
PASSPORT_FIELDS = ("passport_series", "passport_number", "passport_issued_by", "passport_issued_on",
                   "passport_division_code")
TEXT_DEFAULTS = {"last_name": "", "first_name": "", "middle_name": ""}


def now() -> datetime:
    return clock.now()


async def audit(db: AsyncSession, actor: str, action: str, object_type: str | None = None,
                object_id: int | None = None, **details: Any) -> None:
    """Record who did what to which object. Never the personal data itself."""
    db.add(AuditEvent(actor=actor, action=action, object_type=object_type, object_id=object_id, details=details))


# ---- access --------------------------------------------------------------------------------


async def access_client(db: AsyncSession, client_id: int, *, include_erased: bool = False) -> Client:
    """The only way to load a client by a user-supplied id: scoped to the bound tenant schema."""
    client = await db.get(Client, client_id)
    if client is None or (client.erased_at is not None and not include_erased):
        raise NotFoundException()
    return client


# ---- dictionaries --------------------------------------------------------------------------

DICTIONARIES = {"product_groups": ProductGroup, "directions": Direction}


async def dictionary(db: AsyncSession, kind: str, *, include_archived: bool = False) -> list[Any]:
    model = DICTIONARIES[kind]
    query = select(model).order_by(func.lower(model.name))
    if not include_archived:
        query = query.where(model.archived_at.is_(None))
    return list(await db.scalars(query))


async def do_add_dictionary_item(db: AsyncSession, kind: str, name: str) -> Any:
    model = DICTIONARIES[kind]
    name = " ".join((name or "").split())
    if not name:
        raise FormError({"name": _("Enter a name.")})
    if len(name) > 100:
        raise FormError({"name": _("At most %(n)s characters.", n=100)})
    existing = await db.scalar(select(model).where(func.lower(model.name) == name.lower()))
    if existing is not None:
        if existing.archived_at is None:
            raise FormError({"name": _("This name is already in the list.")})
        existing.archived_at = None
        return existing
    item = model(name=name)
    db.add(item)
    await db.flush()
    return item


async def do_rename_dictionary_item(db: AsyncSession, kind: str, item_id: int, name: str) -> Any:
    model = DICTIONARIES[kind]
    item = await db.get(model, item_id)
    if item is None:
        raise NotFoundException()
    name = " ".join((name or "").split())
    if not name:
        raise FormError({"name": _("Enter a name.")})
    clash = await db.scalar(select(model).where(func.lower(model.name) == name.lower(), model.id != item_id))
    if clash is not None:
        raise FormError({"name": _("This name is already in the list.")})
    item.name = name
    return item


async def do_archive_dictionary_item(db: AsyncSession, kind: str, item_id: int, archived: bool) -> Any:
    item = await db.get(DICTIONARIES[kind], item_id)
    if item is None:
        raise NotFoundException()
    item.archived_at = now() if archived else None
    return item


async def named_item(db: AsyncSession, kind: str, name: str, *, refuse: bool = True) -> Any:
    """The dictionary row (id, name) of a name, case-insensitive. Unknown: refused, or None."""
    model = DICTIONARIES[kind]
    row = (await db.execute(select(model.id, model.name).where(func.lower(model.name) == name.strip().lower()))).first()
    if row is None and refuse:
        raise FormError({kind: _("Unknown name: %(name)s", name=name)})
    return row


async def resolve_names(db: AsyncSession, kind: str, names: list[str], *, create: bool) -> list[int]:
    """Dictionary ids for names (case-insensitive). Unknown names are created or refused."""
    ids: list[int] = []
    for name in names:
        item = await named_item(db, kind, name, refuse=not create)
        if item is None:
            item = await do_add_dictionary_item(db, kind, name)
        if item.id not in ids:
            ids.append(item.id)
    return ids


async def check_dictionary_ids(db: AsyncSession, kind: str, ids: list[int]) -> list[int]:
    model = DICTIONARIES[kind]
    unique = list(dict.fromkeys(int(i) for i in ids))
    if not unique:
        return []
    found = set(await db.scalars(select(model.id).where(model.id.in_(unique))))
    if found != set(unique):
        raise FormError({kind: _("Choose from the list.")})
    return unique


# ---- writes --------------------------------------------------------------------------------


PASSPORT_COLUMNS = ("passport_enc", "passport_key_id", "passport_bidx", "passport_mask")
PENDING_PASSPORT = "_passport"  # a new row's passport waiting for its id: `seal_new_rows`


def passport_columns(values: dict[str, Any], company: str, client_id: int | None) -> dict[str, Any]:
    """A client's passport columns from the form's fields, sealed to the company and the client's
    id. Rows inserted in bulk draw their ids at the insert: with client_id None the record waits
    under PENDING_PASSPORT for `seal_new_rows`."""
    record: dict[str, Any] | None = {k.removeprefix("passport_"): values.get(k) for k in PASSPORT_FIELDS}
    columns: dict[str, Any] = dict.fromkeys(PASSPORT_COLUMNS)
    if not any(record.values()):
        record = None
    else:
        record["issued_on"] = record["issued_on"].isoformat() if record.get("issued_on") else None
        digits = crypto.passport_digits(record.get("series"), record.get("number"))
        columns["passport_bidx"] = crypto.blind_index(digits, company=company) if digits else None
        columns["passport_mask"] = crypto.mask(record.get("series"), record.get("number"))
        if client_id is not None:
            columns["passport_enc"], columns["passport_key_id"] = crypto.encrypt(
                record, company=company, client_id=client_id)
    if client_id is None:
        columns[PENDING_PASSPORT] = record
    return columns


async def draw_client_ids(db: AsyncSession, n: int) -> list[int]:
    """Ids for new clients drawn from the table's own sequence before the insert: a passport's seal
    names its client."""
    return list(await db.scalars(text("SELECT nextval(pg_get_serial_sequence('clients', 'id')) "
                                      "FROM generate_series(1, :n)"), {"n": n}))


async def seal_new_rows(db: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Ids for new clients' rows (`draw_client_ids`), and their waiting passports sealed to them."""
    ids = await draw_client_ids(db, len(rows))
    company = crypto.company_of(db)
    for client_id, row in zip(ids, rows, strict=True):
        if (record := row.pop(PENDING_PASSPORT, None)) is not None:
            row["passport_enc"], row["passport_key_id"] = crypto.encrypt(record, company=company, client_id=client_id)
    return ids


def _apply_passport(client: Client, values: dict[str, Any], company: str) -> None:
    """Set the passport on a client that has its id (a new one draws it first: the seal names it)."""
    if client.id is None:
        raise ValueError("a passport is sealed to its client's id: draw the id first")
    for column, value in passport_columns(values, company, client.id).items():
        setattr(client, column, value)


def move_passport(source: Client, target: Client, company: str) -> None:
    """Give `target` the passport of `source` (a merge): opened under one row's seal, sealed anew
    under the other's, the index recomputed (the source may not be rekeyed yet)."""
    record = reveal_passport(source, company)
    if record is None:
        return
    target.passport_enc, target.passport_key_id = crypto.encrypt(record, company=company, client_id=target.id)
    digits = crypto.passport_digits(record.get("series"), record.get("number"))
    target.passport_bidx = crypto.blind_index(digits, company=company) if digits else None
    target.passport_mask = source.passport_mask


def _apply_consent(client: Client, consent: dict[str, bool], source: str) -> None:
    current = dict(client.consent or {})
    for channel in CHANNELS:
        if channel not in consent:
            continue
        if consent[channel] and channel not in current:
            current[channel] = {"at": clock.today().isoformat(), "source": source}
        elif not consent[channel]:
            current.pop(channel, None)
    client.consent = current


def reveal_passport(client: Any, company: str | None = None) -> dict[str, Any] | None:
    """The client's passport in plain text. `company`: the schema the row was read from; by default
    that of the session that loaded the Client (a plain row must name it)."""
    if client.passport_enc is None:
        return None
    if company is None:
        state = inspect(client, raiseerr=False)
        if state is None or state.session is None:
            raise LookupError("a passport opens in its company: pass company= for a row not loaded as a Client")
        company = crypto.company_of(state.session)
    return crypto.decrypt(client.passport_enc, client.passport_key_id, company=company, client_id=client.id)


async def do_save_client(
    db: AsyncSession,
    raw: dict[str, Any],
    *,
    actor: str,
    client: Client | None = None,
    present: set[str] | None = None,
    consent: dict[str, bool] | None = None,
    consent_source: str = "form",
    tags: list[str] | None = None,
    product_group_ids: list[int] | None = None,
    direction_ids: list[int] | None = None,
    custom: dict[str, Any] | None = None,
    custom_partial: bool = False,
) -> Client:
    """Create (client=None) or update a client. `present`: the fields the caller meant to set;
    fields outside it keep their values (API PATCH); None means every field (a full form)."""
    present = set(raw) if present is None else present
    if client is not None:
        # Validate against the whole card: stored passport parts the caller did not resend count
        # (a new birth date must still precede the stored issue date).
        raw = {**{k: v for k, v in _passport_strings(client).items() if k not in present}, **raw}
    if client is not None:
        # The name check needs the stored name when a PATCH does not touch it.
        for key in ("last_name", "first_name", "birth_date"):
            if key not in present and getattr(client, key):
                raw.setdefault(key, getattr(client, key))
    from saas.clients.custom import check_values, definitions

    errors: dict[str, str] = {}
    try:
        values = check_client(raw)
    except FormError as exc:
        errors.update(exc.errors)
    custom_values = None
    if custom is not None or client is None:
        try:
            custom_values = check_values(await definitions(db), custom or {},
                                         current=client.custom if client else None, partial=custom_partial)
        except FormError as exc:
            errors.update(exc.errors)
    if errors:
        raise FormError(errors)
    if tags is None and "tags" in values:
        tags = values["tags"]
    creating = client is None
    if creating:
        await check_limit(db, None, "clients")
        client = Client(id=(await draw_client_ids(db, 1))[0])  # the id first: the passport's seal names it
        db.add(client)
    for field in PLAIN_FIELDS:
        if field in present or creating:
            setattr(client, field, values.get(field, TEXT_DEFAULTS.get(field)))
    if present & set(PASSPORT_FIELDS) or creating:
        _apply_passport(client, values, crypto.company_of(db))
    if consent is not None:
        _apply_consent(client, consent, consent_source)
    if tags is not None:
        client.tags = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    if product_group_ids is not None:
        client.product_group_ids = await check_dictionary_ids(db, "product_groups", product_group_ids)
    if direction_ids is not None:
        client.direction_ids = await check_dictionary_ids(db, "directions", direction_ids)
    if custom_values is not None:
        client.custom = custom_values
    client.updated_at = now()
    await db.flush()
    await audit(db, actor, "client.created" if creating else "client.updated", "client", client.id)
    return client


def _passport_strings(client: Client) -> dict[str, str]:
    record = reveal_passport(client) or {}
    return {f"passport_{k}": v for k, v in record.items() if v}


async def do_archive_client(db: AsyncSession, client: Client, actor: str, archived: bool = True) -> Client:
    client.archived_at = now() if archived else None
    await audit(db, actor, "client.archived" if archived else "client.restored", "client", client.id)
    return client


async def do_erase_client(db: AsyncSession, client: Client, actor: str) -> Client:
    """Erase the person (personal data law) from the card and every other place the company holds
    them (`erasure.PLACES`); operations and their amounts stay for the totals."""
    from saas.clients import erasure

    reached = await erasure.erase(db, client, actor, reveal_passport(client))
    await audit(db, actor, "client.erased", "client", client.id, **reached)
    return client


async def client_data_export(db: AsyncSession, client: Client, actor: str) -> dict[str, Any]:
    """Everything held on one person (a data subject request), passport included."""
    ops = list(await db.scalars(select(Operation).where(Operation.client_id == client.id).order_by(Operation.id)))
    groups = {g.id: g.name for g in await dictionary(db, "product_groups", include_archived=True)}
    directions = {d.id: d.name for d in await dictionary(db, "directions", include_archived=True)}
    await audit(db, actor, "client.data_exported", "client", client.id)
    return {
        "id": client.id, "last_name": client.last_name, "first_name": client.first_name,
        "middle_name": client.middle_name, "birth_date": _iso(client.birth_date), "phone": client.phone,
        "email": client.email, "address": client.address, "passport": reveal_passport(client),
        "consent": client.consent, "tags": client.tags, "note": client.note, "custom": client.custom,
        "product_groups": [groups.get(i) for i in client.product_group_ids],
        "directions": [directions.get(i) for i in client.direction_ids],
        "created_at": _iso(client.created_at), "archived_at": _iso(client.archived_at),
        "operations": [
            {"id": o.id, "kind": o.kind, "occurred_on": _iso(o.occurred_on), "amount": str(o.amount),
             "product_group": groups.get(o.product_group_id), "direction": directions.get(o.direction_id),
             "due_on": _iso(o.due_on), "paid_on": _iso(o.paid_on), "note": o.note}
            for o in ops
        ],
    }


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class BulkResult:
    changed: int


async def do_bulk(db: AsyncSession, ids: list[int], action: str, value: str | None, actor: str) -> BulkResult:
    """Bulk actions on selected clients of the bound tenant."""
    ids = [int(i) for i in ids][:10_000]
    if not ids:
        raise FormError({"ids": _("Select at least one client.")})
    base = update(Client).where(Client.id.in_(ids), Client.erased_at.is_(None))
    if action == "tag":
        tag = (value or "").strip()
        if not tag:
            raise FormError({"value": _("Enter a tag.")})
        stmt = base.where(~Client.tags.any(tag)).values(tags=func.array_append(Client.tags, tag))
    elif action in ("product_group", "direction"):
        kind = "product_groups" if action == "product_group" else "directions"
        item_id = (await check_dictionary_ids(db, kind, [int(value or 0)]))[0]
        column = Client.product_group_ids if kind == "product_groups" else Client.direction_ids
        stmt = base.where(~column.any(item_id)).values({column: func.array_append(column, item_id)})
    elif action == "archive":
        stmt = base.where(Client.archived_at.is_(None)).values(archived_at=clock.now())
    elif action == "restore":
        stmt = base.where(Client.archived_at.is_not(None)).values(archived_at=None)
    else:
        raise FormError({"action": _("Unknown action.")})
    result = await db.execute(stmt.execution_options(synchronize_session=False))
    await audit(db, actor, f"clients.bulk_{action}", "client", None, count=result.rowcount)
    return BulkResult(result.rowcount)
