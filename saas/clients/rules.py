"""The row rules: the one validation of client and operation rows, for every write path.

The form and the API (`check_client`, `check_operation_row`), the import (`imports/rows.py`, and its
set-based SQL twin `imports/bulk.py`, derived from these rules) and the restore of a company export
all put a row through the functions below, so a row means the same wherever it comes from. Pure
code: strings keyed by field name in, normalised Python values and per-field messages out, no
database. Messages are plain English msgids (or `Message`s naming their value): callers translate.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from saas.clients.contacts import normalise_email, normalise_phone
from saas.core import clock
from saas.core.errors import FormError
from saas.core.i18n import _, lazy
from saas.core.values import Message, parse_amount, parse_bool, parse_date, translated

CLIENT_FIELDS = ["full_name", "last_name", "first_name", "middle_name", "birth_date", "phone", "email", "address",
                 "passport_series", "passport_number", "passport_issued_by", "passport_issued_on",
                 "passport_division_code", "consent_email", "consent_sms", "consent_calls", "tags", "note",
                 "product_groups", "directions"]
OPERATION_FIELDS = ["client_phone", "client_email", "client_passport", "client_name", "kind", "occurred_on", "amount",
                    "product_group", "direction", "due_on", "paid_on", "note"]

# (field, exact header names, fragments of the normalised header; "a+b" needs both). Exact names win;


# ---- names ---------------------------------------------------------------------------------


def split_full_name(value: str) -> tuple[str, str, str]:
    """Russian order: last, first, then everything else as the middle name ("Али оглы").
    One word is taken as the first name: CRMs often hold just "Мария". "И.И. Иванов" is turned round."""
    words: list[str] = []
    for word in value.replace(",", " ").split():
        words += re.findall(r"\w\.", word) if re.fullmatch(r"(?:\w\.){2,}", word) else [word]
    if len(words) > 1 and not _initial(words[-1]) and all(_initial(w) for w in words[:-1]):
        words = words[-1:] + words[:-1]
    if len(words) == 1:
        return "", words[0], ""
    return (words[0], words[1], " ".join(words[2:])) if words else ("", "", "")


def _initial(word: str) -> bool:
    return re.fullmatch(r"\w\.", word) is not None


# ---- rows ----------------------------------------------------------------------------------


@dataclass
class RowResult:
    line: int
    values: dict[str, Any]
    errors: dict[str, str]


FUTURE_OPERATION = "The operation date %(value)s is after today (%(today)s)."


def future_operation_date(day: date, typed: str, today: date) -> Message | None:
    """The one rule on an operation's date in the future, for imports, the form and the API. A future
    purchase would make every model's calibration period end after today, so it is refused."""
    return Message(FUTURE_OPERATION, value=typed.strip()[:40], today=today.isoformat()) if day > today else None


class _Checker:
    """Collects normalised values and per-field errors, so that each field's rule is one line.
    Only fields with something in them are looked at: an empty cell means "not given"."""

    def __init__(self, raw: dict[str, Any], fields: list[str], today: date | None) -> None:
        self.raw = {}
        for f, value in raw.items():  # a row's few mapped cells, not every field the form knows
            if value is not None and f in fields and (text := str(value).strip()):
                self.raw[f] = text
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.today = today or clock.today()

    def put(self, name: str, parse: Callable[[str], Any]) -> Any:
        """values[name] = parse(raw value), or errors[name] = the message of its ValueError."""
        if name not in self.raw:
            return None
        try:
            value = parse(self.raw[name])
        except ValueError as exc:
            given = exc.args[0] if exc.args else ""
            self.errors[name] = given if isinstance(given, Message) else str(exc)
            return None
        if value not in ("", []):
            self.values[name] = value
        return value

    def require(self, name: str, message: str) -> None:
        if name not in self.raw:
            self.errors[name] = message

    def date_rule(self, future: str | None = None, earliest: date | None = None, too_early: str = "") -> Callable:
        def parse(value: str) -> date:
            day = parse_date(value, today=self.today)
            if future and day > self.today:
                raise ValueError(future)
            if earliest and day < earliest:
                raise ValueError(too_early)
            return day
        return parse

    def operation_date(self, value: str) -> date:
        day = parse_date(value, today=self.today)
        if error := future_operation_date(day, value, self.today):
            raise ValueError(error)
        return day

    def result(self, line: int) -> RowResult:
        return RowResult(line, self.values, self.errors)


def _words(value: str) -> str:
    return " ".join(value.split())


