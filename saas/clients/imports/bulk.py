"""A client import done set-based: the rows of the file go to a temporary table with one COPY, SQL
checks and normalises the common shapes of each cell exactly as the row rules would, and the new
clients that touch nothing else go in with INSERT … SELECT, a chunk at a time.

The SQL here is derived from `saas/clients/rules.py` (`normalise_client_row`), the one validation
of client rows: it is their twin for the shapes it vouches for, never a second set of rules. A
change to those rules is made here too, or the shape is left to Python (a failed check means "let
the row rules decide").

"Touch nothing else" means no matching key (phone or e-mail, as the import matches) shared with
another row of the file or with an existing client. Every other row (a match to update or skip, a
rejected row, a cell the SQL does not vouch for: a landline, initials, tags, a passport…) goes
through the row rules in file order, as before. Those rows can only interact with each other and
with older clients, so the outcome is the row-by-row import's, only faster
(tests/integration/test_import_bulk.py compares the two on the same files).

Per row the SQL only ever accepts what the Python rules accept and returns what they return:
names split on Python's whitespace, a Russian mobile through the `phonenumbers` pattern, a plain
ASCII e-mail, a date as DD.MM.YYYY or YYYY-MM-DD; anything else is left to Python.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import crypto
from saas.clients.contacts import RU_MOBILE_PATTERN, SPECIAL_DOMAINS
from saas.clients.imports.reader import read_table
from saas.clients.imports.rows import INLINE_BELOW, client_keys, forked, normalise_raw
from saas.clients.models import Import
from saas.clients.rules import RowResult
from saas.core import clock
from saas.core.engine import is_citus
from saas.accounts.limits import room

CHUNK = 100_000  # rows per INSERT … SELECT: one progress step each
SLOW_SHARE = 0.5  # above this share of rows for the row rules, the streaming import is cheaper
NAME_PARTS = ("last_name", "first_name", "middle_name")
KEYED = ("phone", "email")  # the keys a fast row can have (a passport row is never fast)


@dataclass
class Chunk:
    created: int  # new clients inserted by SQL in this chunk
    rest: list[tuple[RowResult, dict[str, str]]]  # the other rows, for the row rules, in file order


@cache
def python_whitespace() -> str:
    """The characters str.strip() and str.split() treat as whitespace (re's \\s is the same set)."""
    return "".join(ch for ch in map(chr, range(0x110000)) if ch.isspace())


def _bind_values(today: date) -> dict[str, Any]:
    special = "|".join(re.escape(d) for d in SPECIAL_DOMAINS)
    odd = python_whitespace().replace(" ", "")
    return {"ws": python_whitespace(), "ws_run": f"[{python_whitespace()}]+", "odd_space": f"[{odd}]|  ",
            "today": today,
            "mobile": f"^(?:{RU_MOBILE_PATTERN.replace(chr(92) + 'd', '[0-9]')})$",
            "special": f"(^|\\.)({special})$"}


# ---- the SQL of one row ------------------------------------------------------------------------


def _strip(c: str) -> str:
    return f"btrim({c}, :ws)"


def _words(c: str) -> str:
    """" ".join(value.split()); the regexp only when the cell holds other whitespace than single spaces."""
    return (f"CASE WHEN {c} ~ :odd_space THEN regexp_replace(btrim({c}, :ws), :ws_run, ' ', 'g') "
            f"ELSE btrim({c}, ' ') END")


def _present(c: str) -> str:
    return f"({_strip(c)} <> '')"


# Python's pattern without its counted repetitions (slow in PostgreSQL's engine); the limits they
# imposed are checked apart: no label over 63 characters, no '--', at most 64 before the '@'.
_EMAIL = ("email_raw ~ '^[A-Za-z0-9_+.@-]+$' AND length(email_raw) <= 254 AND email_low ~ "
          "'^[a-z0-9_+]+([.-][a-z0-9_+]+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z][a-z]+$' "
          "AND length(split_part(email_low, '@', 1)) <= 64 AND strpos(split_part(email_low, '@', 2), '--') = 0 "
          "AND (length(email_low) < 64 OR email_low !~ '[^.@]{64}') AND split_part(email_low, '@', 2) !~ :special")
_RU_DATE, _ISO_DATE = "^[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{4}$", "^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$"
_MONTH_DAYS = ("CASE WHEN m = 2 THEN 28 + (y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0))::int "
               "WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END")
_IN_RANGE = "birth_real BETWEEN DATE '1900-01-01' AND :today"
KNOWN = (*NAME_PARTS, "full_name", "phone", "email", "birth_date", "address", "note")


@dataclass
class RowSql:
    """A SELECT in layers, each computed once per row (OFFSET 0 keeps PostgreSQL from inlining a
    layer's expressions into every use of them): cells -> parts -> values -> dates -> columns, fast."""
    cells: list[str]
    parts: list[str]
    values: list[str]
    dates: list[str]
    columns: list[str]
    checks: list[str]


def row_sql(columns: dict[str, str]) -> RowSql:
    """The SQL twin of normalise_client_row for the mapped fields (`columns`: field -> staging
    column). A failed check means "let Python decide", never "reject"."""
    sql = RowSql([], [], [], [], ["last_name", "first_name", "middle_name", "phone", "email"],
                 ["(last_name <> '' OR first_name <> '')"])
    _names(sql, columns)
    _phone(sql, columns.get("phone"))
    _email(sql, columns.get("email"))
    _birth_date(sql, columns.get("birth_date"))
    for name in ("address", "note"):
        sql.columns.append(f"NULLIF({_strip(columns[name])}, '') AS {name}" if name in columns
                           else f"NULL::text AS {name}")
    for name, c in columns.items():  # anything else (passport, consent, tags, interests, custom): empty only
        if name not in KNOWN:
            sql.checks.append(f"NOT {_present(c)}")
    return sql


def _names(sql: RowSql, columns: dict[str, str]) -> None:
    for part in NAME_PARTS:
        sql.cells.append(f"{_words(columns[part]) if part in columns else repr('')} AS g_{part}")
    if "full_name" not in columns:
        sql.parts += [f"g_{part} AS {part}" for part in NAME_PARTS]
        return
    c = columns["full_name"]  # split only when no last or first name is given, as the row rules do
    commas_as_spaces = f"replace({c}, ',', ' ')"
    sql.cells += [f"{_present(c)} AS fn_present", f"strpos({c}, '.') = 0 AS fn_plain",  # '.': initials
                  f"string_to_array({_words(commas_as_spaces)}, ' ') AS fn"]
    use = "(fn_present AND g_last_name = '' AND g_first_name = '')"
    sql.parts += [
        f"CASE WHEN {use} THEN CASE WHEN cardinality(fn) > 1 THEN fn[1] ELSE '' END ELSE g_last_name END AS last_name",
        f"CASE WHEN {use} THEN coalesce(fn[least(cardinality(fn), 2)], '') ELSE g_first_name END AS first_name",
        (f"CASE WHEN {use} AND g_middle_name = '' THEN array_to_string(fn[3:], ' ') ELSE g_middle_name END"
         " AS middle_name"), f"NOT {use} OR fn_plain AS fn_ok"]
    sql.checks.append("fn_ok")


def _phone(sql: RowSql, c: str | None) -> None:
    if c is None:
        sql.parts.append("NULL::text AS phone")
        return
    sql.cells += [f"{_present(c)} AS phone_present",  # digits, '+', spaces and ( ) - . only: the rest to Python
                  f"CASE WHEN {c} ~ '^[0-9+ ().-]+$' THEN translate({c}, ' ().-', '') END AS phone_digits"]
    sql.parts.append("CASE WHEN phone_digits ~ '^(\\+7|8|7)?9[0-9]{9}$' AND right(phone_digits, 10) ~ :mobile "
                     "THEN '+7' || right(phone_digits, 10) END AS phone")
    sql.checks.append("(NOT phone_present OR phone IS NOT NULL)")


def _email(sql: RowSql, c: str | None) -> None:
    if c is None:
        sql.parts.append("NULL::text AS email")
        return
    sql.cells += [f"{_strip(c)} AS email_raw", f"lower({_strip(c)}) AS email_low"]
    sql.parts.append(f"CASE WHEN email_raw <> '' AND {_EMAIL} THEN email_low END AS email")
    sql.checks.append("(email_raw = '' OR email IS NOT NULL)")


def _birth_date(sql: RowSql, c: str | None) -> None:
    if c is None:
        sql.columns.append("NULL::date AS birth_date")
        return
    c = _strip(c)
    sql.cells += [f"{c} AS birth_raw",
                  f"CASE WHEN {c} ~ '{_RU_DATE}' THEN 'ru' WHEN {c} ~ '{_ISO_DATE}' THEN 'iso' END AS birth_shape"]
    sql.parts.append("CASE WHEN birth_shape IS NOT NULL THEN string_to_array(translate(birth_raw, './', '--'), '-')"
                     "::int[] END AS dmy")
    sql.values += ["CASE birth_shape WHEN 'ru' THEN dmy[3] ELSE dmy[1] END AS y", "dmy[2] AS m",
                   "CASE birth_shape WHEN 'ru' THEN dmy[1] ELSE dmy[3] END AS d"]
    sql.dates.append(f"CASE WHEN y >= 1 AND m BETWEEN 1 AND 12 AND d BETWEEN 1 AND {_MONTH_DAYS} "
                     "THEN make_date(y, m, d) END AS birth_real")
    sql.columns.append(f"CASE WHEN {_IN_RANGE} THEN birth_real END AS birth_date")
    sql.checks.append(f"(birth_raw = '' OR {_IN_RANGE})")


def norm_select(columns: dict[str, str]) -> str:
    """n, the new client's columns and `fast`, per staged row. The SQL is built from this module's
    own fragments and the staging column names (c0, c1, …); no cell value is ever part of it."""
    sql = row_sql(columns)
    layers = "import_stage"
    for items in (sql.cells, sql.parts, sql.values, sql.dates):
        if items:
            layers = f"(SELECT *, {', '.join(items)} FROM {layers} OFFSET 0) layer"  # noqa: S608 - see above
    return f"SELECT n, {', '.join(sql.columns)}, ({' AND '.join(sql.checks)}) IS TRUE AS fast FROM {layers}"  # noqa: S608


# ---- staging -----------------------------------------------------------------------------------


def _mapped(imp: Import) -> dict[str, int]:
    """Mapped field -> file column, in the mapping's order (the staging table's c0, c1, …)."""
    return {field: int(index) for index, field in imp.mapping.items() if field}


def _canonical_csv(payload: bytes, filename: str, indexes: list[int], rows_per_chunk: int = 20_000) -> Iterator[bytes]:
    """The file's rows as the row import reads them (encoding, skipped blank rows, line numbers) in
    one CSV dialect for COPY: row number, line, the mapped cells; every field quoted, so an empty
    cell is '' and never NULL, and a lone \\. is data, not COPY's end marker."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for n, cells in enumerate(read_table(payload, filename).rows):
        writer.writerow([n, cells.line, *(cells[i] if i < len(cells) else "" for i in indexes)])
        if n % rows_per_chunk == rows_per_chunk - 1:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def _raw(db: AsyncSession) -> Any:  # asyncpg's connection, for COPY
    return (await (await db.connection()).get_raw_connection()).driver_connection


async def _scratch(db: AsyncSession, name: str, *, columns: str = "", query: str = "",
                   params: dict[str, Any] | None = None) -> None:
    """A staging table for this transaction. On plain PostgreSQL a temp table dropped at commit; on
    Citus a table in the company's own schema (so it sits on the company's worker: a coordinator temp
    table cannot be joined with the company's tables), dropped by `drop_staging` before commit."""
    if await is_citus(await db.connection()):
        head = f"CREATE UNLOGGED TABLE {name}"
    else:
        head = f"CREATE TEMP TABLE {name}" + (f" {columns} ON COMMIT DROP" if columns else " ON COMMIT DROP")
        columns = ""
    await db.execute(text(f"{head} {columns}" + (f" AS {query}" if query else "")), params or {})


async def drop_staging(db: AsyncSession) -> None:
    """The staged rows hold the file's personal data: gone with the transaction, on any engine."""
    await db.execute(text("DROP TABLE IF EXISTS import_stage, import_norm, import_taken"))


async def _stage(db: AsyncSession, imp: Import) -> None:
    indexes = list(_mapped(imp).values())
    await db.execute(text("DROP TABLE IF EXISTS import_stage, import_norm, import_taken"))
    cells = ", ".join(f"c{i} text" for i in range(len(indexes)))
    await _scratch(db, "import_stage", columns=f"(n int, line int, {cells})")

    args = (imp.payload, imp.filename, indexes)
    if (imp.total_rows or 0) < INLINE_BELOW:
        async def inline() -> AsyncIterator[bytes]:
            for chunk in _canonical_csv(*args):
                yield chunk
        source = inline()
    else:  # the child reads and writes CSV while PostgreSQL parses the previous chunk
        source = forked(_canonical_csv, args)
    await (await _raw(db)).copy_to_table("import_stage", source=source, format="csv")


# ---- the plan ----------------------------------------------------------------------------------


async def classify(db: AsyncSession, imp: Import, today: date | None = None,
                   progress: Callable[..., Awaitable[None]] | None = None) -> None:
    """import_stage (n, line, the mapped cells) and import_norm (n, the columns SQL computed, fast)."""
    if progress:  # a million rows take seconds to read and check before the first is written
        await progress(0, imp.total_rows, "reading")
    await _stage(db, imp)
    if progress:
        await progress(0, imp.total_rows, "checking")
    staging = {field: f"c{i}" for i, field in enumerate(_mapped(imp))}
    await _scratch(db, "import_norm", query=norm_select(staging), params=_bind_values(today or clock.today()))
    await db.execute(text("CREATE INDEX ON import_stage (n)"))
    await db.execute(text("CREATE INDEX ON import_norm (n)"))
    await db.execute(text("ANALYZE import_norm"))


async def plan(db: AsyncSession, imp: Import, fields: list | None, match_by: list[str],
               progress: Callable[..., Awaitable[None]] | None = None,
               today: date | None = None) -> AsyncIterator[Chunk] | None:
    """Stage and sort the rows; None when the row-by-row import had better do it all (most rows
    need the row rules anyway, or the new clients would pass the plan's limit)."""
    await classify(db, imp, today, progress)
    total, slow = (await db.execute(text("SELECT count(*), count(*) FILTER (WHERE NOT fast) FROM import_norm"))).one()
    if _mostly_slow(total, slow):
        return None
    keyed = [k for k in KEYED if k in match_by]
    await _taken_keys(db, imp, fields, match_by, keyed, total)
    for kind in keyed:  # a key another row or an existing client has: that row goes to the row rules
        await db.execute(text(f"UPDATE import_norm n SET fast = false FROM import_taken t "  # noqa: S608
                              f"WHERE n.fast AND t.kind = '{kind}' AND t.value = n.{kind}"))
    fast = await db.scalar(text("SELECT count(*) FROM import_norm WHERE fast"))
    if _mostly_slow(total, total - fast):  # a re-import: its rows match clients already there
        return None
    if (space := await room(db, None, "clients")) is not None and fast > space.left:
        return None  # over the plan: the row import rejects exactly the new clients past the limit
    if progress:
        await progress(0, imp.total_rows)  # writing starts
    return _chunks(db, imp, fields, total)


def _mostly_slow(total: int, slow: int) -> bool:
    """The row import, reading rows in a child process, does a file of mostly slow rows faster."""
    return slow > SLOW_SHARE * total and slow > 10_000


async def _taken_keys(db: AsyncSession, imp: Import, fields: list | None, match_by: list[str],
                      keyed: list[str], total: int) -> None:
    """import_taken(kind, value): the matching keys a fast row must not have. Taken here, before any
    insert: keys of the rows the row rules will see, keys repeated in the file, existing clients'.
    The rows SQL does not vouch for are put through the row rules here for their keys, and again
    when applied: keeping their results would hold up to half the file in memory."""
    await _scratch(db, "import_taken", columns="(kind text, value text)")
    for start in range(0, total, CHUNK):
        keys = [k for batch in await _slow_rows(db, imp, fields, start)
                for result, _raw in batch if not result.errors
                for k in client_keys(result.values, match_by, crypto.company_of(db)) if k[0] in keyed]
        if keys:
            await (await _raw(db)).copy_records_to_table("import_taken", records=keys)
    for kind in keyed:
        await db.execute(text(
            f"INSERT INTO import_taken SELECT '{kind}', {kind} FROM import_norm "  # noqa: S608
            f"WHERE fast AND {kind} IS NOT NULL GROUP BY {kind} HAVING count(*) > 1 "
            f"UNION ALL SELECT '{kind}', n.{kind} FROM import_norm n WHERE n.fast AND EXISTS "
            f"(SELECT 1 FROM clients c WHERE c.{kind} = n.{kind} AND c.erased_at IS NULL)"))
    await db.execute(text("ANALYZE import_taken"))


async def _slow_rows(db: AsyncSession, imp: Import, fields: list | None, start: int,
                     size: int = 1000) -> list[list[tuple[RowResult, dict[str, str]]]]:
    """The rows of [start, start + CHUNK) that are not fast, through the row rules, in file order,
    in batches of `size`. Read whole (not streamed): the caller queries between batches."""
    names = list(_mapped(imp))
    cells = ", ".join(f"s.c{i}" for i in range(len(names)))
    rows = (await db.execute(text(
        f"SELECT s.line, {cells} FROM import_stage s JOIN import_norm USING (n) "  # noqa: S608
        "WHERE NOT fast AND n >= :start AND n < :stop ORDER BY n"), {"start": start, "stop": start + CHUNK})).all()
    out = []
    for i in range(0, len(rows), size):
        batch = []
        for line, *values in rows[i:i + size]:
            raw = dict(zip(names, values, strict=True))
            batch.append((normalise_raw(raw, line, imp.kind, fields), raw))
        out.append(batch)
    return out


async def _chunks(db: AsyncSession, imp: Import, fields: list | None, total: int) -> AsyncIterator[Chunk]:
    for start in range(0, total, CHUNK):
        created = (await db.execute(text(
            "INSERT INTO clients (last_name, first_name, middle_name, birth_date, phone, email, address, note, "
            "import_id) SELECT last_name, first_name, middle_name, birth_date, phone, email, address, note, :import "
            "FROM import_norm WHERE fast AND n >= :start AND n < :stop ORDER BY n"),
            {"import": imp.id, "start": start, "stop": start + CHUNK})).rowcount
        yield Chunk(created, [])
        for batch in await _slow_rows(db, imp, fields, start):
            yield Chunk(0, batch)
