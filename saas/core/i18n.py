"""Russian and English. Strings are written in English and translated through gettext catalogs.

The catalog (saas/locale/ru/LC_MESSAGES/messages.po) is read with Babel at startup, so there is no
compile step. The current locale lives in a context variable set once per request (and per job).
"""
from __future__ import annotations

import contextvars
import functools
import gettext
import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.dates import DateTimePattern, format_datetime, get_date_format
from babel.dates import parse_pattern as parse_date_pattern
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import (
    NumberPattern, get_currency_precision, get_currency_symbol, get_decimal_quantum, get_decimal_symbol,
    get_group_symbol, parse_pattern,
)

LOCALES = ("ru", "en")
DEFAULT_LOCALE = "ru"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
_current: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default=DEFAULT_LOCALE)


def set_locale(locale: str | None) -> str:
    value = locale if locale in LOCALES else DEFAULT_LOCALE
    _current.set(value)
    return value


def get_locale() -> str:
    return _current.get()


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def gettext_(message: str, **params: object) -> str:
    text = translations(get_locale()).gettext(message)
    return text % params if params else text


def ngettext_(singular: str, plural: str, n: int, **params: object) -> str:
    text = translations(get_locale()).ngettext(singular, plural, n)
    return text % {"num": n, **params}


_ = gettext_


def lazy(message: str) -> str:
    """Mark a string for extraction where it is defined; translate it where it is shown."""
    return message


def best_locale(accept_language: str | None) -> str:
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LOCALES:
            return code
    return DEFAULT_LOCALE


# ---- formatting, always in the current locale -------------------------------------------
# A list page formats hundreds of cells. Babel's format_* functions parse the locale and the pattern
# on every call (Locale.parse alone was 9% of a list page's CPU), so the Locale objects, the date
# patterns and compiled number formats are built once per locale here. The output is Babel's, to
# the character: tests/unit/test_formatting.py compares them over thousands of values.


@functools.cache
def babel_locale(code: str) -> Locale:
    return Locale.parse(code)


class NumberFormat:
    """A Babel NumberPattern compiled for one locale (and currency): the affixes, symbols and
    precision looked up once. Plain patterns (no scientific or significant-digit notation) are
    formatted here with NumberPattern.apply's steps; any other one is left to apply itself."""

    def __init__(self, pattern: NumberPattern, locale: Locale, currency: str | None = None) -> None:
        self.pattern, self.locale, self.currency = pattern, locale, currency
        self.frac_min, self.frac_max = (get_currency_precision(currency),) * 2 if currency else pattern.frac_prec
        self.quantum = get_decimal_quantum(self.frac_max)
        self.scale, self.int_min = pattern.scale, pattern.int_prec[0]
        self.group_first, self.group_rest = pattern.grouping
        self.group, self.decimal = get_group_symbol(locale), get_decimal_symbol(locale)
        affixes = (*pattern.prefix, *pattern.suffix)
        self.fast = (not pattern.exp_prec and "@" not in pattern.pattern and pattern.number_pattern != ""
                     and not any("'" in a or "¤¤¤" in a for a in affixes))
        symbol = get_currency_symbol(currency, locale) if currency else ""
        fill = (lambda a: a.replace("¤¤", currency.upper()).replace("¤", symbol)) if currency else (lambda a: a)
        self.prefix = tuple(fill(a) for a in pattern.prefix)
        self.suffix = tuple(fill(a) for a in pattern.suffix)

    def __call__(self, value: Decimal | float | int) -> str:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not self.fast or not number.is_finite():
            return self.pattern.apply(value, self.locale, currency=self.currency)
        number = number.scaleb(self.scale)
        negative = int(number.is_signed())
        whole, _, frac = f"{abs(number).normalize().quantize(self.quantum):f}".partition(".")
        if len(whole) < self.int_min:
            whole = "0" * (self.int_min - len(whole)) + whole
        size, grouped = self.group_first, ""
        while len(whole) > size:
            grouped = self.group + whole[-size:] + grouped
            whole = whole[:-size]
            size = self.group_rest
        frac = frac or "0"
        if len(frac) < self.frac_min:
            frac += "0" * (self.frac_min - len(frac))
        if self.frac_max == 0 or (self.frac_min == 0 and int(frac) == 0):
            frac = ""
        else:
            frac = self.decimal + (frac.rstrip("0").ljust(self.frac_min, "0"))
        return self.prefix[negative] + whole + grouped + frac + self.suffix[negative]


@functools.cache
def money_format(code: str, currency: str) -> NumberFormat:
    loc = babel_locale(code)
    return NumberFormat(loc.currency_formats["standard"], loc, currency)


@functools.cache
def decimal_format(code: str) -> NumberFormat:
    loc = babel_locale(code)
    return NumberFormat(loc.decimal_formats[None], loc)


@functools.cache
def percent_format(code: str, digits: int) -> NumberFormat:
    return NumberFormat(parse_pattern("#,##0" + ("." + "0" * digits if digits else "") + "%"), babel_locale(code))


@functools.cache
def date_pattern(code: str, style: str) -> DateTimePattern:
    """A named style (short, medium, long, full) of the locale, or a pattern such as 'd MMM y'."""
    if style in ("full", "long", "medium", "short"):
        return get_date_format(style, locale=babel_locale(code))  # type: ignore[arg-type]
    return parse_date_pattern(style)


@functools.lru_cache(maxsize=8192)
def _format_date(code: str, style: str, value: date) -> str:
    """A list shows the same few hundred days again and again: each is formatted once."""
    return date_pattern(code, style).apply(value, babel_locale(code))


def fmt_date(value: date | datetime | None, style: str = "medium") -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.date()
    return _format_date(get_locale(), style, value)


def fmt_datetime(value: datetime | None, style: str = "short") -> str:
    if value is None:
        return "—"
    return format_datetime(value, format=style, locale=babel_locale(get_locale()))


def fmt_money(value: Decimal | float | int | None, currency: str = "RUB") -> str:
    if value is None:
        return "—"
    return money_format(get_locale(), currency)(value)


def fmt_number(value: float | int | Decimal | None) -> str:
    return "—" if value is None else decimal_format(get_locale())(value)


def fmt_percent(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return percent_format(get_locale(), digits)(value)


@functools.cache  # the top bar names both languages on every page
def language_name(code: str) -> str:
    name = babel_locale(code).get_display_name(code)
    return name.capitalize() if name else code
