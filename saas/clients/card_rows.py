"""A card's operation rows as HTML, drawn in Python.

Why not the template: a card may list 500 operations, and Jinja spent ~65 µs on each row's dozen
values (most of a busy client's card); here a row is one f-string with its values escaped, and the
words, names and URLs are looked up once per card. templates/clients/_operations.html keeps the
table, the row being edited and the empty state, and calls `row(op)` for the others.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from markupsafe import Markup, escape

from saas.core.i18n import _, fmt_date, fmt_money


def operation_row_renderer(product_groups: list[Any], directions: list[Any], *, currency: str, today: date,
                           can_edit: bool, ops_url: str, csrf_input: str) -> Callable[[Any], Markup]:
    """The function that draws one operation's row (`ops_url`: the card's operations URL ending in
    "/"; `csrf_input`: the hidden CSRF field of the row's delete form)."""
    t = {k: str(escape(v)) for k, v in {
        "date": _("Date"), "kind": _("Kind"), "amount": _("Amount"), "payment": _("Payment"), "note": _("Note"),
        "interest": f"{_('Product group')} · {_('Direction')}", "sale": _("Sale"), "service": _("Service"),
        "return": _("Return"), "paid": _("paid"), "overdue": _("overdue"), "unpaid": _("unpaid"), "due": _("due"),
        "edit": _("Edit"), "delete": _("Delete"), "confirm": _("Delete this operation?")}.items()}
    groups = {g.id: f"<span>{escape(g.name)}</span>" for g in product_groups}
    dirs = {d.id: f'<span class="muted">{escape(d.name)}</span>' for d in directions}
    ops_url = str(escape(ops_url))

    def row(op: Any) -> Markup:
        kind = op.kind
        sign = "−" if kind == "return" else ""
        if op.paid_on:
            payment = f'{t["paid"]} <span class="nowrap">{escape(fmt_date(op.paid_on))}</span>'
        elif kind != "return" and op.due_on and op.due_on < today:
            payment = f'<span class="badge badge-bad">{t["overdue"]}</span>'
        elif kind != "return":
            payment = f'<span class="badge badge-warn">{t["unpaid"]}</span>'
        else:
            payment = ""
        if op.due_on and not op.paid_on:
            due = escape(fmt_date(op.due_on))
            payment += f' <span class="small muted">{t["due"]} <span class="nowrap">{due}</span></span>'
        actions = ""
        if can_edit:
            url = f"{ops_url}{op.id}"
            actions = (
                f'<div class="op-actions">\n          <a class="btn btn-small" href="{url}/edit" hx-get="{url}/edit" '
                f'hx-target="#operations" hx-swap="outerHTML">{t["edit"]}</a>\n          <form method="post" '
                f'action="{url}/delete" class="inline"\n                hx-post="{url}/delete" hx-target="#operations" '
                f'hx-swap="outerHTML">{csrf_input}\n            <button class="btn btn-small btn-danger" '
                f'data-confirm="{t["confirm"]}">{t["delete"]}</button></form>\n        </div>')
        return Markup(  # noqa: S704 - every value went through escape(); csrf_input is Litestar's markup
            f'<tr class="op-{escape(kind)}">\n'
            f'        <td class="nowrap" data-label="{t["date"]}">{escape(fmt_date(op.occurred_on))}</td>\n'
            f'        <td data-label="{t["kind"]}">{t.get(kind, "")}</td>\n'
            f'        <td class="num" data-label="{t["amount"]}">{sign}{escape(fmt_money(op.amount, currency))}</td>\n'
            f'        <td class="op-interest" data-label="{t["interest"]}">{groups.get(op.product_group_id, "")}'
            f'{dirs.get(op.direction_id, "")}</td>\n'
            f'        <td class="op-payment" data-label="{t["payment"]}">{payment}</td>\n'
            f'        <td class="op-note" data-label="{t["note"]}">{escape(op.note or "")}</td>\n'
            f'        <td class="row-actions">{actions}</td>\n      </tr>')
    return row
