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
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

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


def fmt_date(value: date | datetime | None, style: str = "medium") -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, format=style, locale=get_locale())


def fmt_datetime(value: datetime | None, style: str = "short") -> str:
    if value is None:
        return "—"
    return format_datetime(value, format=style, locale=get_locale())


def fmt_money(value: Decimal | float | int | None, currency: str = "RUB") -> str:
    if value is None:
        return "—"
    return format_currency(value, currency, locale=get_locale())


def fmt_number(value: float | int | Decimal | None) -> str:
    return "—" if value is None else format_decimal(value, locale=get_locale())


def fmt_percent(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return format_percent(value, format="#,##0" + ("." + "0" * digits if digits else "") + "%", locale=get_locale())


def language_name(code: str) -> str:
    name = Locale.parse(code).get_display_name(code)
    return name.capitalize() if name else code
