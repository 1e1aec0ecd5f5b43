"""Reading uploaded client/operation tables and normalising their rows.

Pure code: bytes in, Python values out, no database. Files come from Excel, 1C, amoCRM and Bitrix24,
so the reader guesses what those programs do (cp1251 and ';' from Russian Excel, UTF-8 with BOM from
CRMs, XLSX with real dates) and refuses, with one clear sentence, whatever would hurt the worker
(zip bombs, binary data, huge cells or rows). Messages are plain English msgids: callers translate.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import openpyxl

from saas.clients.contacts import normalise_email, normalise_phone  # noqa: F401 - part of this module's API
from saas.core import clock
from saas.web.i18n import lazy  # noqa: E402 - a marker only; this module stays pure

MAX_BYTES = 100 * 1024 * 1024
MAX_COLUMNS = 500
MAX_CELL = 10_000
MAX_ROWS = 2_000_000

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls and password-protected workbooks
SAMPLE = 64 * 1024  # enough text to judge encoding, binary garbage and the delimiter
DAMAGED = "The XLSX file is damaged or truncated."
NOT_TEXT = "The file is not a text table (binary data?)."
EMPTY = "The file is empty."
MIXED = "The file mixes text encodings (part UTF-8, part Windows-1251): save it again as UTF-8."


class ImportFileError(ValueError):
    """A problem with the whole file; the message is a sentence to show the user as is."""


class Row(list):
    """A row's cells (a plain list of str to callers) that also remembers its line in the file,
    because skipped empty rows and multi-line quoted cells make the position differ from the index."""

    def __init__(self, cells: Iterable[str], line: int) -> None:
        super().__init__(cells)
        self.line = line


@dataclass
class Table:
    headers: list[str]
    rows: Iterator[list[str]] | list[list[str]] = field(repr=False)
    encoding: str | None
    delimiter: str | None
    file_type: str


# ---- reading files -------------------------------------------------------------------------


def read_table(data: bytes, filename: str = "") -> Table:
    """Headers are read now (so a bad file fails here); the rows are a one-pass generator, so a
    100 MB file is never held as Python lists. A later problem is raised, as ImportFileError, from
    the iteration. Each row is a `Row` (a list) padded to the header width, with `.line` set."""
    if not data:
        raise ImportFileError(EMPTY)
    if len(data) > MAX_BYTES:
        raise ImportFileError("The file is larger than 100 MB.")
    if data.startswith(ZIP_MAGIC):
        return _read_xlsx(data)
    if data.startswith(OLE_MAGIC):
        raise ImportFileError("Old .xls and password-protected workbooks are not supported: "
                              "save the file as .xlsx without a password, or as CSV.")
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise ImportFileError(DAMAGED)
    return _read_csv(data)  # a ".xls" that is not OLE is usually a CSV/TSV in disguise: try it


def _read_xlsx(data: bytes) -> Table:
    """openpyxl would unpack whatever the archive claims, so the sizes are checked first."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except Exception as exc:  # untrusted archive: any failure to read it is damage
        raise ImportFileError(DAMAGED) from exc
    total = sum(i.file_size for i in infos)
    if total > 20 * MAX_BYTES or any(
            i.file_size > 10 * 1024 * 1024 and i.file_size > 200 * max(i.compress_size, 1) for i in infos):
        raise ImportFileError("The XLSX file looks like a zip bomb: it is far too large when unpacked.")
    try:
        with warnings.catch_warnings():  # style/extension warnings mean nothing to the user
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except Exception as exc:
        raise ImportFileError(DAMAGED) from exc
    sheet.reset_dimensions()  # a wrong <dimension> would otherwise cut rows off or pad to 16384 columns

    def records() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [_cell_text(v) for v in values]
        except Exception as exc:  # broken XML deep inside the sheet
            raise ImportFileError(DAMAGED) from exc
        finally:
            book.close()

    return _build_table(records(), encoding=None, delimiter=None, file_type="xlsx")


