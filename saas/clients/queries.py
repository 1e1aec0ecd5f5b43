"""The client list: search, filters, sorts and keyset pagination.

Search uses the `search` tsvector (names, email, phone digits; GIN index) with prefix matching,
an email prefix on its own index, and exact passport lookup through the blind index. Every sort
has a matching index, and the next page starts after the last row's key (no OFFSET).
"""
from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import (JSON, ColumnElement, Date, Select, String, Text, bindparam, case, cast, false, func, literal,
                        literal_column, or_, select, tuple_)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from saas.clients.models import RISK_GROUPS, STATUSES, ClientScore
from saas.clients import crypto, name_search
from saas.clients.custom import filter_condition as custom_filter
from saas.clients.custom import sort_expression as custom_sort_expression
from saas.clients.models import Client, CustomField, Direction, Operation, ProductGroup, SavedView
from saas.clients.operations import overdue_amounts
from saas.core import clock
from saas.core.db import core_rows
from saas.core.i18n import _

PAGE = 50
# Filter values past these are typos (and used to overflow BIGINT and NUMERIC(18, 2) in SQL: a 500).
MAX_AMOUNT = Decimal("1e15")
MAX_ID = 2**63 - 1
COUNT_CAP = 10_000  # matches counted exactly up to here; past it, the planner's estimate
SURELY_MANY = 10 * COUNT_CAP  # an estimate this high (no text search) skips the capped count
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
    columns: str = ""  # the list's columns (saas/clients/columns.py): not a filter, carried along with it
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
                  "sort": self.sort if self.sort != "name" else "", "columns": self.columns}
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
    f.columns = get("columns")[:2000]
    for key in ("product_group_id", "direction_id"):
        if get(key):
            try:
                setattr(f, key, int(get(key)))
                if not 0 < getattr(f, key) <= MAX_ID:
                    raise ValueError
            except ValueError:
                setattr(f, key, None)
                f.errors[key] = _("Choose a value from the list.")
    for key in ("last_op_from", "last_op_to"):
        if get(key):
            try:
                setattr(f, key, resolve_date(get(key), end=key.endswith("_to")))
                f.raw_dates[key] = get(key)
            except (ValueError, OverflowError):
                f.errors[key] = _("A date as YYYY-MM-DD.")
    for key in ("revenue_min", "revenue_max"):
        if get(key):
            try:
                amount = Decimal(get(key).replace(",", ".").replace(" ", ""))
                if not amount.is_finite() or abs(amount) > MAX_AMOUNT:  # NaN, 1e999999: a 500 in SQL
                    raise InvalidOperation
                setattr(f, key, amount)
            except InvalidOperation:
                f.errors[key] = _("A number up to %(max)s.", max="1 000 000 000 000 000")
    try:
        f.limit = max(1, min(int(get("limit") or PAGE), 500))
    except ValueError:
        f.limit = PAGE
    raw_ids = params.get("ids")
    if raw_ids:
        values = raw_ids if isinstance(raw_ids, list) else str(raw_ids).split(",")
        f.ids = [int(v) for v in values if re.fullmatch(r"[0-9]{1,18}", str(v).strip())][:10_000]
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


def search_condition(q: str, company: str) -> Any:
    q = q.strip()
    if not q:
        return None
    if "@" in q:
        pattern = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return Client.email.like(pattern + "%")
    digits = _digits_only(q)
    if digits:
        conditions = []
        if len(digits) == 10:  # series + number of a Russian passport
            conditions.append(Client.passport_bidx.in_(crypto.blind_indexes(digits, company=company)))
        phones = {digits}
        if digits[0] == "8" and len(digits) >= 4:  # the Russian trunk prefix: 8 916… is +7 916…
            phones.add("7" + digits[1:])
        if len(digits) == 10 and digits[0] == "9":
            phones.add("7" + digits)
        for phone in sorted(p for p in phones if len(p) >= 3):
            conditions.append(Client.search.op("@@")(func.to_tsquery("simple", f"{phone}:*")))
        return or_(*conditions) if conditions else false()
    words = search_words(q)
    if words is None:
        return false()
    # a named parameter: a kept page statement holds no one's words (list_clients passes them)
    return Client.search.op("@@")(func.to_tsquery("simple", bindparam(WORDS, words, type_=String)))


