"""A one-word search in the list's default view (by name), without reading every match.

The general search reads all of a word's matches (the `search` GIN index, then each row from the
table for its sort keys) to count and sort them: ~10 ms of the database at a million clients for a
frequent surname, 4,000 rows spread over as many pages. Most of those matches are surnames that
start with the word, and those lie together in the name index: they are counted there and the first
page read in order, both from the index alone (ix_clients_name_listed). The other matches (the word
in a first name, a patronymic, an e-mail, or a later part of a double surname) come from a second
GIN index over those words only (ix_clients_other_words), a few rows for most surnames.

Together the two sets are exactly the general search's matches (tests/integration/
test_name_search.py compares them on awkward names): a surname starting with the word has a word
starting with it; the "other" words are all the client's words but a plain surname's first (letters,
with more parts after a hyphen or a space); a surname of any other shape is kept whole among them,
since PostgreSQL's parser splits such text its own way (hosts, numbers). The other matches are
checked against the whole vector too. "Starts with" is a range of the index only where text sorts
by code point (C, C.UTF-8); elsewhere the general search runs.

At a million clients, the most frequent surname (4,280 matches): 6 ms of the database instead of 21
(EXPLAIN ANALYZE), the page 0.065 of a bare page's rate instead of 0.046 (bench/pages.py).
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, and_, bindparam, func, literal, literal_column, or_, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Select

from saas.clients.models import OTHER_WORDS, Client

LOW, HIGH = "surname_low", "surname_high"
_LOW, _HIGH = bindparam(LOW, type_=String), bindparam(HIGH, type_=String)
_LETTERS = re.compile(r"[^\W\d_]+")  # one word of letters: digits and "_" split words differently in PostgreSQL
_PLAIN = {"q"}  # a filter with nothing but the search (query_args without the columns shown)


def surname_word(f: Any) -> str | None:
    """The word, when `f` (a ClientFilter) is a plain one-word search sorted by name; else None."""
    word = f.q.strip().lower()
    if f.sort != "name" or f.after or f.ids or f.custom or not _LETTERS.fullmatch(word):
        return None
    return word if set(f.query_args(columns="")) == _PLAIN else None


def bounds(word: str) -> dict[str, str]:
    """The surnames starting with `word`, as a range in code-point order: [word, word's successor)."""
    return {LOW: word, HIGH: word[:-1] + chr(ord(word[-1]) + 1)}


_ORDERS: dict[str, bool] = {}
_COLLATION = text("SELECT datcollate, datlocprovider::text FROM pg_database WHERE datname = current_database()")


async def usable(db: AsyncSession) -> bool:
    """Whether this database sorts text by code point (asked once per database)."""
    key = str(db.get_bind().url)
    if key not in _ORDERS:
        collation, provider = (await db.execute(_COLLATION)).one()
        _ORDERS[key] = provider == "b" or (provider == "c" and (collation in ("C", "POSIX")
                                                                  or collation.lower() in ("c.utf-8", "c.utf8")))
    return _ORDERS[key]


def matches(words: Any, limit: int, cap: int) -> tuple[Select, Any]:
    """(found, count): the first `limit` surname matches in name order together with all the other
    matches (at most cap + 1), as rows (match_id, sort_0, sort_1, sort_2); and the number of matches
    (each set counted up to cap + 1). `words` is the tsquery's text (a bound parameter)."""
    listed = and_(Client.erased_at.is_(None), Client.archived_at.is_(None))  # ix_clients_name_listed's rows
    surname = func.lower(Client.last_name)
    in_range = and_(surname >= _LOW, surname < _HIGH)
    keys = (surname.label("sort_0"), func.lower(Client.first_name).label("sort_1"), Client.id.label("sort_2"))
    query = func.to_tsquery("simple", words)
    by_surname = (select(Client.id.label("match_id"), *keys).where(listed, in_range)
                  .order_by(*(k.element for k in keys)).limit(limit))
    others = (select(Client.id.label("match_id"), *keys)
              # the whole vector checked as a function: as the operator the planner also scans its
              # index (all the surname's matches) and intersects, to keep none of them
              .where(listed, literal_column(OTHER_WORDS).op("@@")(query), func.ts_match_vq(Client.search, query),
                     or_(surname < _LOW, surname >= _HIGH))
              .limit(cap + 1).cte("other_matches"))
    surnames = select(literal(1)).select_from(Client).where(listed, in_range).limit(cap + 1).subquery("surnames")
    count = (select(func.count()).select_from(surnames).scalar_subquery()
             + select(func.count()).select_from(others).scalar_subquery())
    return union_all(by_surname, select(others)).subquery("found"), count
