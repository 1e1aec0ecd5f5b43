"""Values as people type them, and cells as spreadsheets would read them.

Pure code, for every domain: dates, money and yes/no as Russian users and their software write
them, the messages that name the value they refuse (translated whole by the caller), and the CSV
injection guard for whatever a spreadsheet will open. Messages are plain English msgids: callers
translate (`translated`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from saas.core import clock
from saas.core.i18n import lazy

# ---- messages that name a value ------------------------------------------------------------


class Message(str):
    """A rule's message that names a value: it reads as the English sentence, and keeps its msgid
    and values so that the caller can translate it whole (`translated`)."""

    msgid: str
    params: dict[str, str]

    def __new__(cls, msgid: str, **params: str) -> Message:
        self = super().__new__(cls, msgid % params if params else msgid)
        self.msgid, self.params = msgid, params
        return self

    def __reduce__(self) -> tuple:  # rows are normalised in a forked child and pickled back
        return _message, (self.msgid, self.params)


def _message(msgid: str, params: dict[str, str]) -> Message:
    return Message(msgid, **params)


def translated(message: str, gettext: Callable[..., str]) -> str:
    """A rule's message in the reader's language: a plain msgid, or a Message with its values."""
    if isinstance(message, Message):
        return gettext(message.msgid, **message.params)
    return gettext(message)


def joined(messages: Iterable[str], gettext: Callable[..., str]) -> str:
    """Several messages as one sentence, each translated: '…abc; …' (no '.;' where one ended)."""
    texts = [translated(m, gettext).strip() for m in messages]
    return "; ".join(t.rstrip(".") if i < len(texts) - 1 else t for i, t in enumerate(texts))


# ---- dates ---------------------------------------------------------------------------------

_DATE_FORMATS = [re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
                 re.compile(r"(?P<d>\d{1,2})[./-](?P<m>\d{1,2})[./-](?P<y>\d{4}|\d{2})")]
_TIME = re.compile(r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?)?")
BAD_DATE = "Not a valid date: use DD.MM.YYYY or YYYY-MM-DD."


def parse_date(value: str, *, today: date | None = None) -> date:
    """Dates as Russian users and their software write them; a time part is accepted and dropped.
    A bare integer is an Excel serial (1900 system) only in 1..80000, so "2024" or a phone is refused."""
    text = re.sub(r"\s*г\.?$", "", (value or "").strip())  # "01.02.1990 г."
    if text.isdigit():
        serial = int(text)
        if not 1 <= serial <= 80_000 or serial == 60:  # 60 is Excel's fictitious 29.02.1900
            raise ValueError(BAD_DATE)
        return date(1899, 12, 30 if serial > 60 else 31) + timedelta(days=serial)
    for pattern in _DATE_FORMATS:
        found = pattern.match(text)
        hms = _TIME.fullmatch(text, found.end()) if found else None
        if found is None or hms is None:
            continue
        if hms["H"] and (int(hms["H"]) > 23 or int(hms["M"]) > 59 or int(hms["S"] or 0) > 59):
            raise ValueError(BAD_DATE)
        year = int(found["y"])
        if len(found["y"]) == 2:
            year += 2000 if year <= (today or clock.today()).year % 100 else 1900
        try:
            return date(year, int(found["m"]), int(found["d"]))
        except ValueError:
            raise ValueError(BAD_DATE) from None
    raise ValueError(BAD_DATE)


# ---- money ---------------------------------------------------------------------------------

_CURRENCY = re.compile(r"₽|руб\.?|р\.|RUB|RUR|\$|€|USD|EUR|[\s\u00a0\u202f\u2009']", re.IGNORECASE)
NOT_A_NUMBER = "Not a number: %(value)s"
TOO_LARGE = "The amount is too large."


def parse_amount(value: str) -> Decimal:
    """Money as typed in Russia or exported elsewhere. With both ',' and '.', the last one is the
    decimal point; a lone ',' is decimal unless it groups exactly three digits ('1,234' = 1234),
    since kopecks have two digits."""
    text = _CURRENCY.sub("", (value or "").strip()).replace("−", "-")
    if text.startswith("(") and text.endswith(")"):  # accountants' negative
        negative, digits = True, text[1:-1]
    else:
        negative, digits = text.startswith("-"), text[1:] if text[:1] in "+-" else text
    if "," in digits and "." in digits:
        thousands = "," if digits.rfind(",") < digits.rfind(".") else "."
        digits = digits.replace(thousands, "").replace(",", ".")
    elif re.fullmatch(r"[1-9]\d{0,2}(,\d{3})+", digits) or re.fullmatch(r"[1-9]\d{0,2}(\.\d{3}){2,}", digits):
        digits = digits.replace(",", "").replace(".", "")
    else:
        digits = digits.replace(",", ".")
    if not re.fullmatch(r"\d+(\.\d*)?|\.\d+", digits):
        raise ValueError(Message(NOT_A_NUMBER, value=(value or "").strip()[:40]))
    amount = Decimal(digits)
    if amount >= 10 ** 12:  # before rounding: a longer number would not fit Decimal's precision
        raise ValueError(TOO_LARGE)
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if amount >= 10 ** 12:  # 999999999999.995 rounds up past what a money column holds
        raise ValueError(TOO_LARGE)
    return -amount if negative else amount


# ---- yes or no -----------------------------------------------------------------------------

_BOOLS = {**dict.fromkeys(["да", "yes", "true", "1", "+", "y", "д", "истина", "on"], True),
          **dict.fromkeys(["нет", "no", "false", "0", "-", "n", "н", "ложь", "off", ""], False)}


def parse_bool(value: str) -> bool:
    try:
        return _BOOLS[(value or "").strip().casefold()]
    except KeyError:
        raise ValueError("Expected yes or no.") from None


# ---- spreadsheet safety --------------------------------------------------------------------


# A sign before a plain number is a number, not a formula: phones in E.164 and negative amounts
# must reach an SMS gateway or an accounting program as they are.
_SIGNED_NUMBER = re.compile(r"[+-]\d+(?:[.,]\d+)?")


def formula_safe(value: str) -> str:
    """For CSV exports: an apostrophe before a cell a spreadsheet would run as a formula (CSV
    injection). '=' and '@' always start one, as do a tab or CR; '+' and '-' only when what follows
    is not a plain number ('+79161234567' and '-5.00' stay, '-2+3' and '+cmd' are neutralised)."""
    if not value:
        return value
    if value[0] in "=@\t\r" or (value[0] in "+-" and not _SIGNED_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def formula_unsafe(value: str) -> str:
    """Undo formula_safe, for files this application wrote (restores): the apostrophe before a
    cell starting with = + - @ tab or CR goes, whichever version of the guard put it there."""
    return value[1:] if len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r" else value


def xlsx_cells(ws: object, values: list[object]) -> list[object]:
    """A row for an openpyxl write-only sheet: numbers and dates typed as they are, every text a
    text cell (data type 's'), so that '=1+1' is shown, never run, and '+79161234567' keeps its plus
    without an apostrophe in the cell."""
    from openpyxl.cell import WriteOnlyCell

    row: list[object] = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(ws, value=value)
            cell.data_type = "s"  # openpyxl guesses a formula from a leading '='
            row.append(cell)
        else:
            row.append(value)
    return row


# The messages above are shown translated where they are displayed; listing them here puts them
# in the catalog.
_CATALOG = [
    lazy('Not a valid date: use DD.MM.YYYY or YYYY-MM-DD.'),
    lazy('Not a number: %(value)s'),
    lazy('The amount is too large.'),
    lazy('Expected yes or no.'),
]
