"""Which columns the client list shows.

The user ticks them in the list's "Columns" chooser (a GET form, so it works without JS too). The
choice travels as `columns=phone,revenue,...` in the query string, is stored with a saved view (in
its `params`, like any filter), and is remembered per company in a cookie (COOKIE) for the next
bare visit. Name, status and debt are always shown. The page's query reads only the columns shown
(queries.list_columns_for).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from saas.core.i18n import _

COOKIE = "list_columns"
COOKIE_MAX_AGE = 365 * 24 * 3600
ALWAYS = ("name", "status", "unpaid")
# The table's order; custom fields ("cf_<key>") come after `unpaid`, as before.
BEFORE_CUSTOM = ("name", "status", "phone", "email", "last_purchase", "deals", "revenue", "unpaid")
AFTER_CUSTOM = ("p_alive", "clv", "segment", "tags")
# What a new user sees: fits a 1366 px window (checked by e2e/test_layout_lists.py).
DEFAULT = ("phone", "email", "last_purchase", "deals", "revenue", "tags")
NUMERIC = {"deals", "revenue", "unpaid", "p_alive", "clv"}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = False
    always: bool = False
    field: Any = None  # the custom field definition of a "cf_" column


def catalogue(fields: list[Any], field_label: Any) -> list[Column]:
    """Every column the list can show, in table order, labelled in the reader's language."""
    labels = {"name": _("Client"), "status": _("Status"), "phone": _("Phone"), "email": _("Email"),
              "last_purchase": _("Last purchase"), "deals": _("Deals"), "revenue": _("Revenue"),
              "unpaid": _("Unpaid"), "p_alive": _("P(alive)"), "clv": _("CLV, 12 mo"), "segment": _("Segment"),
              "tags": _("Tags")}
    out = [Column(k, labels[k], k in NUMERIC, k in ALWAYS) for k in BEFORE_CUSTOM]
    out += [Column(f"cf_{fd.key}", field_label(fd), fd.type in ("number", "money"), field=fd) for fd in fields]
    out += [Column(k, labels[k], k in NUMERIC) for k in AFTER_CUSTOM]
    return out


def default_keys(fields: list[Any]) -> set[str]:
    return {*ALWAYS, *DEFAULT, *(f"cf_{fd.key}" for fd in fields if fd.in_list)}


def parse(raw: str | None, known: set[str]) -> set[str] | None:
    """A list of keys from the URL, a saved view or the cookie (separated by commas, or dots in the
    cookie): the known keys in it, always-shown ones added; None when nothing usable was given.
    Unknown keys (a field archived since) are dropped."""
    keys = set(re.split(r"[,.\s]+", str(raw or ""))) & known
    return keys | set(ALWAYS) if keys else None


def encode(keys: set[str], all_columns: list[Column], sep: str = ",") -> str:
    """The canonical form, in table order, always-shown keys included (so it is never empty)."""
    return sep.join(c.key for c in all_columns if c.key in keys)


def choose(query: dict[str, Any], ticked: list[str] | None, cookie: str | None,
           all_columns: list[Column], fields: list[Any]) -> tuple[set[str], bool]:
    """The keys to show and whether they came from an explicit choice (to be remembered): the
    chooser's ticks (`col`, with its empty marker) first, then `columns=` (a link, a saved view),
    then the cookie, then the default."""
    known = {c.key for c in all_columns}
    if ticked is not None:  # the chooser always sends its empty marker: none ticked is a choice too
        return parse(",".join(ticked), known) or set(ALWAYS), True
    for raw in (query.get("columns"), cookie):
        keys = parse(raw, known)
        if keys is not None:
            return keys, False
    return default_keys(fields) & known | set(ALWAYS), False
