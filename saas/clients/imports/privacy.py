"""Passport cells of an import, masked wherever the file's rows are shown.

An import keeps cells as the file had them: the dry run's first rows (`Import.sample`) and the
rejected rows (`Import.rejected`). Passport data in them is masked for every reader, in the dry
run, the report, rejected.csv and the API; an admin or owner may ask for the rejected rows in full
(`?reveal=passport`), and that is audited like a passport reveal on a card.

Which cells are passport data: those of the passport fields, and whatever field the user mapped a
column to whose header names a passport (a "Паспорт" column mapped to the note stays masked).
Columns left unmapped are never shown or kept in the rejected rows, so they need no rule.
"""
from __future__ import annotations

import re
from typing import Any

from saas.clients.imports.mapping import guess_mapping
from saas.clients.models import Import

PASSPORT_FIELDS = frozenset({"passport_series", "passport_number", "passport_issued_by", "passport_issued_on",
                             "passport_division_code", "client_passport"})
_NUMBERS = ("passport_number", "client_passport")
MASK = "•••"


def passport_fields(imp: Import) -> set[str]:
    """The fields whose values are passport data in this import."""
    fields = set(PASSPORT_FIELDS)
    mapping = imp.mapping or {}
    for index, header in enumerate(imp.headers or []):
        # Each header alone: guess_mapping gives a field to the first of two passport columns only.
        if set(guess_mapping([header], imp.kind).values()) & PASSPORT_FIELDS and mapping.get(str(index)):
            fields.add(mapping[str(index)])
    return fields


def mask(field: str, value: Any) -> Any:
    """A passport value as lists show it: the number's last two digits, nothing else."""
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        return value
    digits = re.sub(r"\D", "", str(value))
    return f"{MASK}{digits[-2:]}" if field in _NUMBERS and len(digits) >= 6 else MASK


def mask_values(values: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: mask(k, v) if k in fields else v for k, v in values.items()}


def rejected_rows(imp: Import, *, reveal: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
    """The rejected rows ({"line", "reason", "values"}), passport cells masked unless `reveal`."""
    rows = imp.rejected[:limit] if limit is not None else imp.rejected
    if reveal:
        return rows
    fields = passport_fields(imp)
    return [{**row, "values": mask_values(row.get("values") or {}, fields)} for row in rows]


def revealed_count(imp: Import) -> int:
    """How many rejected rows carry a passport cell: what a full view reveals (for the audit)."""
    fields = passport_fields(imp)
    return sum(1 for row in imp.rejected if any(str(v).strip() for k, v in (row.get("values") or {}).items()
                                                if k in fields))