WORDS = "search_words"


def _digits_only(q: str) -> str:
    """The digits of a search typed as a number (a phone, a passport: digits, spaces, ()+-.), else ""."""
    return re.sub(r"\D", "", q) if re.fullmatch(r"[\d\s()+\-.]+", q) else ""


def search_words(q: str) -> str | None:
    """The prefix query of a search by words (names, parts of them): None for an e-mail, digits (a
    phone, a passport) or nothing usable."""
    q = q.strip()
    if not q or "@" in q or _digits_only(q):
        return None
    words = re.findall(r"\w+", q.lower())[:6]
    return " & ".join(f"{w}:*" for w in words) if words else None


def filtered(f: ClientFilter, fields: list | None = None, *, company: str) -> Select:
    query = select(Client).where(Client.erased_at.is_(None))
    if f.archived == "no":
        query = query.where(Client.archived_at.is_(None))
    elif f.archived == "yes":
        query = query.where(Client.archived_at.is_not(None))
    conditions = [search_condition(f.q, company)]
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
    # only the sort's own columns are read: a list row holds just the columns it shows
    if sort == "recent":
        cols: list[Any] = [(client.last_operation_on or FAR_PAST).isoformat(), client.id]
    elif sort == "revenue":
        cols = [str(client.revenue_total), client.id]
    elif sort == "new":
        cols = [client.id]
    else:
        cols = [(client.last_name or "").lower(), (client.first_name or "").lower(), client.id]
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
    rows: list[Any]  # Client objects, or plain rows when list_clients was given columns
    next_cursor: str | None
    overdue: dict[int, Decimal]
    scores: dict[int, Any] = field(default_factory=dict)
    matches: int | None = None  # a text search's capped count, when the page needed it first


# Pages read plain rows (a Core select: no ORM objects, no identity map), only the columns they
# show, each under the model's attribute name, so templates and client_out read a row as a Client.
LIST_COLUMNS = (Client.id, Client.last_name, Client.first_name, Client.middle_name, Client.phone, Client.email,
                Client.last_operation_on, Client.operations_count, Client.revenue_total, Client.unpaid_total,
                Client.tags, Client.custom, Client.archived_at)
API_COLUMNS = (*LIST_COLUMNS, Client.birth_date, Client.address, Client.passport_mask, Client.consent,
               Client.product_group_ids, Client.direction_ids, Client.note, Client.created_at,
               Client.first_operation_on)
CARD_COLUMNS = (*API_COLUMNS, Client.erased_at)
# A list column's key -> the client columns it reads (saas/clients/columns.py names the keys).
COLUMN_READS: dict[str, tuple[Any, ...]] = {
    "phone": (Client.phone,), "email": (Client.email,), "last_purchase": (Client.last_operation_on,),
    "deals": (Client.operations_count,), "revenue": (Client.revenue_total,), "tags": (Client.tags,),
}
SORT_READS: dict[str, tuple[Any, ...]] = {"recent": (Client.last_operation_on,), "revenue": (Client.revenue_total,)}
LIST_SCORE = (ClientScore.status, ClientScore.risk_group, ClientScore.risk_factors, ClientScore.p_alive,
              ClientScore.clv, ClientScore.segment)
ALL_SCORE = tuple(c for c in ClientScore.__table__.c if c.key != "client_id")
OPERATION_COLUMNS = (Operation.id, Operation.client_id, Operation.kind, Operation.occurred_on, Operation.amount,
                     Operation.product_group_id, Operation.direction_id, Operation.due_on, Operation.paid_on,
                     Operation.note)


