"""The forked reader gives exactly the rows the inline reader gives, and hands errors back."""
from __future__ import annotations

import asyncio

import pytest

from saas.clients.imports import rows as import_rows
from saas.clients.models import Import


def _import(rows: int) -> Import:
    lines = ["ФИО;Телефон;Email;Дата рождения"]
    for i in range(rows):
        phone = "not a phone" if i % 7 == 0 else f"8 (916) {i:07d}"[:18]
        lines.append(f"Иванов Иван {i};{phone};user{i}@mail.ru;0{i % 9 + 1}.02.1980")
    return Import(kind="clients", filename="c.csv", payload="\n".join(lines).encode("cp1251"),
                  mapping={"0": "full_name", "1": "phone", "2": "email", "3": "birth_date"}, total_rows=rows)


async def _collect(imp: Import) -> list:
    return [(r.line, r.values, r.errors, raw)
            async for batch in import_rows.batches(imp, None, 100) for r, raw in batch]


def test_child_process_reader_matches_the_inline_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    imp = _import(1234)
    inline = [(r.line, r.values, r.errors, raw) for r, raw in import_rows.mapped_rows(imp)]
    monkeypatch.setattr(import_rows, "INLINE_BELOW", 0)
    forked = asyncio.run(_collect(imp))
    assert forked == inline and len(forked) == 1234
    assert sum(1 for _l, _v, errors, _r in forked if errors) == len(range(0, 1234, 7))


def test_an_error_in_the_child_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    imp = _import(10)
    imp.payload = b"PK\x03\x04 truncated"
    imp.filename = "broken.xlsx"
    monkeypatch.setattr(import_rows, "INLINE_BELOW", 0)
    with pytest.raises(ValueError, match="damaged or truncated"):
        asyncio.run(_collect(imp))


def test_a_future_operation_date_comes_back_from_the_child_with_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The forked reader pickles each row's errors: the future-date message must keep its msgid and
    values, so the worker can translate it whole into the company's language."""
    from datetime import timedelta

    from saas.clients.rules import FUTURE_OPERATION
    from saas.core.values import Message
    from saas.core import clock

    future = (clock.today() + timedelta(days=400)).strftime("%d.%m.%Y")
    payload = f"Телефон;Дата;Сумма\n+79161234567;01.02.2024;100\n+79161234567;{future};100\n".encode()
    imp = Import(kind="operations", filename="o.csv", payload=payload,
                 mapping={"0": "client_phone", "1": "occurred_on", "2": "amount"}, total_rows=2)
    monkeypatch.setattr(import_rows, "INLINE_BELOW", 0)
    rows = asyncio.run(_collect(imp))
    assert [errors for _l, _v, errors, _r in rows][0] == {}
    error = rows[1][2]["occurred_on"]
    assert isinstance(error, Message) and error.msgid == FUTURE_OPERATION
    assert error.params == {"value": future, "today": clock.today().isoformat()}