def _first(value: str) -> str:
    """Bitrix24 puts several phones/e-mails into one cell, comma-separated: the first is used."""
    return next((part.strip() for part in re.split(r"[,;]", value) if part.strip()), "")


def _split_list(value: str) -> list[str]:
    """'VIP, опт; vip | новый' -> ['VIP', 'опт', 'новый']: 'VIP' and 'vip' are one tag."""
    seen: dict[str, str] = {}
    for item in re.split(r"[,;|]", value):
        item = _words(item)
        if item and item.casefold() not in seen:
            seen[item.casefold()] = item
    return list(seen.values())


def _matching(pattern: str, message: str, template: str = r"\g<0>") -> Callable[[str], str]:
    def parse(value: str) -> str:
        found = re.fullmatch(pattern, value)
        if not found:
            raise ValueError(message)
        return found.expand(template)
    return parse


def normalise_client_row(raw: dict[str, str], line: int, region: str = "RU", today: date | None = None) -> RowResult:
    """One client from strings keyed by field name (import rows and the web form alike). A full name
    is split only when no separate name parts are given; the normalised values carry the parts."""
    row = _Checker(raw, CLIENT_FIELDS, today)
    last, first, middle = (_words(row.raw.get(f, "")) for f in ("last_name", "first_name", "middle_name"))
    if row.raw.get("full_name") and not (last or first):
        last, first, split_middle = split_full_name(row.raw["full_name"])
        middle = middle or split_middle
    row.values.update({k: v for k, v in (("last_name", last), ("first_name", first), ("middle_name", middle)) if v})
    if not (last or first):
        row.errors["name"] = "A client needs at least a last or first name."
    row.put("phone", lambda v: normalise_phone(_first(v), region))
    row.put("email", lambda v: normalise_email(_first(v)))
    birth = row.put("birth_date", row.date_rule("The birth date cannot be in the future.", date(1900, 1, 1),
                                                "The birth date cannot be before 1900."))
    if not _PASSPORT_FIELDS.isdisjoint(row.raw):
        _passport(row, birth)
    for name in ("consent_email", "consent_sms", "consent_calls"):
        row.put(name, parse_bool)
    for name in ("tags", "product_groups", "directions"):
        row.put(name, _split_list)
    row.put("address", str)
    row.put("note", str)
    return row.result(line)


_PASSPORT_FIELDS = frozenset(f for f in CLIENT_FIELDS if f.startswith("passport_"))
_SERIES = _matching(r"\d{4}", "The passport series must be 4 digits.")
_NUMBER = _matching(r"\d{6}", "The passport number must be 6 digits.")
_DIVISION = _matching(r"(\d{3})[\s-]?(\d{3})", "The division code must look like 123-456.", r"\1-\2")


def _passport(row: _Checker, birth: date | None) -> None:
    series, number = (re.sub(r"[\s\-№]", "", row.raw.pop(f, "")) for f in ("passport_series", "passport_number"))
    if bool(series) != bool(number) and re.fullmatch(r"\d{10}", series or number):
        series, number = (series or number)[:4], (series or number)[4:]  # "4510 123456" in one column
    row.raw.update({k: v for k, v in (("passport_series", series), ("passport_number", number)) if v})
    row.put("passport_series", _SERIES)
    row.put("passport_number", _NUMBER)
    row.put("passport_issued_by", _words)
    row.put("passport_division_code", _DIVISION)
    row.put("passport_issued_on", row.date_rule("The issue date cannot be in the future.",
                                                birth and birth + timedelta(days=1),
                                                "The issue date must be after the birth date."))


_KINDS = {**dict.fromkeys(["sale", "продажа", "покупка", "реализация"], "sale"),
          **dict.fromkeys(["service", "услуга", "услуги"], "service"),
          **dict.fromkeys(["return", "возврат"], "return")}
CLIENT_KEYS = ("client_phone", "client_email", "client_passport", "client_name")


_passport_digits = _matching(r"\d{10}", "The passport must be 10 digits (series and number).")


UNKNOWN_KIND = "Unknown operation type «%(value)s»: use sale, service or return."  # names the bad value


def _kind(value: str) -> str:
    try:
        return _KINDS[_words(value).casefold()]
    except KeyError:
        raise ValueError(Message(UNKNOWN_KIND, value=(value or "").strip()[:40])) from None


NEGATIVE_AMOUNT = "A negative amount means a return: choose the kind Return, or enter the amount without a minus."
NOT_POSITIVE = "The amount must be a positive number."
MAX_NOTE = 10_000  # an import cell's own limit, so a note means the same in every write path


def _note(value: str) -> str:
    if len(value) > MAX_NOTE:
        raise ValueError(Message("At most %(n)s characters.", n=str(MAX_NOTE)))
    return value