def list_columns_for(keys: set[str], sort: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The client and score columns a list page reads: only those of the columns shown (`keys`),
    plus what every row needs (id, name, archive mark, debt, status) and the sort key's own."""
    reads: list[Any] = [Client.id, Client.last_name, Client.first_name, Client.middle_name, Client.archived_at,
                        Client.unpaid_total]
    for key in sorted(keys):
        reads.extend(COLUMN_READS.get(key, ()))
    reads.extend(SORT_READS.get(sort, ()))
    if sort.startswith("cf_") or any(k.startswith("cf_") for k in keys):
        reads.append(Client.custom)
    client_columns = tuple(dict.fromkeys(reads))  # in a stable order, each once
    score_columns = tuple(c for c in LIST_SCORE if c.key in ("status", "risk_group", "risk_factors") or c.key in keys)
    return client_columns, score_columns


# Statements a page runs on every view are built once, with bound parameters: building one anew
# and computing its cache key cost ~0.6 ms of CPU a statement, running a built one ~0.3 ms.
TODAY = bindparam("overdue_today", type_=Date)  # _overdue_column's "today", given at execution


def _today() -> dict[str, Any]:
    return {"overdue_today": clock.today()}


def _overdue_column() -> Any:
    """A client's overdue sum inside the page's own query (one round trip less): the conditions of
    operations.overdue_amounts (unpaid sales and services past their due date, as of today), run
    only for clients with something unpaid (CASE); NULL when nothing is overdue."""
    overdue = (select(func.sum(Operation.amount))
               .where(Operation.client_id == Client.id, Operation.kind != "return", Operation.paid_on.is_(None),
                      Operation.due_on < TODAY)
               .correlate(Client).scalar_subquery())
    return case((Client.unpaid_total > 0, overdue)).label("page_overdue")


def _score_labels(score_columns: tuple) -> list[Any]:
    """The score's columns after the client's, prefixed: client_id first, NULL when there is none."""
    return [c.label(f"score_{c.key}") for c in (ClientScore.client_id, *score_columns)]


@functools.cache
def _score_names(score_columns: tuple) -> tuple[tuple[str, str], ...]:
    return tuple((c.key, f"score_{c.key}") for c in score_columns)  # (the model's name, the row's)


def score_of(row: Any, score_columns: tuple) -> SimpleNamespace | None:
    """The score part of a row read with _score_labels, as an object with the model's names."""
    if row.score_client_id is None:
        return None
    return SimpleNamespace(client_id=row.score_client_id,
                           **{name: getattr(row, label) for name, label in _score_names(score_columns)})


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


async def list_clients(db: AsyncSession, f: ClientFilter, shown: tuple | None = None,
                       score_columns: tuple = LIST_SCORE, fields: list | None = None) -> ClientPage:
    """One page. With `shown` (columns): plain rows of those columns and SimpleNamespace scores (pages);
    without: Client objects and ClientScore objects (the export, which decrypts passports). `fields`:
    the custom fields when the caller has read them (else read here, if the filter needs them)."""
    fields = await _fields_for(db, f.custom or f.sort.startswith("cf_"), fields)
    if f.sort.startswith("cf_"):
        columns, descending, types = custom_sort(f, fields)
    else:
        (columns, descending), types = SORTS[f.sort], SORT_TYPES[f.sort]
    company = crypto.company_of(db)
    query = filtered(f, fields, company=company)
    matches = None
    # The statements of a first page with no custom field involved are kept (built_once): the
    # same list opened again, by anyone in any company, runs the statement built the first time.
    # A search by words is kept without them (a bound parameter, given at execution); a search by
    # digits or an e-mail is not kept at all: what was searched for is not kept past the request.
    words = search_words(f.q)
    kept = shown is not None and not fields and not f.after and (not f.q.strip() or words is not None)
    memo = _filter_key(f, company, shown, score_columns) if kept else None
    params = {**_today(), **({WORDS: words} if words is not None else {})}
    surname = name_search.surname_word(f) if shown is not None else None
    if surname is not None and await name_search.usable(db):
        page_query = built_once(("surname", memo), lambda: _surname_first_page(f.limit, shown, score_columns))
        first = list((await core_rows(db, page_query, {**params, **name_search.bounds(surname)})).all())
        matches = first[0].match_count if first else 0
        if matches <= COUNT_CAP:
            return _page(f, first, fields, score_columns, matches)
    elif f.q.strip() and shown is not None and not f.after:
        page_query = built_once(("search", memo), lambda: _search_first_page(query, columns, descending, f.limit,
                                                                            shown, score_columns))
        first = list((await core_rows(db, page_query, params)).all())
        matches = first[0].match_count if first else 0
        if matches <= COUNT_CAP:
            return _page(f, first, fields, score_columns, matches)
    elif f.q.strip():
        # A search's matches lie all over the sort's index; when they are few, walking the index
        # for a page reads most of it (3.6 s for a frequent surname at a million clients) while
        # sorting the matches takes milliseconds: order by expressions the index cannot serve.
        matches = await capped_count(db, query)
        if matches <= COUNT_CAP:
            columns = [unindexed(c, t) for c, t in zip(columns, types, strict=True)]
    if f.after:
        key = decode_cursor(f.sort, f.after, types)
        if key is not None:
            left = tuple_(*columns)
            query = query.where(left < tuple_(*key) if descending else left > tuple_(*key))
    if shown is not None:
        page_query = built_once(("page", memo), lambda: _page_query(query, columns, descending, f.limit, shown,
                                                                   score_columns))
        return _page(f, list((await core_rows(db, page_query, params)).all()), fields, score_columns, matches)
    order = [c.desc() for c in columns] if descending else columns
    query = query.add_columns(ClientScore).outerjoin(ClientScore, ClientScore.client_id == Client.id)
    found = list((await db.execute(query.order_by(*order).limit(f.limit + 1))).all())
    rows = [client for client, _score in found[: f.limit]]
    return ClientPage(rows=rows,
                      next_cursor=encode_cursor(f.sort, rows[-1], fields) if len(found) > f.limit and rows else None,
                      overdue=await overdue_amounts(db, [c.id for c in rows if c.unpaid_total > 0]),
                      scores={client.id: score for client, score in found[: f.limit] if score is not None},
                      matches=matches)


def _page(f: ClientFilter, found: list[Any], fields: list, score_columns: tuple, matches: int | None) -> ClientPage:
    """A page of plain rows (read up to one past the page, to know whether there is more)."""
    rows = found[: f.limit]
    return ClientPage(
        rows=rows,
        next_cursor=encode_cursor(f.sort, rows[-1], fields) if len(found) > f.limit and rows else None,
        overdue={row.id: row.page_overdue for row in rows if row.page_overdue},
        scores={row.id: score for row in rows if (score := score_of(row, score_columns)) is not None},
        matches=matches,
    )


def _page_query(query: Select, columns: list[Any], descending: bool, limit: int, shown: tuple,
                score_columns: tuple) -> Select:
    """A page of the columns shown, with the scores (one LEFT JOIN on the primary key, no query per
    row) and the overdue sum, one row past the page."""
    order = [c.desc() for c in columns] if descending else columns
    return (query.with_only_columns(*shown, _overdue_column(), *_score_labels(score_columns))
            .outerjoin(ClientScore, ClientScore.client_id == Client.id).order_by(*order).limit(limit + 1))


def _search_first_page(query: Select, columns: list[Any], descending: bool, limit: int, shown: tuple,
                       score_columns: tuple) -> Select:
    """A text search's first page and its number of matches (`match_count`), in one statement: the
    matches (at most COUNT_CAP + 1, with their sort keys) are read once, counted by a window and
    sorted there, and only the page's rows are joined to their columns and scores. Reading the
    matches twice (a count, then the page) was most of a frequent surname's time at a million
    clients. With more than COUNT_CAP matches that subset's order is not the list's: the caller then
    walks the sort's index instead."""
    keys = [column.label(f"sort_{i}") for i, column in enumerate(columns)]
    found = query.with_only_columns(Client.id.label("match_id"), *keys).limit(COUNT_CAP + 1).subquery("found")
    return _first_page(found, func.count().over(), descending, limit, shown, score_columns)


def _surname_first_page(limit: int, shown: tuple, score_columns: tuple) -> Select:
    """A one-word search by name (name_search.py): the same page as _search_first_page's."""
    found, count = name_search.matches(bindparam(WORDS, type_=String), limit + 1, COUNT_CAP)
    return _first_page(found, count, False, limit, shown, score_columns)


def _first_page(found: Any, count: Any, descending: bool, limit: int, shown: tuple, score_columns: tuple) -> Select:
    """The first page of `found` (match_id and its sort keys sort_0, sort_1 …) with `count` as
    match_count: the page's rows ordered and joined to their columns and scores."""
    found_keys = [c for c in found.c if c.name.startswith("sort_")]
    ranked = (select(found.c.match_id, *found_keys, count.label("match_count"))
              .order_by(*[k.desc() for k in found_keys] if descending else found_keys).limit(limit + 1)
              .subquery("ranked"))
    ranked_keys = [ranked.c[key.name] for key in found_keys]
    return (select(*shown, _overdue_column(), *_score_labels(score_columns), ranked.c.match_count)
            .select_from(ranked).join(Client, Client.id == ranked.c.match_id)
            .outerjoin(ClientScore, ClientScore.client_id == Client.id)
            .order_by(*[k.desc() for k in ranked_keys] if descending else ranked_keys))


_BUILT: OrderedDict[Any, Select] = OrderedDict()
BUILT_MAX = 512


def built_once(key: Any, build: Callable[[], Select]) -> Select:
    """The statement for `key`, built by `build` the first time (None: not kept). Building a list's
    statement and its cache key anew cost more CPU than running it; the values in it are the
    filter's, all in the key, and today's date is a bound parameter given at execution."""
    if key is None or key[1] is None:
        return build()
    statement = _BUILT.get(key)
    if statement is None:
        statement = _BUILT[key] = build().params({WORDS: None})  # kept without a search's words
        if len(_BUILT) > BUILT_MAX:
            _BUILT.popitem(last=False)
    else:
        _BUILT.move_to_end(key)
    return statement


def _filter_key(f: ClientFilter, company: str, shown: tuple, score_columns: tuple) -> tuple:
    """Everything a page's statement depends on: every field of the filter but what only travels with
    it (the columns' URL form, typed dates, errors), the company (a passport number's search key),
    the columns read."""
    values = tuple((name, json.dumps(value, default=str, sort_keys=True)) for name, value in vars(f).items()
                   if name not in ("columns", "raw_dates", "errors", "q"))
    values += (("q", "words" if search_words(f.q) is not None else f.q.strip()),)  # the words: a parameter
    return values, company, shown, score_columns, clock.today()  # today: the "has overdue" filter's date


def unindexed(column: Any, kind: Any) -> Any:
    """The same value and order, but not an indexed expression (so the planner sorts the matches);
    `kind`: the key's cursor type (SORT_TYPES)."""
    return column.op("||")(literal("")) if kind is str else column + 0


async def capped_count(db: AsyncSession, query: Select) -> int:
    """The number of rows `query` matches, counted up to COUNT_CAP + 1 (never a whole-table scan)."""
    matches = query.with_only_columns(Client.id).limit(COUNT_CAP + 1).subquery()
    return await db.scalar(select(func.count()).select_from(matches)) or 0


async def card_row(db: AsyncSession, client_id: int, columns: tuple = CARD_COLUMNS,
                   furniture: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """A card's client and its scores, one query, as plain rows: (row, score or None); the row's
    `page_overdue` is its overdue sum (NULL: none), and it carries the `furniture` parts asked for
    (furniture_of reads them: the card's operations and the page's dictionaries in the same
    statement). The same 404 as service.access_client for a missing or erased client (the id
    comes from the user)."""
    params = {"client_id": client_id, "user_id": None, **_today()}
    row = (await core_rows(db, _card_query(columns, furniture), params)).first()
    if row is None or row.card_erased_at is not None:
        raise NotFoundException()
    return row, score_of(row, ALL_SCORE)


@functools.cache
def _card_query(columns: tuple, furniture: tuple[str, ...]) -> Select:
    return (select(*columns, Client.erased_at.label("card_erased_at"), _overdue_column(), *_score_labels(ALL_SCORE),
                   *(_FURNITURE_COLUMNS[p] for p in furniture))
            .outerjoin(ClientScore, ClientScore.client_id == Client.id).where(Client.id == bindparam("client_id")))


_SCORE_ROW = select(*_score_labels(ALL_SCORE)).where(ClientScore.client_id == bindparam("client_id"))


async def score_row(db: AsyncSession, client_id: int) -> Any:
    """One client's scores read now (not from the session's identity map): fresh after a write."""
    row = (await core_rows(db, _SCORE_ROW, {"client_id": client_id})).first()
    return None if row is None else score_of(row, ALL_SCORE)


# ---- a page's furniture --------------------------------------------------------------------
# What a list page or a card shows beside its rows: the active custom fields, the saved views the
# user sees, the active product groups and directions, a card's operations. Each is a scalar
# subquery giving its rows as one JSON array, so a page reads all it needs in one statement (each
# round trip cost ~0.2 ms of the web's CPU, and PostgreSQL's). msgspec decodes each array into rows
# with the table's names and Python types: dates as dates, amounts as exact Decimals (a JSON
# number's digits, never a float), jsonb as the engine decodes it.


def views_visible_to(user_id: Any) -> ColumnElement[bool]:
    """The saved views a user sees: their own and the shared ones."""
    return or_(SavedView.user_id == user_id, SavedView.shared)


@dataclass(frozen=True)
class _Part:
    columns: tuple[Any, ...]  # the row's columns, in its order
    where: tuple[Any, ...]
    order: Callable[[Any], list[Any]]  # the order, over the model or the subquery's columns
    limit: int | None = None


FURNITURE: dict[str, _Part] = {
    "fields": _Part(tuple(CustomField.__table__.c), (CustomField.archived_at.is_(None),),
                    lambda c: [c.position, c.id]),
    "views": _Part(tuple(SavedView.__table__.c), (views_visible_to(bindparam("user_id")),), lambda c: [c.name]),
    # by name, as service.dictionary orders them
    **{name: _Part((model.id, model.name), (model.archived_at.is_(None),), lambda c: [func.lower(c.name), c.id])
       for name, model in (("product_groups", ProductGroup), ("directions", Direction))},
    # every name by id, archived ones too (the API answers an old operation's group by its name)
    **{f"{name}_named": _Part((model.id, model.name), (), lambda c: [c.id])
       for name, model in (("product_groups", ProductGroup), ("directions", Direction))},
    # newest first (the order of operations.client_operations), the latest 500
    "operations": _Part(OPERATION_COLUMNS, (Operation.client_id == bindparam("client_id"),),
                        lambda c: [c.occurred_on.desc(), c.id.desc()], 500),
}
DICTIONARIES = ("product_groups", "directions")
NAMES = ("product_groups_named", "directions_named")


def _python_type(column: Any) -> Any:
    if isinstance(column.type, JSON):
        return Any  # decoded as the engine decodes jsonb (msgspec, untyped)
    return column.type.python_type | None


def _furniture_column(name: str) -> Any:
    part = FURNITURE[name]
    rows = select(*part.columns).where(*part.where)
    if part.limit is not None:
        rows = rows.order_by(*part.order(part.columns[0].table.c)).limit(part.limit)
    found = rows.subquery(f"{name}_rows")
    array = func.json_agg(aggregate_order_by(func.json_build_array(*found.c), *part.order(found.c)))
    return (select(cast(func.coalesce(array, literal_column("'[]'::json")), Text))
            .scalar_subquery().label(f"furniture_{name}"))


_FURNITURE_COLUMNS = {name: _furniture_column(name) for name in FURNITURE}
# array_like: a row is decoded from a JSON array; gc=False: rows hold no cycles (cheaper for 500)
_DECODERS = {name: msgspec.json.Decoder(list[msgspec.defstruct(  # type: ignore[misc]  # a type made at run time
    f"{name}_row", [(c.key, _python_type(c)) for c in part.columns], array_like=True, frozen=True, gc=False)])
    for name, part in FURNITURE.items()}


@functools.cache
def _furniture_query(parts: tuple[str, ...]) -> Select:
    return select(*(_FURNITURE_COLUMNS[p] for p in parts))


async def furniture(db: AsyncSession, *parts: str, user_id: int | None = None,
                    client_id: int | None = None) -> dict[str, list[Any]]:
    """The parts named (FURNITURE's keys), one statement: {part: rows}. `user_id`: whose views;
    `client_id`: whose operations."""
    row = (await core_rows(db, _furniture_query(parts), {"user_id": user_id, "client_id": client_id})).one()
    return furniture_of(row, parts)


def furniture_of(row: Any, parts: tuple[str, ...]) -> dict[str, list[Any]]:
    """The parts read along with another statement's row (card_row's)."""
    return {p: _DECODERS[p].decode(getattr(row, f"furniture_{p}")) for p in parts}


async def field_rows(db: AsyncSession) -> list[Any]:
    """The active custom field definitions, by position (rows with CustomField's names)."""
    return (await furniture(db, "fields"))["fields"]


async def _fields_for(db: AsyncSession, needed: Any, fields: list | None) -> list:
    """The custom fields a filter needs: none unless `needed` (a page's statement is kept only
    without them), the caller's when given."""
    if not needed:
        return []
    return fields if fields is not None else await field_rows(db)


async def count_clients(db: AsyncSession, f: ClientFilter, page: ClientPage | None = None,
                        fields: list | None = None) -> tuple[int, bool]:
    """The number of matches: (n, estimated). Exact up to COUNT_CAP (a capped count never scans a
    million rows); past it the planner's estimate, rounded (see estimate_rows). Given page 1, a page
    that holds the whole result is its own count, and no query runs. Without a text search (whose
    estimates can be far off) an estimate of SURELY_MANY or more is taken without the capped count.
    `fields`: as list_clients's."""
    if page is not None and not f.after and page.next_cursor is None:
        return len(page.rows), False
    if page is not None and page.matches is not None and page.matches <= COUNT_CAP:
        return page.matches, False  # counted before the page was read (a text search)
    fields = await _fields_for(db, f.custom, fields)
    matches = filtered(f, fields, company=crypto.company_of(db)).with_only_columns(Client.id)
    if not f.q:  # no text search: the planner's figure is close, so a sure "many" needs no count
        guess = await _sure_estimate(db, f, matches)
        if guess >= SURELY_MANY:
            return guess, True
    n = page.matches if page is not None and page.matches is not None else await capped_count(db, matches)
    if n <= COUNT_CAP:
        return n, False
    return await estimate_rows(db, matches), True


_ESTIMATES: OrderedDict[Any, tuple[float, int]] = OrderedDict()
ESTIMATE_SECONDS = 60


async def _sure_estimate(db: AsyncSession, f: ClientFilter, matches: Select) -> int:
    """The planner's estimate, kept a minute per company and filter when it is a sure "many" (the
    page says "about 1 000 000"; a minute-old "about" is as true, and saves a plan per view)."""
    key = (db.info.get("schema"), _filter_key(f, "", (), ())[0])
    kept = _ESTIMATES.get(key)
    if kept is not None and time.monotonic() - kept[0] < ESTIMATE_SECONDS:
        return kept[1]
    guess = await estimate_rows(db, matches)
    if guess >= SURELY_MANY:
        _ESTIMATES[key] = (time.monotonic(), guess)
        if len(_ESTIMATES) > BUILT_MAX:
            _ESTIMATES.popitem(last=False)
    return guess


class Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a select, its parameters bound as in the select itself."""

    inherit_cache = False  # compiled per call: a fraction of a millisecond, once per counted page

    def __init__(self, query: Select) -> None:
        self.query = query


@compiles(Explain)
def _explain_sql(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.query, **kw)


async def estimate_rows(db: AsyncSession, query: Select) -> int:
    """The planner's row estimate for `query` (statistics: no rows read), at least COUNT_CAP, to two
    significant figures: what the page shows as "about 120 000"."""
    plan: Any = (await db.execute(Explain(query))).scalar()
    rows = int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])
    digits = max(len(str(rows)) - 2, 0)
    return max(round(rows, -digits), COUNT_CAP)
