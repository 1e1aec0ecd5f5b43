"""The client list's rows drawn in Python (saas/clients/list_rows.py): every value escaped, every
cell labelled for the phone layout, the words in the reader's language."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from saas.clients import columns
from saas.clients.contacts import display_phone
from saas.clients.list_rows import render_rows
from saas.core.i18n import set_locale

LABELS = {"status": {"active": "Active", "lost": "Lost"}, "risk": {"risk": "Risk group"},
          "segment": {"champions": "Champions"}}


def _row(**extra: object) -> SimpleNamespace:
    base = SimpleNamespace(
        id=7, last_name="<script>alert(1)</script>", first_name="Анна", middle_name="", archived_at=None,
        phone="+79161234567", email="a&b@example.com", last_operation_on=date(2026, 3, 1), operations_count=3,
        revenue_total=Decimal("-1500.50"), unpaid_total=Decimal("200"), tags=["a<b", "vip", "x", "dropped"],
        custom={"size": True, "colors": ["red", "<b>"], "budget": "12.5"})
    return SimpleNamespace(**{**vars(base), **extra})


def _columns(keys: list[str]) -> list[columns.Column]:
    fields = [SimpleNamespace(key="size", type="bool", label_en="Size", label_ru="Размер", in_list=False),
              SimpleNamespace(key="colors", type="multi", label_en="Colours", label_ru="Цвета", in_list=False),
              SimpleNamespace(key="budget", type="money", label_en="Budget", label_ru="Бюджет", in_list=False)]
    return [c for c in columns.catalogue(fields, lambda fd: fd.label_en) if c.key in keys]


def _render(rows: list, scores: dict, overdue: dict, keys: list[str], locale: str = "en") -> str:
    set_locale(locale)
    return str(render_rows(rows, scores, overdue, _columns(keys), base="/t/acme", currency="RUB", labels=LABELS,
                           reason=lambda score, currency: f"late <{score.risk_group}>", phone=display_phone))


def test_every_value_is_escaped_and_every_cell_labelled() -> None:
    html = _render([_row()], {}, {}, ["name", "status", "phone", "email", "tags", "cf_colors"])
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Анна" in html
    assert 'href="/t/acme/clients/7"' in html and 'name="ids" value="7"' in html
    assert "a&amp;b@example.com" in html and "+7 916 123-45-67" in html
    assert html.count('<span class="badge">') == 3 and "a&lt;b" in html and "dropped" not in html  # first three tags
    assert "red, &lt;b&gt;" in html
    assert 'data-label="Phone"' in html and 'data-label="Email"' in html and 'data-label="Colours"' in html
    assert '<td class="col-status" data-label="Status"><span class="muted">—</span></td>' in html  # no score yet


def test_scores_debts_and_money_in_the_readers_language() -> None:
    score = SimpleNamespace(status="active", risk_group="risk", p_alive=0.456, clv=Decimal("12000"),
                            segment="champions")
    keys = ["name", "status", "revenue", "unpaid", "p_alive", "clv", "segment", "cf_size", "cf_budget", "last_purchase"]
    html = _render([_row(), _row(id=8, unpaid_total=Decimal("0"), archived_at=date(2026, 1, 1))], {7: score},
                   {7: Decimal("150")}, keys, "ru")
    assert '<span class="badge status-active">Active</span>' in html
    assert 'title="late &lt;risk&gt;">Risk group</span>' in html  # the reason, escaped, as the badge's title
    assert "-1\xa0500,50\xa0₽" in html and "200,00\xa0₽" in html  # Russian money: non-breaking spaces, comma
    assert ">просрочено 150,00\xa0₽</span>" in html
    assert ">46%<" in html and "12\xa0000,00\xa0₽" in html and ">Champions<" in html
    assert ">да<" in html and "12,50\xa0₽" in html and "1 мар. 2026\u202fг." in html
    assert '<td class="num col-debt" data-label="Неоплачено">—</td>' in html  # client 8 owes nothing
    assert html.count('<span class="badge">в архиве</span>') == 1
