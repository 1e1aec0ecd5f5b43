"""Reading uploaded client/operation tables: bytes in, a header and rows of strings out.

Files come from Excel, 1C, amoCRM and Bitrix24, so the reader guesses what those programs do
(cp1251 and ';' from Russian Excel, UTF-8 with BOM from CRMs, XLSX with real dates) and refuses,
with one clear sentence, whatever would hurt the worker (zip bombs, binary data, huge cells or
rows). Pure code, no database. Messages are plain English msgids: callers translate.
"""
from __future__ import annotations

import asyncio
import codecs
import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import openpyxl

from saas.core.i18n import lazy

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


# ---- surveying a file: its shape, size and first rows, before anything is mapped --------------

SAMPLE_ROWS = 10  # the dry run's rows
SAMPLE_CHARS = 500_000  # ... unless their cells are huge: the sample is stored beside the file


@dataclass
class Survey:
    """What one pass over a whole file tells before anything is imported: the table's shape, how
    many rows it has, and its first rows ({"line", "cells"}) for the mapping screen's dry run."""

    table: Table
    total: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    def walk(self, every: int = 10_000) -> Iterator[int]:
        """Read every row once (a bad row deep in the file raises ImportFileError here), counting
        them and keeping the first few; yields the count every `every` rows, for progress."""
        size = 0
        for row in self.table.rows:
            self.total += 1
            if len(self.sample) < SAMPLE_ROWS and size < SAMPLE_CHARS:
                size += sum(len(c) for c in row)
                self.sample.append({"line": getattr(row, "line", self.total + 1), "cells": list(row)})
            if self.total % every == 0:
                yield self.total


def survey(data: bytes, filename: str = "") -> Survey:
    found = Survey(read_table(data, filename))
    for _count in found.walk():
        pass
    return found


# Parsing is CPU work of seconds (a 100k-row XLSX: about 11 s). A web process that must answer an
# upload with the survey (the API) does it in these threads, two files at a time, so its event loop
# keeps serving everyone else meanwhile; pages hand it to a worker instead (`imports/jobs.py`).
_READERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="import-survey")


async def survey_in_thread(data: bytes, filename: str = "") -> Survey:
    return await asyncio.get_running_loop().run_in_executor(_READERS, survey, data, filename)


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


# The messages above are shown translated (`_(message)` where they are displayed); listing them
# here puts them in the catalog.
_CATALOG = [
    lazy('The XLSX file is damaged or truncated.'),
    lazy('The file is not a text table (binary data?).'),
    lazy('The file is empty.'),
    lazy('The file mixes text encodings (part UTF-8, part Windows-1251): save it again as UTF-8.'),
    lazy('The file is larger than 100 MB.'),
    lazy('The XLSX file looks like a zip bomb: it is far too large when unpacked.'),
]
