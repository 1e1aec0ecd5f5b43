"""The cached formatters of saas.core.i18n print exactly what Babel's own functions print.

Babel per call is the reference (format_currency / format_percent / format_decimal / format_date /
format_datetime with the locale given as a string, as the code did before); the values are drawn
at random (seeded) and include the edges: zero, negative zero, negative money, 1e12 and beyond,
half-way roundings, tiny fractions, floats, ints, and currencies with 0 and 3 decimal places.
"""
from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from saas.core import i18n

LOCALES = ("ru", "en")
N = 3000
EDGES = [0, Decimal("0"), Decimal("-0"), Decimal("0.00"), Decimal("-0.001"), Decimal("0.005"), Decimal("0.015"),
         Decimal("-0.005"), Decimal("1e12"), Decimal("-1e12"), Decimal("1000000000000.00"),
         Decimal("-999999999999.995"), Decimal("123456789012345.67"), 10**12, -(10**12), 1e12, -1e12, 0.1, -0.1,
         1e-7, 2.675, 1.005, 999.995, Decimal("1234.5000"), Decimal("7"), 7, -7, 1, 100, 1000, 10000, 0.5]


def money_values(rnd: random.Random) -> list:
    values: list = list(EDGES)
    for _ in range(N):
        kind = rnd.randrange(5)
        if kind == 0:  # money as stored: two places, either sign, up to 1e12
            values.append(Decimal(rnd.randint(-10**14, 10**14)).scaleb(-2))
        elif kind == 1:  # small amounts
            values.append(Decimal(rnd.randint(-100000, 100000)).scaleb(-2))
        elif kind == 2:  # more places than the currency has: rounding
            values.append(Decimal(rnd.randint(-10**9, 10**9)).scaleb(-rnd.randint(3, 6)))
        elif kind == 3:
            values.append(rnd.uniform(-1e13, 1e13))
        else:
            values.append(rnd.randint(-10**13, 10**13))
    return values


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("currency", ["RUB", "USD", "EUR", "JPY", "KWD"])
def test_money_is_babels(locale: str, currency: str) -> None:
    i18n.set_locale(locale)
    values = money_values(random.Random(f"{locale}{currency}"))
    different = [(v, i18n.fmt_money(v, currency), format_currency(v, currency, locale=locale)) for v in values
                 if i18n.fmt_money(v, currency) != format_currency(v, currency, locale=locale)]
    assert different == []
    assert i18n.fmt_money(None, currency) == "—"


def test_money_examples() -> None:
    """A readable anchor beside the comparisons: what RU and EN pages show."""
    i18n.set_locale("ru")
    assert i18n.fmt_money(Decimal("-1234567.5")) == "-1\xa0234\xa0567,50\xa0₽"
    assert i18n.fmt_money(Decimal("1e12")) == "1\xa0000\xa0000\xa0000\xa0000,00\xa0₽"
    assert i18n.fmt_money(0) == "0,00\xa0₽"
    i18n.set_locale("en")
    assert i18n.fmt_money(Decimal("-1234567.5"), "USD") == "-$1,234,567.50"
    assert i18n.fmt_money(Decimal("1e12"), "RUB") == "RUB1,000,000,000,000.00"


@pytest.mark.parametrize("locale", LOCALES)
def test_number_is_babels(locale: str) -> None:
    i18n.set_locale(locale)
    values = money_values(random.Random(f"n{locale}")) + [random.Random(i).uniform(-5, 5) for i in range(500)]
    different = [(v, i18n.fmt_number(v), format_decimal(v, locale=locale)) for v in values
                 if i18n.fmt_number(v) != format_decimal(v, locale=locale)]
    assert different == []
    assert i18n.fmt_number(None) == "—"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("digits", [0, 1, 2])
def test_percent_is_babels(locale: str, digits: int) -> None:
    i18n.set_locale(locale)
    rnd = random.Random(f"p{locale}{digits}")
    values = [0, 0.0, -0.0, 1, 1.0, 0.5, 0.005, 0.0049999, 0.125, -0.125, 0.995, 0.9999, 12.5, 1e6,
              Decimal("0.3333"), Decimal("-0.005")]
    values += [rnd.uniform(-1.5, 1.5) for _ in range(N)] + [rnd.random() for _ in range(N)]
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    different = [(v, i18n.fmt_percent(v, digits), format_percent(v, format=pattern, locale=locale)) for v in values
                 if i18n.fmt_percent(v, digits) != format_percent(v, format=pattern, locale=locale)]
    assert different == []
    assert i18n.fmt_percent(None, digits) == "—"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("style", ["short", "medium", "long", "full", "d MMM y"])
def test_date_is_babels(locale: str, style: str) -> None:
    i18n.set_locale(locale)
    rnd = random.Random(f"d{locale}{style}")
    days = [date(1, 1, 1), date(1950, 1, 1), date(2026, 12, 31), date(9999, 12, 31)]
    days += [date(1940, 1, 1) + timedelta(days=rnd.randint(0, 40_000)) for _ in range(N)]
    different = [(d, i18n.fmt_date(d, style), format_date(d, format=style, locale=locale)) for d in days
                 if i18n.fmt_date(d, style) != format_date(d, format=style, locale=locale)]
    assert different == []
    moment = datetime(2026, 5, 17, 23, 30, tzinfo=UTC)  # a datetime shows its date
    assert i18n.fmt_date(moment, style) == format_date(moment.date(), format=style, locale=locale)
    assert i18n.fmt_date(None, style) == "—"


@pytest.mark.parametrize("locale", LOCALES)
def test_datetime_is_babels(locale: str) -> None:
    i18n.set_locale(locale)
    rnd = random.Random(f"t{locale}")
    moments = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rnd.randint(0, 10**8))
               for _ in range(300)]
    for style in ("short", "medium"):
        assert [i18n.fmt_datetime(m, style) for m in moments] == \
               [format_datetime(m, format=style, locale=locale) for m in moments]
    assert i18n.fmt_datetime(None) == "—"


def test_locales_and_patterns_are_built_once() -> None:
    """The point of the change: a page's cells reuse one Locale and one compiled pattern."""
    i18n.set_locale("ru")
    i18n.fmt_money(1)
    assert i18n.money_format("ru", "RUB") is i18n.money_format("ru", "RUB")
    assert i18n.babel_locale("ru") is i18n.babel_locale("ru")
    before = i18n.babel_locale.cache_info().misses
    for v in range(200):
        i18n.fmt_money(v)
        i18n.fmt_percent(v / 200)
        i18n.fmt_number(v)
        i18n.fmt_date(date(2026, 1, 1) + timedelta(days=v))
    assert i18n.babel_locale.cache_info().misses == before


def test_jsonb_decodes_as_json_loads_does() -> None:
    """The engine's jsonb decoder (msgspec, for speed) reads what json.loads reads, the same way."""
    import json

    from saas.core.db import decode_json

    for text in ('{"a": 123456789012345678901234567890, "b": [1, "x", null, true, 0.1]}', '"\\u0436"', "[]",
                 '{"big": 1.5e400}'):
        assert decode_json(text) == json.loads(text)
