"""Targets without queries: criteria as JSON, validated field by field, turned into SQL.

Format (documented in the OpenAPI document too):
    {"any": [group, group, ...]}   groups combine with OR; an empty list or {} means everyone
    group = {condition: value, ...} conditions combine with AND; a bare group is accepted too
Conditions:
    product_groups, directions: [ids]           the client is interested in any of them
    status: ["new"|"active"|"at_risk"|"lost"]   segments: [RFM segment names]
    p_alive_min, p_alive_max: 0..1              last_op_from, last_op_to: "YYYY-MM-DD"
    no_purchase_days: N                          revenue_min, revenue_max: amount
    deals_min, deals_max: N                      tags: [tags] (any of them)
    birthday_from, birthday_to: "MM-DD"          (wraps over the new year when from > to)
    risk_include, risk_exclude: ["reliable"|"watch"|"risk"|"unknown"]  (unknown: not enough payment history)
    custom: {"<field key>": value}              equals (for several choices: includes) the value
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, false, func, or_, true

from saas.clients.models import ClientScore
from saas.analytics.rfm import NO_PURCHASES, SEGMENTS
from saas.clients.models import RISK_GROUPS, STATUSES, Client
from saas.core.errors import FormError
from saas.core.i18n import _

RISKS = RISK_GROUPS
SEGMENT_NAMES = (*SEGMENTS, NO_PURCHASES)
LIST_KEYS = {"product_groups", "directions", "status", "segments", "tags", "risk_include", "risk_exclude"}
KNOWN = LIST_KEYS | {"p_alive_min", "p_alive_max", "last_op_from", "last_op_to", "no_purchase_days",
                     "revenue_min", "revenue_max", "deals_min", "deals_max", "birthday_from", "birthday_to",
                     "custom"}
MAX_GROUPS = 10
# Bounds that keep every number inside what Python dates and PostgreSQL columns hold (a client's
# totals are NUMERIC(18, 2), counts INTEGER): beyond them a filter is a typo, and used to be a 500.
MAX_AMOUNT = Decimal("1e15")
MAX_COUNT = 1_000_000_000
MAX_DAYS = 36_500  # a hundred years
MAX_ID = 2**63 - 1  # BIGINT


def groups_of(criteria: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not criteria:
        return []
    if "any" in criteria:
        return list(criteria.get("any") or [])
    return [criteria]


def check(criteria: Any) -> dict[str, Any]:
    """Validate and normalise; FormError keys name the field as `any.<group>.<condition>`."""
    if criteria in (None, {}, []):
        return {"any": []}
    if not isinstance(criteria, dict):
        raise FormError({"criteria": _("Criteria must be an object.")})
    groups = groups_of(criteria)
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise FormError({"criteria": _("At most %(n)s groups.", n=MAX_GROUPS)})
    errors: dict[str, str] = {}
    clean_groups = []
    for gi, group in enumerate(groups):
        if not isinstance(group, dict):
            errors[f"any.{gi}"] = _("A group must be an object of conditions.")
            continue
        clean: dict[str, Any] = {}
        for key, value in group.items():
            field = f"any.{gi}.{key}"
            if value in (None, "", []):
                continue
            if key not in KNOWN:
                errors[field] = _("Unknown condition.")
                continue
            try:
                clean[key] = _value(key, value)
            except ValueError as exc:
                errors[field] = str(exc)
        for lo, hi in (("p_alive_min", "p_alive_max"), ("revenue_min", "revenue_max"), ("deals_min", "deals_max"),
                       ("last_op_from", "last_op_to")):
            if lo in clean and hi in clean and clean[lo] > clean[hi]:
                errors[f"any.{gi}.{lo}"] = _("The minimum is above the maximum.") if "op" not in lo \
                    else _("The range ends before it starts.")
        if set(clean.get("risk_include", [])) & set(clean.get("risk_exclude", [])):
            errors[f"any.{gi}.risk_exclude"] = _("A group cannot be both included and excluded.")
        clean_groups.append(clean)
    if errors:
        raise FormError(errors)
    return {"any": [g for g in clean_groups if g] if any(clean_groups) else []}


def _value(key: str, value: Any) -> Any:
    if key in LIST_KEYS:
        items = value if isinstance(value, list) else [value]
        if key in ("product_groups", "directions"):
            try:
                ids = [int(v) for v in items]
            except (TypeError, ValueError):
                raise ValueError(_("Use ids from the list.")) from None
            if not all(0 < i <= MAX_ID for i in ids):
                raise ValueError(_("Use ids from the list."))
            return ids
        allowed = {"status": STATUSES, "segments": SEGMENT_NAMES, "risk_include": RISKS,
                   "risk_exclude": RISKS}.get(key)
        items = [str(v).strip() for v in items if str(v).strip()]
        if allowed and any(v not in allowed for v in items):
            bad = next(v for v in items if v not in allowed)
            raise ValueError(_("Unknown value: %(v)s", v=bad))
        return items
    if key in ("p_alive_min", "p_alive_max"):
        number = _number(value)
        if not 0 <= number <= 1:
            raise ValueError(_("Between 0 and 1."))
        return float(number)
    if key in ("revenue_min", "revenue_max"):
        number = _number(value)
        if abs(number) > MAX_AMOUNT:
            raise ValueError(_("Between -%(max)s and %(max)s.", max=f"{MAX_AMOUNT:,.0f}".replace(",", " ")))
        return float(number)
    if key in ("deals_min", "deals_max", "no_purchase_days"):
        number = _number(value)
        top = MAX_DAYS if key == "no_purchase_days" else MAX_COUNT
        if number < 0 or number != int(number) or number > top:
            raise ValueError(_("A whole number from 0 to %(max)s.", max=f"{top:,}".replace(",", " ")))
        return int(number)
    if key in ("last_op_from", "last_op_to"):
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError(_("A date as YYYY-MM-DD.")) from None
    if key == "custom":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(_("Give {\"field key\": value}."))
        return {k: v for k, v in value.items() if v not in (None, "", [])}
    if key in ("birthday_from", "birthday_to"):
        text = str(value).strip()
        try:
            date.fromisoformat(f"2000-{text}")
        except ValueError:
            raise ValueError(_("No such day of the year: %(value)s (month and day, as MM-DD).",
                               value=text[:10])) from None
        return text
    raise ValueError(_("Unknown condition."))


def _number(value: Any) -> Decimal:
    """A finite number (NaN and infinities are refused here; sizes by the caller's bounds)."""
    try:
        number = Decimal(str(value).replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        raise ValueError(_("Not a number: %(value)s", value=str(value)[:30])) from None
    if not number.is_finite() or abs(number.adjusted()) > 30:  # 1e999999 would take ages to compare
        raise ValueError(_("Not a number in range: %(value)s", value=str(value)[:30]))
    return number


def group_condition(g: dict[str, Any], today: date) -> Any:
    c, s = Client, ClientScore
    conds = []
    if g.get("product_groups"):
        conds.append(c.product_group_ids.overlap(g["product_groups"]))
    if g.get("directions"):
        conds.append(c.direction_ids.overlap(g["directions"]))
    if g.get("tags"):
        conds.append(c.tags.overlap(g["tags"]))
    if g.get("status"):
        conds.append(s.status.in_(g["status"]))
    if g.get("segments"):
        conds.append(s.segment.in_(g["segments"]))
    if "p_alive_min" in g:
        conds.append(s.p_alive >= g["p_alive_min"])
    if "p_alive_max" in g:
        conds.append(s.p_alive <= g["p_alive_max"])
    if "last_op_from" in g:
        conds.append(c.last_operation_on >= date.fromisoformat(g["last_op_from"]))
    if "last_op_to" in g:
        conds.append(c.last_operation_on <= date.fromisoformat(g["last_op_to"]))
    if "no_purchase_days" in g:
        conds.append(or_(c.last_operation_on.is_(None),
                         c.last_operation_on < today - timedelta(days=g["no_purchase_days"])))
    if "revenue_min" in g:
        conds.append(c.revenue_total >= g["revenue_min"])
    if "revenue_max" in g:
        conds.append(c.revenue_total <= g["revenue_max"])
    if "deals_min" in g:
        conds.append(c.operations_count >= g["deals_min"])
    if "deals_max" in g:
        conds.append(c.operations_count <= g["deals_max"])
    if "birthday_from" in g or "birthday_to" in g:
        day = func.to_char(c.birth_date, "MM-DD")
        lo, hi = g.get("birthday_from", "01-01"), g.get("birthday_to", "12-31")
        conds.append(and_(day >= lo, day <= hi) if lo <= hi else or_(day >= lo, day <= hi))
    if g.get("risk_include"):
        conds.append(s.risk_group.in_(g["risk_include"]))
    for key, value in (g.get("custom") or {}).items():
        conds.append(c.custom.contains({key: value}) | c.custom.contains({key: [value]}))
    if g.get("risk_exclude"):
        conds.append(or_(s.risk_group.is_(None), s.risk_group.not_in(g["risk_exclude"])))
    return and_(*conds) if conds else true()


def condition(criteria: dict[str, Any], today: date) -> Any:
    groups = groups_of(criteria)
    if not groups:
        return true()
    return or_(*[group_condition(g, today) for g in groups]) if groups else false()
