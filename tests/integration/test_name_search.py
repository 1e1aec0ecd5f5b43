"""A one-word search by name (saas/clients/name_search.py) finds exactly what the general search
finds, in the same order with the same count, on names built to trip it: double surnames, case,
leading spaces, apostrophes, digits and "_" inside words, e-mails, patronymics made from the word,
archived and erased clients. And it runs: its index is used."""
from __future__ import annotations

import asyncio
import random
import secrets

import pytest
from sqlalchemy import event

from saas.clients.name_search import surname_word
from saas.clients.queries import LIST_COLUMNS, list_clients, parse_filter
from saas.core.db import Database
from tests.integration.test_client_lists import api, schema_of
from testkit import Browser, sql

WORDS = ["иванов", "иван", "петров", "ivan", "ivanov", "ov", "ё", "ёжик", "и", "о", "com", "x", "brien", "a",
         "ива", "Петров"]
PIECES = ["Иванов", "иванова", "ИВАНОВ", "Петров", "Ivanov", "ivan", "ов", "Ёжиков", "O'Brien", "ivan_ov",
          "ivan2ov", "ivanov.com", "Иванович", "Петровна", " ", "-", "'", "x", "a", "А", "Ёж"]


def name(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3)))


@pytest.fixture(scope="module")
def company(base_url: str, db_url: str):
    http = Browser(base_url)
    slug = http.signup(f"Names {secrets.token_hex(2)}")  # a slug of one English word is a word on the console
    schema = schema_of(db_url, slug)
    rng = random.Random(7)
    rows = [(name(rng), name(rng), name(rng), rng.choice([None, "ivanov@mail.ru", "petrov.ivan@x.com", "a_b@c.d"]),
             rng.random() < 0.05, rng.random() < 0.05) for _ in range(600)]
    rows += [("Иванов", "Пётр", "", None, False, False)] * 60  # more than a page of the same surname
    values = ", ".join(f"(:l{i}, :f{i}, :m{i}, :e{i}, CASE WHEN :a{i} THEN now() END, CASE WHEN :d{i} THEN now() END)"
                       for i in range(len(rows)))
    params = {f"{k}{i}": v for i, row in enumerate(rows) for k, v in zip("lfmead", row, strict=True)}
    sql(db_url, f'INSERT INTO "{schema}".clients (last_name, first_name, middle_name, email, archived_at, erased_at) '
                f"VALUES {values}", params)
    sql(db_url, f'ANALYZE "{schema}".clients')
    with api(base_url, slug) as client:
        yield client, schema
    http.close()


def general(db_url: str, schema: str, word: str) -> tuple[list[int], int]:
    """The general search's definition: the `search` vector, listed clients, name order."""
    where = (f"""FROM "{schema}".clients WHERE erased_at IS NULL AND archived_at IS NULL
                 AND search @@ to_tsquery('simple', :w)""")
    ids = sql(db_url, f"SELECT id {where} ORDER BY lower(last_name), lower(first_name), id LIMIT 50",
              {"w": f"{word.lower()}:*"})
    return [r[0] for r in ids], sql(db_url, f"SELECT count(*) {where}", {"w": f"{word.lower()}:*"})[0][0]


@pytest.mark.parametrize("word", WORDS)
def test_same_matches_order_and_count_as_the_general_search(company, db_url: str, word: str) -> None:
    client, schema = company
    ids, total = general(db_url, schema, word)
    page = client.get("/clients", params={"q": word, "limit": 50, "count": "true"}).json()
    assert [c["id"] for c in page["items"]] == ids
    assert (page["total"], page["total_is_estimate"]) == (total, False)
    assert total > 0 or word == "x"  # the words are found (x only inside other words: none)


def test_the_index_path_runs(company, db_url: str) -> None:
    """The page above came from name_search's statement (its other matches' CTE), not the general one."""
    _client, schema = company
    statements: list[str] = []

    async def go() -> int:
        db = Database(db_url, pool_size=1)
        event.listen(db.engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_a: statements.append(statement))
        try:
            async with db.session(schema) as s:
                page = await list_clients(s, parse_filter({"q": "Иванов"}), LIST_COLUMNS)
                return len(page.rows)
        finally:
            await db.dispose()

    assert asyncio.run(go()) == 50
    assert any("other_matches" in st for st in statements), statements


def test_only_a_plain_one_word_search_by_name_takes_it() -> None:
    assert surname_word(parse_filter({"q": " Иванов "})) == "иванов"
    assert surname_word(parse_filter({"q": "Иванов", "columns": "phone,email"})) == "иванов"
    for params in ({"q": "Иванов Пётр"}, {"q": "ivan_ov"}, {"q": "ivan2"}, {"q": "Иванов", "sort": "revenue"},
                   {"q": "Иванов", "tag": "vip"}, {"q": "Иванов", "archived": "all"}, {"q": "Иванов", "status": "lost"},
                   {"q": "Иванов", "after": "x"}, {"q": "+7916"}, {"q": ""}):
        assert surname_word(parse_filter(params)) is None, params
