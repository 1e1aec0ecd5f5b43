"""API payloads for clients and operations (explicit: nothing internal leaks by accident)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec


class PassportIn(msgspec.Struct, forbid_unknown_fields=True):
    series: str | None = None
    number: str | None = None
    issued_by: str | None = None
    issued_on: str | None = None
    division_code: str | None = None


class ConsentIn(msgspec.Struct, forbid_unknown_fields=True):
    email: bool | None = None
    sms: bool | None = None
    calls: bool | None = None


class ClientIn(msgspec.Struct, forbid_unknown_fields=True):
    """Every field is optional: POST needs a last or first name; PATCH changes only what it sends."""

    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    birth_date: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    passport: PassportIn | None = None
    consent: ConsentIn | None = None
    tags: list[str] | None = None
    product_groups: list[str] | None = None
    directions: list[str] | None = None
    note: str | None = None
    custom: dict[str, Any] | None = None  # keyed by the custom field's key; PATCH changes the keys sent


class Metrics(msgspec.Struct):
    first_operation_on: date | None
    last_operation_on: date | None
    operations_count: int
    revenue_total: str
    unpaid_total: str
    overdue_total: str


class PassportOut(msgspec.Struct):
    masked: bool
    series: str | None = None
    number: str | None = None
    issued_by: str | None = None
    issued_on: str | None = None
    division_code: str | None = None
    display: str | None = None


class ClientOut(msgspec.Struct):
    id: int
    last_name: str
    first_name: str
    middle_name: str
    birth_date: date | None
    phone: str | None
    email: str | None
    address: str | None
    passport: PassportOut | None
    consent: dict[str, bool]
    tags: list[str]
    product_groups: list[str]
    directions: list[str]
    note: str | None
    archived: bool
    metrics: Metrics
    created_at: datetime
    custom: dict[str, Any] = {}


class ClientPageOut(msgspec.Struct):
    items: list[ClientOut]
    next_cursor: str | None


class OperationIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: str | None = None
    occurred_on: str | None = None
    amount: str | None = None
    product_group: str | None = None
    direction: str | None = None
    due_on: str | None = None
    paid_on: str | None = None
    note: str | None = None


class OperationOut(msgspec.Struct):
    id: int
    client_id: int
    kind: str
    occurred_on: date
    amount: str
    product_group: str | None
    direction: str | None
    due_on: date | None
    paid_on: date | None
    note: str | None


class ErrorOut(msgspec.Struct):
    error: str
    status: int
    fields: dict[str, str] | None = None


class RejectedRowOut(msgspec.Struct):
    line: int
    reason: str
    values: dict[str, str]


class ImportOut(msgspec.Struct):
    id: int
    kind: str
    status: str
    filename: str
    total_rows: int
    processed_rows: int
    created: int
    updated: int
    skipped: int
    rejected: int
    error: str | None
    rejected_rows: list[RejectedRowOut]
