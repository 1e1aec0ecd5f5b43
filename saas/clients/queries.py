"""The client list: search, filters, sorts and keyset pagination.

Search uses the `search` tsvector (names, email, phone digits; GIN index) with prefix matching,
an email prefix on its own index, and exact passport lookup through the blind index. Every sort
has a matching index, and the next page starts after the last row's key (no OFFSET).
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Date, Select, cast, false, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients.models import RISK_GROUPS, STATUSES, ClientScore
from saas.clients import crypto
from saas.clients.custom import definitions as custom_definitions
from saas.clients.custom import filter_condition as custom_filter
from saas.clients.custom import sort_expression as custom_sort_expression
from saas.clients.models import Client
from saas.clients.operations import overdue_amounts
from saas.core import clock

PAGE = 50
COUNT_CAP = 10_000
FAR_PAST = date(1, 1, 1)
_last_op = func.coalesce(Client.last_operation_on, cast(literal(FAR_PAST), Date))
SORTS: dict[str, tuple[list[Any], bool]] = {
    # name: (key columns, descending)
    "name": ([func.lower(Client.last_name), func.lower(Client.first_name), Client.id], False),
    "recent": ([_last_op, Client.id], True),
    "revenue": ([Client.revenue_total, Client.id], True),
    "new": ([Client.id], True),
}
SORT_TYPES = {"name": (str, str, int), "recent": (date.fromisoformat, int), "revenue": (Decimal, int),
              "new": (int,)}


@dataclass
class ClientFilter:
    q: str = ""
    archived: str = "no"  # no | yes | all
    tag: str = ""
    product_group_id: int | None = None
    direction_id: int | None = None
    last_op_from: date | None = None
    last_op_to: date | None = None
    revenue_min: Decimal | None = None
    revenue_max: Decimal | None = None
    debt: str = ""  # "" | unpaid | overdue
    status: str = ""  # analytics: new | active | at_risk | lost
    segment: str = ""
    risk: str = ""  # reliable | watch | risk | unknown
    sort: str = "name"
    after: str | None = None
    limit: int = PAGE
    ids: list[int] = field(default_factory=list)
    custom: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {"eq", "min", "max"}
    raw_dates: dict[str, str] = field(default_factory=dict)  # relative dates as typed
    errors: dict[str, str] = field(default_factory=dict)

    def query_args(self, **override: Any) -> dict[str, str]:
        """The filter as URL parameters (for links, exports and saved views)."""
        values = {"q": self.q, "archived": self.archived if self.archived != "no" else "", "tag": self.tag,
                  "product_group_id": self.product_group_id, "direction_id": self.direction_id,
                  "last_op_from": self.raw_dates.get("last_op_from", self.last_op_from),
                  "last_op_to": self.raw_dates.get("last_op_to", self.last_op_to),
                  "revenue_min": self.revenue_min, "revenue_max": self.revenue_max, "debt": self.debt,
                  "status": self.status, "segment": self.segment, "risk": self.risk,
                  "sort": self.sort if self.sort != "name" else ""}
        for key, parts in self.custom.items():
            for part, value in parts.items():
                values[f"cf_{key}" + ("" if part == "eq" else f"_{part}")] = value
        values.update(override)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def parse_filter(params: dict[str, Any]) -> ClientFilter:
    """Read a filter from query parameters; bad values are reported, not fatal."""
    f = ClientFilter()

    def get(k: str) -> str:
        return str(params.get(k) or "").strip()

    f.q = get("q")[:100]
    f.archived = get("archived") if get("archived") in ("no", "yes", "all") else "no"
    f.tag = get("tag")[:100]
    f.debt = get("debt") if get("debt") in ("unpaid", "overdue") else ""
    f.status = get("status") if get("status") in STATUSES else ""
    f.segment = get("segment")[:40]
    f.risk = get("risk") if get("risk") in RISK_GROUPS else ""
    f.sort = get("sort") if get("sort") in SORTS or get("sort").startswith("cf_") else "name"
    for name, value in params.items():
        if name.startswith("cf_") and str(value or "").strip():
            key, part = name[3:], "eq"
            for suffix in ("_min", "_max"):
                if key.endswith(suffix):
                    key, part = key[: -len(suffix)], suffix[1:]
            f.custom.setdefault(key, {})[part] = str(value).strip()[:200]
    f.after = get("after") or None
    for key in ("product_group_id", "direction_id"):
        if get(key):
            try:
                setattr(f, key, int(get(key)))
            except ValueError:
                f.errors[key] = "bad id"
    for key in ("last_op_from", "last_op_to"):
        if get(key):
            try:
                setattr(f, key, resolve_date(get(key), end=key.endswith("_to")))
                f.raw_dates[key] = get(key)
            except ValueError:
                f.errors[key] = "date"
    for key in ("revenue_min", "revenue_max"):
        if get(key):
            try:
                setattr(f, key, Decimal(get(key).replace(",", ".").replace(" ", "")))
            except InvalidOperation:
                f.errors[key] = "number"
    try:
        f.limit = max(1, min(int(get("limit") or PAGE), 500))
    except ValueError:
        f.limit = PAGE
    raw_ids = params.get("ids")
    if raw_ids:
        values = raw_ids if isinstance(raw_ids, list) else str(raw_ids).split(",")
        f.ids = [int(v) for v in values if str(v).strip().isdigit()][:10_000]
    return f


def resolve_date(value: str, *, end: bool = False, today: date | None = None) -> date:
    """A date, or a relative one that saved views keep relative: -30d, this_month, this_year."""
    today = today or clock.today()
    if re.fullmatch(r"-\d{1,5}d", value):
        from datetime import timedelta

        return today - timedelta(days=int(value[1:-1]))
    if value == "this_month":
        return today if end else today.replace(day=1)
    if value == "this_year":
        return today if end else today.replace(month=1, day=1)
    return date.fromisoformat(value)


def search_condition(q: str) -> Any:
    q = q.strip()
    if not q:
        return None
    if "@" in q:
        pattern = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return Client.email.like(pattern + "%")
    digits = re.sub(r"\D", "", q)
    if digits and re.fullmatch(r"[\d\s()+\-.]+", q):
        conditions = []
        if len(digits) == 10:  # series + number of a Russian passport
            conditions.append(Client.passport_bidx.in_(crypto.blind_indexes(digits)))
        phones = {digits}
        if digits[0] == "8" and len(digits) >= 4:  # the Russian trunk prefix: 8 916… is +7 916…
            phones.add("7" + digits[1:])
        if len(digits) == 10 and digits[0] == "9":
            phones.add("7" + digits)
        for phone in sorted(p for p in phones if len(p) >= 3):
            conditions.append(Client.search.op("@@")(func.to_tsquery("simple", f"{phone}:*")))
        return or_(*conditions) if conditions else false()
    words = re.findall(r"\w+", q.lower())[:6]
    if not words:
        return false()
    return Client.search.op("@@")(func.to_tsquery("simple", " & ".join(f"{w}:*" for w in words)))


def filtered(f: ClientFilter, fields: list | None = None) -> Select:
    query = select(Client).where(Client.erased_at.is_(None))
    if f.archived == "no":
        query = query.where(Client.archived_at.is_(None))
    elif f.archived == "yes":
        query = query.where(Client.archived_at.is_not(None))
    conditions = [search_condition(f.q)]
    if f.tag:
        conditions.append(Client.tags.contains([f.tag]))  # @>: served by the GIN index
    if f.product_group_id:
        conditions.append(Client.product_group_ids.contains([f.product_group_id]))
    if f.direction_id:
        conditions.append(Client.direction_ids.contains([f.direction_id]))
    if f.last_op_from:
        conditions.append(Client.last_operation_on >= f.last_op_from)
    if f.last_op_to:
        conditions.append(Client.last_operation_on <= f.last_op_to)
    if f.revenue_min is not None:
        conditions.append(Client.revenue_total >= f.revenue_min)
    if f.revenue_max is not None:
        conditions.append(Client.revenue_total <= f.revenue_max)
    if f.debt == "unpaid":
        conditions.append(Client.unpaid_total > 0)
    elif f.debt == "overdue":
        conditions.append(Client.unpaid_total > 0)
        conditions.append(Client.id.in_(_overdue_ids()))
    if f.ids:
        conditions.append(Client.id.in_(f.ids))
    score_conditions = []
    if f.status:
        score_conditions.append(ClientScore.status == f.status)
    if f.segment:
        score_conditions.append(ClientScore.segment == f.segment)
    if f.risk:
        score_conditions.append(ClientScore.risk_group == f.risk)
    if score_conditions:  # uncorrelated, also when the page's query joins client_scores itself
        conditions.append(Client.id.in_(select(ClientScore.client_id).where(*score_conditions).correlate(None)))
    by_key = {fd.key: fd for fd in fields or []}
    for key, parts in f.custom.items():
        if key in by_key:
            found = custom_filter(by_key[key], parts.get("eq"), parts.get("min"), parts.get("max"))
            if found is None:
                f.errors[f"cf_{key}"] = "value"
                conditions.append(false())
            else:
                conditions.extend(found)
    return query.where(*[c for c in conditions if c is not None])


def _overdue_ids() -> Select:
    from saas.clients.models import Operation

    return select(Operation.client_id).where(
        Operation.kind != "return", Operation.paid_on.is_(None), Operation.due_on < clock.today())


def encode_cursor(sort: str, client: Client, fields: list | None = None) -> str:
    if sort.startswith("cf_"):
        field_def = next(fd for fd in fields or [] if f"cf_{fd.key}" == sort)
        value = (client.custom or {}).get(field_def.key)
        if field_def.type in ("number", "money"):
            value = str(value if value is not None else 10**15)
        else:
            value = "\uffff" if value is None else str(value)
        return base64.urlsafe_b64encode(json.dumps([value, client.id]).encode()).decode().rstrip("=")
    cols = {
        "name": [(client.last_name or "").lower(), (client.first_name or "").lower(), client.id],
        "recent": [(client.last_operation_on or FAR_PAST).isoformat(), client.id],
        "revenue": [str(client.revenue_total), client.id],
        "new": [client.id],
    }[sort]
    return base64.urlsafe_b64encode(json.dumps(cols).encode()).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str, types: tuple | None = None) -> list[Any] | None:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        types = types or SORT_TYPES[sort]
        if not isinstance(raw, list) or len(raw) != len(types):
            return None
        return [t(v) for t, v in zip(types, raw, strict=True)]
    except (ValueError, TypeError, InvalidOperation):
        return None


@dataclass
class ClientPage:
    rows: list[Client]
    next_cursor: str | None
    overdue: dict[int, Decimal]
    scores: dict[int, ClientScore] = field(default_factory=dict)


def custom_sort(f: ClientFilter, fields: list) -> tuple[list[Any], bool, tuple]:
    """Sorting by a custom field: (columns, descending, cursor types); missing values sort last."""
    field_def = next((fd for fd in fields if f"cf_{fd.key}" == f.sort), None)
    if field_def is None:
        f.sort = "name"
        return (*SORTS["name"], SORT_TYPES["name"])
    expr = custom_sort_expression(field_def)
    if field_def.type in ("number", "money"):
        return [func.coalesce(expr, 10**15), Client.id], False, (Decimal, int)
    return [func.coalesce(expr, "\uffff"), Client.id], False, (str, int)


async def list_clients(db: AsyncSession, f: ClientFilter) -> ClientPage:
    fields = await custom_definitions(db) if (f.custom or f.sort.startswith("cf_")) else []
    if f.sort.startswith("cf_"):
        columns, descending, types = custom_sort(f, fields)
    else:
        (columns, descending), types = SORTS[f.sort], SORT_TYPES[f.sort]
    query = filtered(f, fields)
    if f.after:
        key = decode_cursor(f.sort, f.after, types)
        if key is not None:
            left = tuple_(*columns)
            query = query.where(left < tuple_(*key) if descending else left > tuple_(*key))
    order = [c.desc() for c in columns] if descending else columns
    # The page's scores come with it: one LEFT JOIN on the primary key, no query per row.
    query = query.add_columns(ClientScore).outerjoin(ClientScore, ClientScore.client_id == Client.id)
    found = (await db.execute(query.order_by(*order).limit(f.limit + 1))).all()
    more = len(found) > f.limit
    rows = [client for client, _score in found[: f.limit]]
    return ClientPage(
        rows=rows,
        next_cursor=encode_cursor(f.sort, rows[-1], fields) if more and rows else None,
        overdue=await overdue_amounts(db, [c.id for c in rows if c.unpaid_total > 0]),
        scores={client.id: score for client, score in found[: f.limit] if score is not None},
    )


async def count_clients(db: AsyncSession, f: ClientFilter) -> tuple[int, bool]:
    """The number of matches, capped so a count never scans a million rows: (n, capped)."""
    fields = await custom_definitions(db) if f.custom else []
    inner = filtered(f, fields).with_only_columns(Client.id).limit(COUNT_CAP + 1).subquery()
    n = await db.scalar(select(func.count()).select_from(inner))
    return min(n, COUNT_CAP), n > COUNT_CAP
