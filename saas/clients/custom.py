"""Custom client fields: definitions, validation on every write path, filters, type changes.

Values live in clients.custom (one JSONB column, GIN-indexed with jsonb_path_ops) keyed by the
field's stable key, so every tenant schema keeps the same shape. Stored forms per type:
text -> str, number/money -> JSON number (money rounded to kopecks), date -> "YYYY-MM-DD",
bool -> true/false, choice -> one of the options, multi -> a list of options.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import ColumnElement, Numeric, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.values import parse_bool, parse_date
from saas.clients.models import Client, CustomField
from saas.core.errors import FormError
from saas.core.i18n import _, get_locale

TYPES = ("text", "number", "money", "date", "bool", "choice", "multi")
MAX_TEXT = 1000


def label(field: CustomField) -> str:
    return field.label_ru if get_locale() == "ru" else field.label_en


async def definitions(db: AsyncSession, *, include_archived: bool = False) -> list[CustomField]:
    query = select(CustomField).order_by(CustomField.position, CustomField.id)
    if not include_archived:
        query = query.where(CustomField.archived_at.is_(None))
    return list(await db.scalars(query))


async def access_field(db: AsyncSession, field_id: int) -> CustomField:
    field = await db.get(CustomField, field_id)
    if field is None:
        raise NotFoundException()
    return field


# ---- values --------------------------------------------------------------------------------


def convert(field_type: str, value: Any, options: list[str]) -> Any:
    """One value into its stored form; ValueError with a clear message when it does not fit."""
    if value is None or value == "" or value == []:
        return None
    if field_type == "text":
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            raise ValueError(_("At most %(n)s characters.", n=MAX_TEXT))
        return text
    if field_type in ("number", "money"):
        if isinstance(value, bool):
            raise ValueError(_("Enter a number."))
        try:
            number = Decimal(str(value).replace(" ", "").replace("\u00a0", "").replace(",", "."))
        except InvalidOperation:
            raise ValueError(_("Enter a number.")) from None
        if not number.is_finite() or abs(number) >= Decimal("1e15"):
            raise ValueError(_("Enter a number."))
        number = number.quantize(Decimal("0.01")) if field_type == "money" else number
        return int(number) if number == number.to_integral_value() and field_type == "number" else float(number)
    if field_type == "date":
        if isinstance(value, date):
            return value.isoformat()
        try:
            return parse_date(str(value)).isoformat()
        except ValueError:
            raise ValueError(_("Enter a date as DD.MM.YYYY or YYYY-MM-DD.")) from None
    if field_type == "bool":
        if isinstance(value, bool):
            return value
        try:
            return parse_bool(str(value))
        except ValueError:
            raise ValueError(_("Answer yes or no.")) from None
    if field_type == "choice":
        text = str(value).strip()
        if text not in options:
            raise ValueError(_("Choose one of: %(options)s", options=", ".join(options)))
        return text
    if field_type == "multi":
        items = value if isinstance(value, list) else re.split(r"[,;|]", str(value))
        items = [str(i).strip() for i in items if str(i).strip()]
        bad = [i for i in items if i not in options]
        if bad:
            raise ValueError(_("Choose from: %(options)s", options=", ".join(options)))
        return list(dict.fromkeys(items)) or None
    raise ValueError(_("Unknown field type."))


def check_values(fields: list[CustomField], raw: dict[str, Any], *, current: dict[str, Any] | None = None,
                 partial: bool = False) -> dict[str, Any]:
    """Validate raw values by key against the definitions; returns the merged `custom` dict.

    `partial` (API PATCH): keys not sent keep their values. Unknown keys are refused.
    Errors are keyed `custom.<key>`.
    """
    by_key = {f.key: f for f in fields}
    errors: dict[str, str] = {}
    out = dict(current or {})
    for key in raw:
        if key not in by_key:
            errors[f"custom.{key}"] = _("No such field.")
    for field in fields:
        if field.key not in raw:
            if partial:
                continue
            value = None
        else:
            try:
                value = convert(field.type, raw[field.key], field.options)
            except ValueError as exc:
                errors[f"custom.{field.key}"] = str(exc)
                continue
        if value is None:
            out.pop(field.key, None)
        else:
            out[field.key] = value
        if field.required and out.get(field.key) is None:
            errors[f"custom.{field.key}"] = _("%(label)s is required.", label=label(field))
    if errors:
        raise FormError(errors)
    return out


# ---- definitions ---------------------------------------------------------------------------


def _key_from(text: str) -> str:
    from saas.core.text import slugify

    return slugify(text).replace("-", "_")[:40] or "field"


async def do_save_field(db: AsyncSession, raw: dict[str, Any], field: CustomField | None = None) -> CustomField:
    errors: dict[str, str] = {}
    label_ru = str(raw.get("label_ru") or "").strip()
    label_en = str(raw.get("label_en") or "").strip() or label_ru
    label_ru = label_ru or label_en
    if not label_ru:
        errors["label_ru"] = _("Give the field a name.")
    field_type = str(raw.get("type") or (field.type if field else "text"))
    if field_type not in TYPES:
        errors["type"] = _("Choose a type.")
    options_raw = raw.get("options", field.options if field else [])
    options = [o.strip() for o in (options_raw if isinstance(options_raw, list)
                                   else re.split(r"[\n,;]", str(options_raw or ""))) if o.strip()]
    if field_type in ("choice", "multi") and not options:
        errors["options"] = _("List the choices, one per line.")
    if errors:
        raise FormError(errors)
    if field is None:
        key = _key_from(str(raw.get("key") or label_en))
        taken = set(await db.scalars(select(CustomField.key)))
        base, n = key, 2
        while key in taken:
            key, n = f"{base}_{n}", n + 1
        position = (await db.scalar(select(func.max(CustomField.position)))) or 0
        field = CustomField(key=key, type=field_type, position=position + 1)
        db.add(field)
    elif field_type != field.type:
        raise FormError({"type": _("Use “change type” to convert existing values first.")})
    field.label_ru, field.label_en, field.options = label_ru, label_en, list(dict.fromkeys(options))
    field.required = bool(raw.get("required"))
    field.in_list = bool(raw.get("in_list"))
    await db.flush()
    return field


async def type_change_preview(db: AsyncSession, field: CustomField, new_type: str,
                              options: list[str]) -> tuple[int, list[tuple[int, Any]]]:
    """How many values convert, and which (client id, value) cannot, before anything commits."""
    rows = await db.execute(select(Client.id, Client.custom[field.key]).where(Client.custom.has_key(field.key)))
    ok, bad = 0, []
    for client_id, value in rows:
        try:
            convert(new_type, value, options)
            ok += 1
        except ValueError:
            bad.append((client_id, value))
    return ok, bad


async def do_change_type(db: AsyncSession, field: CustomField, new_type: str, options: list[str]) -> int:
    """Convert every value; values that cannot convert stop the change (nothing is lost)."""
    if new_type not in TYPES:
        raise FormError({"type": _("Choose a type.")})
    ok, bad = await type_change_preview(db, field, new_type, options)
    if bad:
        raise FormError({"type": _("%(n)s values cannot be converted; fix or clear them first.", n=len(bad))})
    rows = await db.execute(select(Client.id, Client.custom).where(Client.custom.has_key(field.key)))
    for client_id, custom in rows:
        new = {**custom, field.key: convert(new_type, custom[field.key], options)}
        await db.execute(update(Client).where(Client.id == client_id).values(custom=new))
    field.type, field.options = new_type, options
    return ok


# ---- filters and sorting -------------------------------------------------------------------


def filter_condition(field: CustomField, value: str | None, low: str | None = None,
                     high: str | None = None) -> list[ColumnElement[bool]] | None:
    """Equality uses containment (served by the GIN index); ranges compare the typed value."""
    conditions: list[ColumnElement[bool]] = []
    if value not in (None, ""):
        try:
            stored = convert("choice" if field.type == "multi" else field.type, value, field.options)
        except ValueError:
            return None
        probe = [stored] if field.type == "multi" else stored
        conditions.append(Client.custom.contains({field.key: probe}))
    for bound, op in ((low, "ge"), (high, "le")):
        if bound in (None, ""):
            continue
        try:
            stored = convert(field.type, bound, field.options)
        except ValueError:
            return None
        column = sort_expression(field)
        conditions.append(column >= stored if op == "ge" else column <= stored)
    return conditions


def sort_expression(field: CustomField) -> ColumnElement[Any]:
    if field.type in ("number", "money"):
        return cast(Client.custom[field.key].astext, Numeric)
    return Client.custom[field.key].astext