def _cell_text(value: Any) -> str:
    """XLSX cells as the user sees them: ISO dates, whole numbers without '.0' (phones!)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ", "seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15g")
    return str(value)


def _read_csv(data: bytes) -> Table:
    encoding = _detect_encoding(data)
    sample = data[:SAMPLE].decode(encoding, errors="ignore")
    bad = sum(1 for ch in sample if ch < " " and ch not in "\t\r\n")
    if "\x00" in sample or bad * 100 > len(sample):
        raise ImportFileError(NOT_TEXT)
    head = sample.lstrip().lower()
    if head.startswith("<") and "<table" in head:
        raise ImportFileError("The file is a web page, not a table (some CRMs save such pages as .xls): "
                              "export to CSV or XLSX instead.")
    delimiter = _detect_delimiter(sample)
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace", newline="")
    return _build_table(_csv_records(stream, delimiter), encoding=encoding, delimiter=delimiter, file_type="csv")


def _detect_encoding(data: bytes) -> str:
    """BOM first; then UTF-8 only if the whole file decodes (a stray cp1251 byte anywhere decides);
    else cp1251, which Russian Excel and 1C write. UTF-16 is Excel's "Unicode text" export."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in data[:8192]:
        raise ImportFileError(NOT_TEXT)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return _eight_bit(data)
    return "utf-8"


_UTF8_PAIR = re.compile(rb"[\xc2-\xdf][\x80-\xbf]")  # a 2-byte UTF-8 letter; rare inside cp1251 words
_MIXED_WORD = re.compile(r"(?=\w*[a-zA-Z])(?=\w*[а-яА-ЯёЁ])\w+")  # "Mьller": Latin-1 read as cp1251


def _eight_bit(data: bytes) -> str:
    """Not UTF-8. Refuse a file that is half UTF-8 (two programs wrote it): any single reading would
    garble one half. Otherwise cp1251, unless that reading puts Cyrillic letters inside Latin words,
    which is what Western-European text (cp1252, "Latin-1") looks like when read as cp1251."""
    sample = data[:SAMPLE]
    high = sum(1 for b in sample if b >= 0x80)
    if high and len(_UTF8_PAIR.findall(sample)) * 2 > high * 0.3:
        raise ImportFileError(MIXED)
    text = sample.decode("cp1251", errors="replace")
    words = [w for w in re.findall(r"\w+", text) if not w.isascii()]
    mixed = sum(1 for w in words if _MIXED_WORD.fullmatch(w))
    return "cp1252" if words and mixed * 2 > len(words) else "cp1251"


def _detect_delimiter(sample: str, candidates: str = ";\t,") -> str:
    """Count candidates outside quotes in the first 20 lines. The header must contain the delimiter
    and data lines should repeat its count: that beats the decimal commas of a ';' file. A single
    column gets a tab, the one candidate that never appears unquoted in a cell."""
    lines = [line for line in re.sub(r'"[^"]*"', "", sample).splitlines() if line.strip()][:20]
    if not lines:
        return "\t"
    header, rest = lines[0], lines[1:]

    def score(d: str) -> tuple[float, int, int]:
        same = sum(line.count(d) == header.count(d) for line in rest) / len(rest) if rest else 1.0
        return same, header.count(d), -candidates.index(d)

    return max((d for d in candidates if d in header), key=score, default="\t")


