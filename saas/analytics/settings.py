"""The company's analytics settings: status thresholds, horizons, the backtest, CLV and risk weights."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics.models import Setting
from saas.analytics.reliability import DEFAULT_BANDS, DEFAULT_WEIGHTS
from saas.core.errors import FormError
from saas.core.i18n import _, fmt_number

KEY = "analytics"
DEFAULTS: dict[str, Any] = {
    # Status (see status.py): active when the chance of buying within the holdout's length is at
    # least this share of a typical live client's chance; lost below the second share.
    "status_active_share": 0.5,
    "status_lost_share": 0.1,
    "holdout_weeks": 13,     # the backtest holds out the last quarter (and status looks this far ahead)
    "discount_rate": 0.10,   # CLV: annual discount rate
    "margin": 1.0,           # CLV: gross margin as a share of revenue (1 = revenue)
    "clv_months": 12,        # CLV: horizon in months
    "horizon_days": 90,      # expected purchases over this horizon
    "new_days": 90,          # a first purchase this recent with no repeat: new
    "min_repeat_buyers": 50, # fewer repeat buyers: rule-based status instead of a model
    "weights": DEFAULT_WEIGHTS,
    "bands": DEFAULT_BANDS,
}


# Keys of earlier versions, ignored when read: the P(alive) thresholds that status no longer uses.
OBSOLETE = ("active_p", "lost_p")


async def load(db: AsyncSession) -> dict[str, Any]:
    row = await db.get(Setting, KEY)
    return merged(row.value if row else None)


def merged(value: dict[str, Any] | None) -> dict[str, Any]:
    """The settings from the stored row's value (None: no row), over the defaults (live scoring
    reads the value itself, in one statement with its other reads)."""
    stored = {k: v for k, v in (value or {}).items() if k not in OBSOLETE}
    return {**DEFAULTS, **stored, "weights": reliability_weights(stored.get("weights") or {}),
            "bands": {**DEFAULT_BANDS, **stored.get("bands", {})}}


def reliability_weights(stored: dict[str, float]) -> dict[str, float]:
    """The stored weights of today's factors; weights saved for an earlier formula (other keys, or
    not summing to 100 once those are dropped) give way to the defaults."""
    weights = {**DEFAULT_WEIGHTS, **{k: v for k, v in stored.items() if k in DEFAULT_WEIGHTS}}
    return weights if abs(sum(weights.values()) - 100) < 1e-6 else dict(DEFAULT_WEIGHTS)


def check(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate a settings form (strings) into values; FormError names each bad field."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {"weights": {}, "bands": {}}

    def number(name: str, lo: float, hi: float, target: dict, key: str, cast: Callable[[str], float] = float,
               scale: float = 1) -> None:
        try:
            value = cast(str(raw.get(name, "")).replace(",", "."))
        except ValueError:
            errors[name] = _("Enter a number.")
            return
        if not lo <= value <= hi:
            errors[name] = _("Between %(lo)s and %(hi)s.", lo=lo, hi=hi)
            return
        target[key] = value * scale if scale != 1 else value

    # Shares and rates are typed as percentages and kept as fractions.
    number("status_active_share", 1, 500, out, "status_active_share", scale=0.01)
    number("status_lost_share", 0, 100, out, "status_lost_share", scale=0.01)
    number("holdout_weeks", 4, 104, out, "holdout_weeks", int)
    number("discount_rate", 0, 100, out, "discount_rate", scale=0.01)
    number("margin", 1, 100, out, "margin", scale=0.01)
    number("clv_months", 1, 120, out, "clv_months", int)
    number("horizon_days", 7, 730, out, "horizon_days", int)
    number("new_days", 7, 730, out, "new_days", int)
    number("min_repeat_buyers", 10, 100000, out, "min_repeat_buyers", int)
    for key in DEFAULT_WEIGHTS:
        number(f"w_{key}", 0, 100, out["weights"], key)
    for key in DEFAULT_BANDS:
        number(f"band_{key}", 0, 100, out["bands"], key)
    if "status_lost_share" not in errors and out.get("status_lost_share", 0) >= out.get("status_active_share", 1):
        errors["status_lost_share"] = _("The 'lost' threshold must be below the 'active' one.")
    if not any(f"w_{key}" in errors for key in DEFAULT_WEIGHTS) and abs(sum(out["weights"].values()) - 100) > 1e-6:
        errors[f"w_{next(iter(DEFAULT_WEIGHTS))}"] = _("The reliability weights must add up to 100 (now %(sum)s).",
                                                       sum=fmt_number(sum(out["weights"].values())))
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
