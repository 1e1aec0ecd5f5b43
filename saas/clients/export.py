"""Exports of the client list: CSV (UTF-8 with BOM, ';' or ',') and XLSX.

Every cell that a spreadsheet would run as a formula is neutralised. Passport data is masked,
unless the role may see it and asked for it; every export is recorded in the audit log.
"""
from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import queries, service
from saas.core.values import formula_safe, xlsx_cells
from saas.clients.models import Client
from saas.core.i18n import _

BATCH = 2000


def columns(full_passport: bool) -> list[tuple[str, str]]:
    cols = [
        ("id", "ID"), ("last_name", _("Last name")), ("first_name", _("First name")),
        ("middle_name", _("Patronymic")), ("birth_date", _("Birth date")), ("phone", _("Phone")),
        ("email", "Email"), ("address", _("Address")),
    ]
    if full_passport:
        cols += [("passport_series", _("Passport series")), ("passport_number", _("Passport number")),
                 ("passport_issued_by", _("Issued by")), ("passport_issued_on", _("Date of issue")),
                 ("passport_division_code", _("Division code"))]
    else:
        cols += [("passport_mask", _("Passport"))]
    cols += [
        ("consent_email", _("Consent: email")), ("consent_sms", _("Consent: SMS")),
        ("consent_calls", _("Consent: calls")), ("tags", _("Tags")), ("product_groups", _("Product groups")),
        ("directions", _("Directions")), ("note", _("Note")), ("last_operation_on", _("Last purchase")),
        ("operations_count", _("Deals")), ("revenue_total", _("Revenue")), ("unpaid_total", _("Unpaid")),
    ]
    return cols


async def custom_columns(db: AsyncSession) -> list[tuple[str, str]]:
    from saas.clients.custom import definitions, label

    return [(f"custom:{fd.key}", label(fd)) for fd in await definitions(db)]


async def rows(db: AsyncSession, f: queries.ClientFilter, full_passport: bool) -> AsyncIterator[dict[str, Any]]:
    """The filtered clients in batches, by keyset, never the whole base in memory."""
    groups = {g.id: g.name for g in await service.dictionary(db, "product_groups", include_archived=True)}
    dirs = {d.id: d.name for d in await service.dictionary(db, "directions", include_archived=True)}
    f.limit, f.sort, f.after = BATCH, "new", None
    while True:
        page = await queries.list_clients(db, f)
        for c in page.rows:
            yield _row(c, groups, dirs, full_passport)
        if not page.next_cursor:
            return
        f.after = page.next_cursor


def _row(c: Client, groups: dict[int, str], dirs: dict[int, str], full_passport: bool) -> dict[str, Any]:
    row: dict[str, Any] = {k: getattr(c, k) for k in (
        "id", "last_name", "first_name", "middle_name", "birth_date", "phone", "email", "address", "note",
        "last_operation_on", "operations_count", "revenue_total", "unpaid_total", "passport_mask")}
    yes, no = _("yes"), _("no")
    for ch in service.CHANNELS:
        row[f"consent_{ch}"] = yes if ch in (c.consent or {}) else no
    row["tags"] = ", ".join(c.tags)
    row["product_groups"] = ", ".join(groups[i] for i in c.product_group_ids if i in groups)
    row["directions"] = ", ".join(dirs[i] for i in c.direction_ids if i in dirs)
    if full_passport:
        for key, value in (service.reveal_passport(c) or {}).items():
            row[f"passport_{key}"] = value
    for key, value in (c.custom or {}).items():
        row[f"custom:{key}"] = ", ".join(value) if isinstance(value, list) else value
    return row


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return formula_safe(str(value))


async def export_clients(
    db: AsyncSession, f: queries.ClientFilter, *, fmt: str, delimiter: str, full_passport: bool, actor: str,
) -> tuple[Any, int]:
    """Write the export to a spooled temporary file; returns (file positioned at 0, row count)."""
    cols = columns(full_passport) + await custom_columns(db)
    out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115 - returned open; the route closes it
    count = 0
    if fmt == "xlsx":
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(_("Clients"))
        ws.append([label for _k, label in cols])
        async for row in rows(db, f, full_passport):
            ws.append(xlsx_cells(ws, [_xlsx_value(row.get(k)) for k, _label in cols]))
            count += 1
        wb.save(out)
    else:
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
        writer = csv.writer(text, delimiter=delimiter)
        writer.writerow([label for _k, label in cols])
        async for row in rows(db, f, full_passport):
            writer.writerow([_text(row.get(k)) for k, _label in cols])
            count += 1
        text.flush()
        text.detach()
    out.seek(0)
    await service.audit(db, actor, "clients.exported", "client", None, format=fmt, rows=count,
                        passport="full" if full_passport else "masked")
    return out, count


def _xlsx_value(value: Any) -> Any:
    """Typed cells: numbers (negative amounts too) and dates as such, text as text cells (no
    apostrophe: a text cell is never run as a formula)."""
    if isinstance(value, datetime):  # Excel has no time zones
        return value.isoformat()
    if value is None or isinstance(value, int | float | Decimal | date):
        return value
    return str(value)
