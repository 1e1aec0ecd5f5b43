"""An import's rows, read and normalised: inline for small files, else in a forked child process
that keeps a batch ahead of the database writes.

Parsing and checking a row (names, phone, e-mail, dates) costs about as much as writing it, so on
two cores the two halves overlap. The child only sees bytes and plain values it was forked with;
it never touches the parent's connections, and dies with a broken pipe if the parent does.
"""
from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from saas.clients import crypto
from saas.clients.imports.reader import read_table
from saas.clients.models import Import
from saas.clients.rules import RowResult, normalise_client_row, normalise_operation_row
from saas.core.errors import FormError

INLINE_BELOW = 5000  # rows: below this a process costs more than it saves
MATCH_KEYS = ("phone", "email", "passport")


def mapped_rows(imp: Import, limit: int | None = None, fields: list | None = None) -> Iterator[tuple[RowResult, dict]]:
    """(RowResult, raw) per row; custom fields (mapped as custom:<key>) go to values["custom"]."""
    return _rows(imp.payload, imp.filename, dict(imp.mapping), imp.kind, fields, limit)


def sample_rows(imp: Import, fields: list | None = None) -> Iterator[tuple[RowResult, dict]]:
    """The dry run: the first rows the worker kept when it read the file (`Import.sample`), put
    through the current mapping. No page reads the file itself."""
    columns = {int(k): v for k, v in (imp.mapping or {}).items() if v}
    for row in imp.sample or ():
        cells = row["cells"]
        raw = {field: cells[i] if i < len(cells) else "" for i, field in columns.items()}
        yield normalise_raw(raw, row["line"], imp.kind, fields), raw


def _rows(payload: bytes, filename: str, mapping: dict[str, str], kind: str, fields: list | None,
          limit: int | None) -> Iterator[tuple[RowResult, dict]]:
    table = read_table(payload, filename)
    columns = {int(k): v for k, v in mapping.items() if v}
    for n, cells in enumerate(table.rows):
        if limit is not None and n >= limit:
            return
        raw = {field: cells[i] if i < len(cells) else "" for i, field in columns.items()}
        yield normalise_raw(raw, getattr(cells, "line", n + 2), kind, fields), raw


def normalise_raw(raw: dict[str, str], line: int, kind: str, fields: list | None) -> RowResult:
    """One row's mapped cells (field name -> text) through the rules of its kind."""
    from saas.clients.custom import check_values

    normalise = normalise_client_row if kind == "clients" else normalise_operation_row
    result = normalise({k: v for k, v in raw.items() if not k.startswith("custom:")}, line=line)
    custom_raw = {k[7:]: v for k, v in raw.items() if k.startswith("custom:") and str(v).strip()}
    if custom_raw and fields is not None:
        try:
            result.values["custom"] = check_values(fields, custom_raw, partial=True)
        except FormError as exc:
            result.errors.update(exc.errors)
    return result


def client_keys(values: dict[str, Any], match_by: list[str], company: str) -> list[tuple[str, str]]:
    """A normalised client row's matching keys: (kind, value), the passport as its blind index
    (the company's own: `company`, the bound schema).
    The row import and the set-based one (`bulk.py`) match by these."""
    keys = []
    if "phone" in match_by and values.get("phone"):
        keys.append(("phone", values["phone"]))
    if "email" in match_by and values.get("email"):
        keys.append(("email", values["email"]))
    if "passport" in match_by and values.get("passport_number"):
        digits = crypto.passport_digits(values.get("passport_series"), values.get("passport_number"))
        keys.append(("passport", crypto.blind_index(digits, company=company)))
    return keys


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list]:
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _produce(sender: Any, produce: Callable[..., Iterator[Any]], args: tuple) -> None:
    """The child: items down the pipe, then None; an error goes down the pipe as itself."""
    try:
        for item in produce(*args):
            sender.send(item)
        sender.send(None)
    except BrokenPipeError:  # the parent is gone: nothing to report to
        pass
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        sender.send(exc if _picklable(exc) else RuntimeError(str(exc)))


def _picklable(exc: Exception) -> bool:
    import pickle

    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001
        return False
    return True


def _row_batches(payload: bytes, filename: str, mapping: dict[str, str], kind: str, fields: list | None,
                 size: int) -> Iterator[list[tuple[RowResult, dict]]]:
    return _chunks(_rows(payload, filename, mapping, kind, fields, None), size)


async def batches(imp: Import, fields: list | None, size: int) -> AsyncIterator[list[tuple[RowResult, dict]]]:
    args = (imp.payload, imp.filename, dict(imp.mapping), imp.kind, fields, size)
    if (imp.total_rows or 0) < INLINE_BELOW:
        for batch in _row_batches(*args):
            yield batch
        return
    async for batch in forked(_row_batches, args):
        yield batch


async def forked(produce: Callable[..., Iterator[Any]], args: tuple) -> AsyncIterator[Any]:
    """What `produce(*args)` yields, computed in a forked child while the caller awaits the database."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_produce, args=(sender, produce, args), daemon=True, name="import-rows")
    child.start()
    sender.close()
    try:
        while (item := await asyncio.to_thread(receiver.recv)) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        receiver.close()
        child.join(timeout=1)
        if child.is_alive():
            child.kill()
            child.join()
