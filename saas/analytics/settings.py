"""The company's analytics settings: status thresholds, horizon and risk weights."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics.models import Setting
from saas.analytics.reliability import DEFAULT_BANDS, DEFAULT_WEIGHTS
from saas.tenants.service import FormError
from saas.web.i18n import _

KEY = "analytics"
DEFAULTS: dict[str, Any] = {
    "active_p": 0.6,         # P(alive) at or above: active
    "lost_p": 0.3,           # below: lost; in between: at risk
    "horizon_days": 90,      # expected purchases over this horizon
    "new_days": 90,          # a first purchase this recent with no repeat: new
    "min_repeat_buyers": 50, # fewer repeat buyers: rule-based status instead of a model
    "weights": DEFAULT_WEIGHTS,
    "bands": DEFAULT_BANDS,
}


async def load(db: AsyncSession) -> dict[str, Any]:
    row = await db.get(Setting, KEY)
    stored = row.value if row else {}
    return {**DEFAULTS, **stored, "weights": {**DEFAULT_WEIGHTS, **stored.get("weights", {})},
            "bands": {**DEFAULT_BANDS, **stored.get("bands", {})}}


def check(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate a settings form (strings) into values; FormError names each bad field."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {"weights": {}, "bands": {}}

    def number(name: str, lo: float, hi: float, target: dict, key: str, cast=float) -> None:  # noqa: ANN001
        try:
            value = cast(str(raw.get(name, "")).replace(",", "."))
        except ValueError:
            errors[name] = _("Enter a number.")
            return
        if not lo <= value <= hi:
            errors[name] = _("Between %(lo)s and %(hi)s.", lo=lo, hi=hi)
            return
        target[key] = value

    for key in ("active_p", "lost_p"):
        number(key, 0.0, 1.0, out, key)
    number("horizon_days", 7, 730, out, "horizon_days", int)
    number("new_days", 7, 730, out, "new_days", int)
    number("min_repeat_buyers", 10, 100000, out, "min_repeat_buyers", int)
    for key in DEFAULT_WEIGHTS:
        number(f"w_{key}", 0, 100, out["weights"], key)
    for key in DEFAULT_BANDS:
        number(f"band_{key}", 0, 100, out["bands"], key)
    if not errors and out["lost_p"] >= out["active_p"]:
        errors["lost_p"] = _("The 'lost' threshold must be below the 'active' one.")
    if not errors and out["bands"]["watch"] >= out["bands"]["reliable"]:
        errors["band_watch"] = _("The 'watch' band must start below 'reliable'.")
    if errors:
        raise FormError(errors)
    return out


async def save(db: AsyncSession, values: dict[str, Any]) -> None:
    row = await db.get(Setting, KEY)
    if row is None:
        db.add(Setting(key=KEY, value=values))
    else:
        row.value = values
