"""A list page's statement is built once per filter (queries.built_once): two filters that differ in
anything that reaches SQL never share one; a repeated filter does."""
from __future__ import annotations

from sqlalchemy import Select, literal, select

from saas.clients import queries


def _key(params: dict, company: str = "c1") -> tuple:
    return queries._filter_key(queries.parse_filter(params), company, queries.LIST_COLUMNS, queries.LIST_SCORE)


def test_every_filter_field_reaches_the_key() -> None:
    base = _key({})
    assert _key({}) == base
    for params in ({"q": "Иван"}, {"status": "lost"}, {"segment": "champions"}, {"risk": "risk"}, {"tag": "vip"},
                   {"debt": "overdue"}, {"archived": "all"}, {"sort": "revenue"}, {"limit": "10"},
                   {"revenue_min": "10"}, {"last_op_from": "-30d"}, {"product_group_id": "3"}):
        assert _key(params) != base, params
    assert _key({"q": "4510123456"}, "c1") != _key({"q": "4510123456"}, "c2")  # a passport's search key
    assert _key({"columns": "phone"}) == base  # carried along, not part of the SQL (shown is)


def test_built_once_returns_the_same_statement_for_the_same_key() -> None:
    built: list[int] = []

    def build() -> Select:
        built.append(1)
        return select(literal(1))

    first = queries.built_once(("page", ("k",)), build)
    assert queries.built_once(("page", ("k",)), build) is first and len(built) == 1
    queries.built_once(("page", None), build)
    queries.built_once(("page", None), build)
    assert len(built) == 3  # None: never kept


def test_a_search_by_words_is_kept_without_its_words() -> None:
    """Two searches by words share one statement, which holds neither search's words (they are a
    bound parameter given at execution); a search by digits has its own key (and is never kept)."""
    assert _key({"q": "Иванова"}) == _key({"q": "Петров Пётр"}) != _key({})
    assert _key({"q": "+7 916 123"}) != _key({"q": "+7 916 124"})
    f = queries.parse_filter({"q": "Секретарёва"})
    statement = queries.built_once(("page", ("unit-test-words",)),
                                   lambda: queries.filtered(f, [], company="c1"))
    compiled = statement.compile()
    assert compiled.params[queries.WORDS] is None and "секретарёва" not in str(compiled.params)
    assert queries.search_words("Анна  Мария") == "анна:* & мария:*"
    assert queries.search_words("a@b.ru") is None and queries.search_words("8 (916) 123") is None