def _csv_records(stream: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """strict=True so that an unclosed quote fails instead of silently swallowing the file."""
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            text = str(exc)
            if "field limit" in text:  # the csv module's own limit (128 KB) is far above ours
                message = f"Line {start}: a cell is longer than {MAX_CELL:,} characters (is a quote left unclosed?)."
            elif "end of data" in text:
                message = f'Line {start}: a quoted cell is never closed (a missing ").'
            else:
                message = f"Line {start}: the CSV is malformed ({text}); check the quotes on this line."
            raise ImportFileError(message) from None
        yield start, cells


def _build_table(records: Iterator[tuple[int, list[str]]], **meta: Any) -> Table:
    for line, cells in records:
        cells = _check_limits(line, cells)
        if cells:
            headers = [c.strip() for c in cells]
            return Table(headers=headers, rows=_data_rows(records, len(headers)), **meta)
    raise ImportFileError(EMPTY)


def _data_rows(records: Iterator[tuple[int, list[str]]], width: int) -> Iterator[list[str]]:
    count = 0
    for line, cells in records:
        cells = _check_limits(line, cells)
        if not cells:
            continue
        count += 1
        if count > MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows.")
        yield Row(cells + [""] * (width - len(cells)), line)


def _check_limits(line: int, cells: list[str]) -> list[str]:
    """Drop trailing blank cells (Excel writes ';;;' across formatted columns), then apply limits."""
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    cells = cells[:end]
    if len(cells) > MAX_COLUMNS:
        raise ImportFileError(f"Line {line} has {len(cells):,} columns; the limit is {MAX_COLUMNS}.")
    for cell in cells:
        if len(cell) > MAX_CELL:
            hint = " (is a quote left unclosed?)" if "\n" in cell else ""
            raise ImportFileError(f"Line {line}: a cell is longer than {MAX_CELL:,} characters{hint}.")
    return cells


# ---- guessing the column mapping ----------------------------------------------------------

CLIENT_FIELDS = ["full_name", "last_name", "first_name", "middle_name", "birth_date", "phone", "email", "address",
                 "passport_series", "passport_number", "passport_issued_by", "passport_issued_on",
                 "passport_division_code", "consent_email", "consent_sms", "consent_calls", "tags", "note",
                 "product_groups", "directions"]
OPERATION_FIELDS = ["client_phone", "client_email", "client_passport", "client_name", "kind", "occurred_on", "amount",
                    "product_group", "direction", "due_on", "paid_on", "note"]

# (field, exact header names, fragments of the normalised header; "a+b" needs both). Exact names win;
# fragments are tried in this order, so the specific ("Согласие на email") come before the general.
_EMAIL_BITS = "mail|элпочт|электроннаяпочт|электроннойпочт|емейл|имейл"
_CLIENT_RULES = [
    ("consent_email", "Согласие на email|Согласие на рассылку|Email consent|Consent email|Newsletter",
     "соглас+mail|соглас+почт|соглас+рассыл|consent+mail|подписк"),
    ("consent_sms", "Согласие на SMS|SMS consent|Consent SMS", "соглас+sms|соглас+смс|consent+sms"),
    ("consent_calls", "Согласие на звонки|Calls consent|Consent calls", "соглас+звон|consent+call"),
    ("passport_issued_by", "Кем выдан|Issued by", "кемвыдан|issuedby"),
    ("passport_issued_on", "Дата выдачи|Issue date|Issued on", "датавыдачи|issuedate|issuedon"),
    ("passport_division_code", "Код подразделения|Division code", "кодподразд|divisioncode"),
    ("passport_series", "Серия паспорта|Серия|Passport series", "серияпасп|паспортсерия|passportseries"),
    ("passport_number", "Номер паспорта|Паспорт|Серия и номер паспорта|Серия и номер|Passport|Passport number",
     "паспорт|passport"),
    ("birth_date", "Дата рождения|День рождения|Birth date|Birthday|Date of birth|ДР",
     "датарожд|деньрожд|birthdate|birthday|dateofbirth"),
    ("phone", "Телефон|Тел.|Моб.|Сотовый|Phone|Mobile|Tel", "телефон|phone|mobile|мобильн"),
    ("email", "E-mail|Email|Эл. почта|Электронная почта|Почта", _EMAIL_BITS),
    ("address", "Адрес|Address", "адрес|address"),
    ("tags", "Теги|Тег|Метки|Метка|Ярлыки|Tags|Tag|Labels", ""),
    ("note", "Комментарий|Примечание|Заметка|Заметки|Описание|Note|Notes|Comment|Comments",
     "коммент|примечан|comment"),
    ("product_groups", "Группы товаров|Группа товаров|Товарные группы|Товарная группа|Product groups",
     "группытовар|группатовар|товарн+групп|номенклатурн+групп|productgroup"),
    ("directions", "Направления|Направление|Directions", "направлен|direction"),
    ("full_name", ("ФИО|Клиент|Контрагент|Покупатель|Полное имя|Фамилия Имя Отчество|Наименование|Название|"
                   "Контакт|Основной контакт|Full name|Name|Client|Customer"),
     "фио|полноеимя|fullname|клиент|контрагент|покупател"),
    ("last_name", "Фамилия|Last name|Surname|Family name", "фамилия|lastname|surname"),
    ("first_name", "Имя|First name|Given name", "firstname"),
    ("middle_name", "Отчество|Middle name|Patronymic", "отчество|middlename|patronymic"),
]
_OPERATION_RULES = [
    ("client_phone", "Телефон клиента|Телефон|Тел.|Phone|Mobile|Client phone", "телефон|phone|mobile"),
    ("client_email", "Email клиента|E-mail|Email|Эл. почта|Электронная почта|Почта|Client email", _EMAIL_BITS),
    ("client_passport", "Паспорт клиента|Паспорт|Серия и номер паспорта|Passport|Client passport", "паспорт|passport"),
    ("paid_on", "Дата оплаты|Оплачено|Paid on|Paid|Payment date", "датаоплат|оплачен|paidon|paymentdate"),
    ("due_on", "Срок оплаты|Оплатить до|Due date|Due on|Due", "срок|due"),
    ("occurred_on", "Дата|Дата операции|Дата продажи|Date|Operation date", "дата|date"),
    ("amount", "Сумма|Сумма, руб.|Бюджет|Итого|Стоимость|Amount|Sum|Total", "сумм|amount|стоимост"),
    ("kind", "Тип|Вид|Вид операции|Тип операции|Kind|Type|Operation type", "видопер|типопер"),
    ("product_group", "Группа товаров|Группа товара|Товарная группа|Номенклатурная группа|Группа|Категория|"
     "Product group|Category", "группатовар|товарн+групп|номенклатурн+групп|productgroup"),
    ("direction", "Направление|Direction", "направлен|direction"),
    ("note", "Комментарий|Примечание|Note|Comment", "коммент|примечан|comment|note"),
    ("client_name", "Клиент|ФИО|Покупатель|Контрагент|Client|Customer|Name|Client name",
     "фио|клиент|покупател|контрагент|client|customer"),
]


def _key(header: str) -> str:
    """'E-mail', 'Эл. почта ', 'Сумма, руб.' -> letters and digits only, lower case, ё as е."""
    return re.sub(r"[\W_]+", "", header.casefold().replace("ё", "е"))


def _compile(rules: list[tuple[str, str, str]]) -> tuple[dict[str, str], list[tuple[str, list[list[str]]]]]:
    exact: dict[str, str] = {}
    for name, headers, _ in rules:
        for header in headers.split("|"):
            exact.setdefault(_key(header), name)
    return exact, [(name, [p.split("+") for p in bits.split("|") if p]) for name, _, bits in rules]


_RULES = {"clients": _compile(_CLIENT_RULES), "operations": _compile(_OPERATION_RULES)}


def guess_mapping(headers: list[str], kind: str) -> dict[int, str]:
    """Column index -> field. A column's first matching rule decides it; a field already taken by an
    earlier column leaves this one unmapped (so only the first of several phones is used)."""
    if kind not in _RULES:
        raise ValueError(f"Unknown import kind: {kind!r}")
    exact, fragments = _RULES[kind]
    mapping: dict[int, str] = {}
    for index, header in enumerate(headers):
        key = _key(header)
        if not key:
            continue
        name = exact.get(key) or next(
            (f for f, patterns in fragments if any(all(p in key for p in pattern) for pattern in patterns)), None)
        if name and name not in mapping.values():
            mapping[index] = name
    return mapping


# ---- value parsers -------------------------------------------------------------------------


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
        hms = found and _TIME.fullmatch(text, found.end())
        if not hms:
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


_CURRENCY = re.compile(r"₽|руб\.?|р\.|RUB|RUR|\$|€|USD|EUR|[\s\u00a0\u202f\u2009']", re.IGNORECASE)


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
        raise ValueError(f"Not a number: {(value or '').strip()[:40]}")
    amount = Decimal(digits)
    if amount >= 10 ** 12:
        raise ValueError("The amount is too large.")
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return -amount if negative else amount


_BOOLS = {**dict.fromkeys(["да", "yes", "true", "1", "+", "y", "д", "истина", "on"], True),
          **dict.fromkeys(["нет", "no", "false", "0", "-", "n", "н", "ложь", "off", ""], False)}


def parse_bool(value: str) -> bool:
    try:
        return _BOOLS[(value or "").strip().casefold()]
    except KeyError:
        raise ValueError("Expected yes or no.") from None


def formula_safe(value: str) -> str:
    """For exports: a spreadsheet would run a cell starting with these as a formula (CSV injection)."""
    return "'" + value if value and value[0] in "=+-@\t\r" else value


# ---- rows ----------------------------------------------------------------------------------


@dataclass
class RowResult:
    line: int
    values: dict[str, Any]
    errors: dict[str, str]


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


def _kind(value: str) -> str:
    try:
        return _KINDS[_words(value).casefold()]
    except KeyError:
        raise ValueError("Unknown operation type: use sale, service or return.") from None


def normalise_operation_row(raw: dict[str, str], line: int, region: str = "RU",
                            today: date | None = None) -> RowResult:
    """One operation. A negative amount without a kind is a return: 1C and CRMs export returns so."""
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
            row.errors["amount"] = "The amount must be a positive number."
            del row.values["amount"]
    if "kind" not in row.errors:
        row.values["kind"] = kind or "sale"
    row.require("occurred_on", "The operation date is required.")
    row.put("occurred_on", row.operation_date)
    row.put("due_on", row.date_rule())
    row.put("paid_on", row.date_rule("The payment date cannot be in the future."))
    if not any(k in row.raw for k in CLIENT_KEYS):
        row.errors["client"] = "Each operation needs a client: phone, email, passport or name."
    row.put("client_phone", lambda v: normalise_phone(_first(v), region))
    row.put("client_email", lambda v: normalise_email(_first(v)))
    row.put("client_passport", lambda v: _passport_digits(re.sub(r"\D", "", v)))
    for name in ("client_name", "product_group", "direction"):
        row.put(name, _words)
    row.put("note", str)
    return row.result(line)


# The messages above are shown translated (`_(message)` where they are displayed); listing them
# here puts them in the catalog.
_CATALOG = [
    lazy('The XLSX file is damaged or truncated.'),
    lazy('The file is not a text table (binary data?).'),
    lazy('The file is empty.'),
    lazy('The file mixes text encodings (part UTF-8, part Windows-1251): save it again as UTF-8.'),
    lazy('The file is larger than 100 MB.'),
    lazy('The XLSX file looks like a zip bomb: it is far too large when unpacked.'),
    lazy('Not a valid date: use DD.MM.YYYY or YYYY-MM-DD.'),
    lazy('The amount is too large.'),
    lazy('Not a valid phone number.'),
    lazy('Not a valid email address.'),
    lazy('Expected yes or no.'),
    lazy('A client needs at least a last or first name.'),
    lazy('The birth date cannot be in the future.'),
    lazy('The birth date cannot be before 1900.'),
    lazy('The passport series must be 4 digits.'),
    lazy('The passport number must be 6 digits.'),
    lazy('The division code must look like 123-456.'),
    lazy('The issue date cannot be in the future.'),
    lazy('The issue date must be after the birth date.'),
    lazy('The passport must be 10 digits (series and number).'),
    lazy('Unknown operation type: use sale, service or return.'),
    lazy('The amount is required.'),
    lazy('The amount must be a positive number.'),
    lazy('The operation date is required.'),
    lazy('The operation date %(value)s is after today (%(today)s).'),
    lazy('The payment date cannot be in the future.'),
    lazy('Each operation needs a client: phone, email, passport or name.'),
]
