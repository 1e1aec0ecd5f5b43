"""A card's operation rows drawn in Python (saas/clients/card_rows.py): the payment state, names and
actions as the template drew them, every value escaped."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from saas.clients.card_rows import operation_row_renderer
from saas.core.i18n import set_locale

TODAY = date(2026, 12, 4)


def _op(**extra: object) -> SimpleNamespace:
    base = {"id": 5, "kind": "sale", "occurred_on": date(2026, 11, 1), "amount": Decimal("1500"), "product_group_id": 1,
            "direction_id": 9, "due_on": None, "paid_on": None, "note": "<b>note</b>"}
    return SimpleNamespace(**{**base, **extra})


def _row(op: SimpleNamespace, can_edit: bool = True, locale: str = "en") -> str:
    set_locale(locale)
    row = operation_row_renderer([SimpleNamespace(id=1, name="Tea & co")], [SimpleNamespace(id=2, name="Retail")],
                                 currency="RUB", today=TODAY, can_edit=can_edit,
                                 ops_url="/t/acme/clients/7/operations/",
                                 csrf_input='<input type="hidden" name="_csrf_token" value="tok" />')
    return str(row(op))


def test_payment_states_names_and_escaping() -> None:
    unpaid = _row(_op())
    assert '<span class="badge badge-warn">unpaid</span>' in unpaid and "&lt;b&gt;note&lt;/b&gt;" in unpaid
    assert "<span>Tea &amp; co</span>" in unpaid and "Retail" not in unpaid  # direction 9 is not active
    overdue = _row(_op(due_on=date(2026, 12, 1)))
    assert '<span class="badge badge-bad">overdue</span>' in overdue and ">due <span" in overdue
    paid = _row(_op(due_on=date(2026, 12, 1), paid_on=date(2026, 12, 2)))
    assert "paid <span" in paid and "badge-bad" not in paid and ">due <span" not in paid
    refund = _row(_op(kind="return", amount=Decimal("200")))
    assert '<tr class="op-return">' in refund and "−" in refund and "badge" not in refund


def test_actions_only_for_editors_and_in_russian() -> None:
    row = _row(_op())
    assert 'href="/t/acme/clients/7/operations/5/edit"' in row
    assert 'action="/t/acme/clients/7/operations/5/delete"' in row
    assert 'name="_csrf_token" value="tok"' in row
    assert "operations/5/edit" not in _row(_op(), can_edit=False)
    russian = _row(_op(), locale="ru")
    assert "Продажа" in russian and "1\xa0500,00\xa0₽" in russian and 'data-label="Дата"' in russian
