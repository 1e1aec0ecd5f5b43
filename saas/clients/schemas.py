"""API payloads for clients and operations (explicit: nothing internal leaks by accident)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

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


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class ClientAnalyticsOut(msgspec.Struct):
    """A client's scores from the last refresh (`analytics` is null until the first refresh)."""

    status: Annotated[str, _doc("new, active, at_risk or lost: the list's `status` filter names the values")]
    p_alive: Annotated[float | None, _doc("Probability that the client still buys (null where rules, not a "
                                          "model, decided the status)")]
    expected_purchases: Annotated[float | None, _doc("Purchases expected over the company's forecast horizon")]
    clv: Annotated[str | None, _doc("Expected value of the client's future purchases (money, as a string)")]
    rfm_segment: Annotated[str, _doc("RFM segment; `prospects`: no purchases yet")]
    reliability: Annotated[int, _doc("Payment discipline, 0-100")]
    reliability_group: Annotated[str, _doc("reliable, watch, risk, or unknown (too few deferred payments)")]
    reasons: Annotated[str, _doc("Why the reliability is what it is, in words, in the request's language "
                                 "(Accept-Language)")]
    scored_at: Annotated[datetime, _doc("When the refresh computed these scores")]


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
    analytics: Annotated[ClientAnalyticsOut | None, _doc("The client's scores; null until the first refresh")] = None


class ClientPageOut(msgspec.Struct):
    items: list[ClientOut]
    next_cursor: str | None
    total: Annotated[int | None, _doc("With `?count=true`: the number of matches, exact up to 10,000; past "
                                      "that an estimate (see total_is_estimate). Null otherwise")] = None
    total_is_estimate: Annotated[bool | None, _doc("With `?count=true`: true when `total` is the planner's "
                                                   "estimate (rounded to two significant figures), not a "
                                                   "count. Null otherwise")] = None


class OperationIn(msgspec.Struct, forbid_unknown_fields=True):
    """The same rules as an imported row (saas/clients/rules.py)."""

    kind: Annotated[str | None, _doc("sale, service or return; a new operation without a kind is a sale, "
                                     "or a return when the amount is negative")] = None
    occurred_on: str | None = None
    amount: Annotated[str | None, _doc("Money as a string. A negative amount without a kind, or with the kind "
                                       "return, is recorded as a return of that amount (the response shows "
                                       "kind return and a positive amount); a negative sale or service is "
                                       "refused (422)")] = None
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