def normalise_operation_row(raw: dict[str, str], line: int, region: str = "RU",
                            today: date | None = None, *, client_known: bool = False) -> RowResult:
    """One operation. A negative amount without a kind, or with the kind "return", is a return of
    that amount: 1C and CRMs export returns so. A negative sale or service is refused, saying so:
    guessing would turn a typo into a refund. `client_known`: the caller found the client already
    (the form and the API by the address, the restore by the exported id), so no key is needed."""
    row = _Checker(raw, OPERATION_FIELDS, today)
    kind = row.put("kind", _kind)
    row.require("amount", "The amount is required.")
    amount = row.put("amount", parse_amount)
    if amount is not None:
        if amount < 0 and kind in (None, "return") and "kind" not in row.errors:
            kind, amount = "return", -amount
        if amount > 0:
            row.values["amount"] = amount
        else:
            row.errors["amount"] = NEGATIVE_AMOUNT if amount < 0 and kind in ("sale", "service") else NOT_POSITIVE
            del row.values["amount"]
    if "kind" not in row.errors:
        row.values["kind"] = kind or "sale"
    row.require("occurred_on", "The operation date is required.")
    row.put("occurred_on", row.operation_date)
    row.put("due_on", row.date_rule())
    row.put("paid_on", row.date_rule("The payment date cannot be in the future."))
    if not client_known and not any(k in row.raw for k in CLIENT_KEYS):
        row.errors["client"] = "Each operation needs a client: phone, email, passport or name."
    row.put("client_phone", lambda v: normalise_phone(_first(v), region))
    row.put("client_email", lambda v: normalise_email(_first(v)))
    row.put("client_passport", lambda v: _passport_digits(re.sub(r"\D", "", v)))
    for name in ("client_name", "product_group", "direction"):
        row.put(name, _words)
    row.put("note", _note)
    return row.result(line)


# ---- the form and the API --------------------------------------------------------------------

OPERATION_FORM_FIELDS = ("kind", "occurred_on", "amount", "due_on", "paid_on", "note")


def _strings(raw: dict[str, Any]) -> dict[str, str]:
    return {k: ("" if v is None else str(v)) for k, v in raw.items() if not isinstance(v, list | dict | bool)}


def form_errors(errors: dict[str, str]) -> dict[str, str]:
    """A row's messages in the reader's language, keyed by field, for a FormError."""
    return {k: translated(v, _) for k, v in errors.items()}


def check_client(raw: dict[str, Any], *, today: date | None = None) -> dict[str, Any]:
    """Validate raw strings keyed by field name; return normalised values or raise FormError."""
    strings = _strings(raw)
    for key in ("tags",):
        if isinstance(raw.get(key), list):
            strings[key] = ",".join(str(x) for x in raw[key])
    result = normalise_client_row(strings, line=0, today=today)
    if result.errors:
        raise FormError(form_errors(result.errors))
    return result.values


def check_operation_row(raw: dict[str, Any], *, today: date | None = None) -> RowResult:
    """An operation from the form or the API, whose client the address names: the import's row
    rules over the same fields, so a row typed, sent, imported or restored means the same."""
    strings = _strings({k: v for k, v in raw.items() if k in OPERATION_FORM_FIELDS})
    return normalise_operation_row(strings, line=0, today=today, client_known=True)


# The messages above are shown translated (`translated(message, _)` where they are displayed);
# listing them here puts them in the catalog.
_CATALOG = [
    lazy('Not a valid phone number.'),
    lazy('Not a valid email address.'),
    lazy('A client needs at least a last or first name.'),
    lazy('The birth date cannot be in the future.'),
    lazy('The birth date cannot be before 1900.'),
    lazy('The passport series must be 4 digits.'),
    lazy('The passport number must be 6 digits.'),
    lazy('The division code must look like 123-456.'),
    lazy('The issue date cannot be in the future.'),
    lazy('The issue date must be after the birth date.'),
    lazy('The passport must be 10 digits (series and number).'),
    lazy('Unknown operation type «%(value)s»: use sale, service or return.'),
    lazy('The amount is required.'),
    lazy('The amount must be a positive number.'),
    lazy('A negative amount means a return: choose the kind Return, or enter the amount without a minus.'),
    lazy('At most %(n)s characters.'),
    lazy('The operation date is required.'),
    lazy('The operation date %(value)s is after today (%(today)s).'),
    lazy('The payment date cannot be in the future.'),
    lazy('Each operation needs a client: phone, email, passport or name.'),
]
