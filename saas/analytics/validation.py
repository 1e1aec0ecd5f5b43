"""The evidence behind the answers, in words and charts: the "How good are these answers" page,
the dashboard's status lines and the card's. Reads what the last refresh stored
(settings["backtest"], settings["scoring"]); computes nothing heavy.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from markupsafe import Markup

from saas.analytics import btyd, charts, evidence, selection
from saas.analytics.present import fit_reason, scientific
from saas.core.i18n import _, fmt_date, fmt_number, fmt_percent, lazy, ngettext_

STATUS_ORDER = ("active", "at_risk", "lost", "new")
STATUS_NAMES = {"new": lazy("new"), "active": lazy("active"), "at_risk": lazy("at risk"), "lost": lazy("lost")}
WHY = {"holdout": lazy("it predicted the held-out weeks best (lowest holdout error)"),
       "bic": lazy("the held-out weeks had too few purchases to compare, so the lowest BIC decided"),
       "only": lazy("it was the only model that fitted usably")}
PARAM_NAMES = {"r": "r", "alpha": "α", "s": "s", "beta": "β", "a": "a", "b": "b", "p": "p", "q": "q",
               "gamma": "γ"}


def model_name(method: str | None) -> str:
    if not method or method == "rules":
        return _("rules")
    return selection.MODEL_NAMES.get(method, method)


def weeks(value: Any) -> int:
    return round(float(value or 0))


def status_lines(backtest: dict[str, Any] | None) -> dict[str, str]:
    """Per status, what it has meant in numbers: "Of the clients marked at risk on 31 Mar 2026, 18%
    bought again within 13 weeks." Empty before a backtest."""
    if not backtest or not backtest.get("status"):
        return {}
    cutoff = fmt_date(date.fromisoformat(backtest["cutoff"]))
    out = {}
    for key, row in backtest["status"].items():
        if row.get("clients"):
            out[key] = ngettext_(  # "Из 21 клиента", "Из 22 клиентов"
                "Of the %(num)s client marked “%(status)s” on %(date)s, %(share)s bought again within %(weeks)s weeks.",
                "Of the %(num)s clients marked “%(status)s” on %(date)s, %(share)s bought again within "
                "%(weeks)s weeks.",
                int(row["clients"]), num=fmt_number(row["clients"]), status=_(STATUS_NAMES.get(key, key)),
                date=cutoff, share=fmt_percent(row["bought_again"]), weeks=weeks(backtest["holdout_weeks"]))
    return out


def method_sentence(scoring: dict[str, Any] | None, backtest: dict[str, Any] | None, cfg: dict[str, Any]) -> str:
    """How the statuses were made, in one or two sentences."""
    if not scoring:
        return ""
    repeat = scoring.get("repeat_buyers", 0)
    if scoring.get("method") == "rules":
        if selection.reason_code(scoring.get("reason")) == evidence.TOO_FEW_REPEAT:
            return _("You have %(n)s repeat buyers — too few for a reliable statistical model (at least %(min)s are "
                     "needed). Status is rule-based for now: recency against your typical time between purchases.",
                     n=fmt_number(repeat), min=fmt_number(cfg["min_repeat_buyers"]))
        text = _("Statuses follow simple rules (recency against your typical time between purchases), not a "
                 "statistical model.")
        if scoring.get("reason"):
            text += " " + _("Why: %(reason)s", reason=fit_reason(scoring["reason"]))
        return text
    choice = (backtest or {}).get("choice") or {}
    why = WHY.get(choice.get("by") or "", "")
    text = _("Status and forecasts come from the %(model)s model fitted to the purchase history of your %(n)s "
             "repeat buyers.", model=model_name(scoring["method"]), n=fmt_number(repeat))
    if why:
        text += " " + _("It was chosen because %(why)s.", why=_(why))
    return text


def _se(value: Any, se: Any) -> str:
    if value is None:
        return "—"
    text = scientific(value, 4)  # the reader's number format, never '2.3e+03'
    return f"{text} ± {scientific(se, 2)}" if se is not None else text


def _param(name: str) -> str:
    return PARAM_NAMES.get(name, name)


def fit_detail(record: dict[str, Any]) -> str:
    """The numbers behind a rejected fit's reason, in the reader's language and number format
    ("r = 2,7 × 10¹⁹", "standard error of ln β: 10,5"). A record stored before `facts` existed
    has them read back from its English line; a line that does not read back is shown as it is."""
    facts = record.get("facts")
    if facts is None:
        facts = _old_facts(record.get("detail") or "")
        if facts is None:
            return str(record.get("detail") or "")
    parts = [f"{_param(k)} = {scientific(v)}" for k, v in (facts.get("params") or {}).items()]
    parts += [_("standard error of ln %(name)s: %(value)s", name=_param(k), value=scientific(v))
              for k, v in (facts.get("se_log") or {}).items()]
    if "gradient" in facts:
        parts.append(_("gradient where the optimiser stopped: %(value)s", value=scientific(facts["gradient"])))
    if "log_likelihood" in facts:
        value = facts["log_likelihood"]
        parts.append(_("log-likelihood: %(value)s", value=scientific(value) if value is not None
                       else _("not a finite number")))
    if facts.get("positive_definite") is False:
        parts.append(_("the Hessian is not positive definite"))
    return "; ".join(parts)


def _number(text: str) -> float | None:
    value = float(text)  # ValueError: not an old record's number
    return value if math.isfinite(value) else None


# The English lines older records kept in "detail" (btyd.judge wrote them), as facts.
_OLD_WHOLE: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], dict[str, Any]]], ...] = (
    (re.compile(r"LL = (\S+)"), lambda m: {"log_likelihood": _number(m[1])}),
    (re.compile(r"gradient (\S+); .*"), lambda m: {"gradient": _number(m[1])}),
    (re.compile(r"the Hessian is not positive definite"), lambda m: {"positive_definite": False}),
)
_OLD_PART = re.compile(r"(?:SE\(log (\w+)\)|(\w+)) = (\S+)")


def _old_facts(detail: str) -> dict[str, Any] | None:
    if not detail:
        return {}
    try:
        for pattern, read in _OLD_WHOLE:
            if found := pattern.fullmatch(detail):
                return read(found)
        facts: dict[str, dict[str, float | None]] = {}
        for part in detail.split(", "):  # "r = 2.7e+19, alpha = 1e-07" or "SE(log s) = 10, SE(log beta) = 10.5"
            found = _OLD_PART.fullmatch(part)
            if found is None:
                return None
            key, name = ("se_log", found[1]) if found[1] else ("params", found[2])
            facts.setdefault(key, {})[name] = _number(found[3])
        return facts
    except ValueError:
        return None


def fit_rows(records: list[dict[str, Any]], errors: dict[str, float]) -> list[dict[str, Any]]:
    """Each fitted model as a table row: parameters ± SE, LL, BIC, holdout error, usable or why not."""
    rows = []
    for rec in records:
        stored, se = rec.get("params") or {}, rec.get("se") or {}
        order = btyd.PARAMS.get(rec["model"], tuple(stored))  # JSONB does not keep the papers' order
        params = {k: stored.get(k) for k in order}
        rows.append({
            "model": model_name(rec["model"]), "key": rec["model"], "stage": rec.get("stage"),
            "params": [(PARAM_NAMES.get(k, k), _se(v, se.get(k))) for k, v in params.items()],
            "ll": rec.get("log_likelihood"), "bic": rec.get("bic"), "error": errors.get(rec["model"]),
            "usable": rec.get("usable", True), "reason": fit_reason(rec.get("reason")),
            "detail": fit_detail(rec),
        })
    return rows


def holdout_chart(backtest: dict[str, Any]) -> Markup | None:
    """Purchases in the held-out weeks by clients with 0, 1, … 7+ repeat purchases before the cut-off:
    what happened against what the chosen model (and the others) predicted, as totals."""
    compare = backtest.get("compare") or {}
    chosen = backtest.get("chosen")
    if chosen not in compare:
        return None
    rows = compare[chosen]["by_repeat"]
    labels = [r["repeat"] for r in rows]
    actual = _("actual")
    series = {actual: [(r["actual"] or 0) * r["clients"] for r in rows]}
    colors = {actual: charts.COLORS["bar2"]}
    palette = iter(("#2f5bea", "#d99a1e", "#7c5cd6"))
    for model in (chosen, *[m for m in compare if m != chosen]):
        name = _("%(model)s, predicted", model=model_name(model))
        series[name] = [(r["predicted"] or 0) * r["clients"] for r in compare[model]["by_repeat"]]
        colors[name] = next(palette)
    return charts.bars(labels, series, colors, _("Purchases in the held-out weeks, by repeat purchases before: "
                                                 "actual and predicted"), height=260,
                       table=False)  # the page's table right under it has the same numbers


def page(data: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Everything the validation page shows."""
    backtest = data.get("backtest") or {}
    scoring = data.get("scoring") or {}
    compare = backtest.get("compare") or {}
    chosen = backtest.get("chosen")
    legend = [(_("actual"), charts.COLORS["bar2"])]
    palette = iter(("#2f5bea", "#d99a1e", "#7c5cd6"))
    for model in ([chosen] if chosen in compare else []) + [m for m in compare if m != chosen]:
        legend.append((_("%(model)s, predicted", model=model_name(model)), next(palette)))
    by_repeat = []
    if chosen in compare:
        for i, row in enumerate(compare[chosen]["by_repeat"]):
            by_repeat.append({"repeat": row["repeat"], "clients": row["clients"], "actual": row["actual"],
                              "predicted": [(model_name(m), compare[m]["by_repeat"][i]["predicted"])
                                            for m in ([chosen] + [m for m in compare if m != chosen])]})
    spend_fit = scoring.get("spend_fit")
    return {
        "backtest": backtest, "scoring": scoring, "chosen": chosen, "chosen_name": model_name(chosen),
        "method": scoring.get("method"), "method_name": model_name(scoring.get("method")),
        "method_sentence": method_sentence(scoring, backtest, cfg),
        "chart": holdout_chart(backtest) if backtest else None, "legend": legend, "by_repeat": by_repeat,
        "totals": {m: compare[m]["total"] for m in compare},
        "status_rows": [(k, _(STATUS_NAMES[k]), backtest["status"][k]) for k in STATUS_ORDER
                        if backtest.get("status", {}).get(k, {}).get("clients")] if backtest.get("status") else [],
        "status_lines": status_lines(backtest),
        "candidates": fit_rows(backtest.get("candidates") or [], backtest.get("errors") or {}),
        "refits": fit_rows(backtest.get("refits") or [], {}),
        "spend": fit_rows([{**spend_fit, "stage": "whole history"}], {}) if spend_fit else [],
        "spend_note": fit_reason(scoring.get("spend_note")),
        "spend_correlation": scoring.get("spend_correlation"),
        "spend_warning_at": selection.SPEND_CORRELATION_WARNING,
        "min_holdout": evidence.MIN_HOLDOUT_PURCHASES, "min_repeat": cfg["min_repeat_buyers"],
        "limits": scoring.get("limits") or {},
        "clv": scoring.get("clv") or {"annual_rate": cfg["discount_rate"], "margin": cfg["margin"],
                                      "months": cfg["clv_months"]},
        "model_names": {m: model_name(m) for m in compare},
        "weeks": weeks(backtest.get("holdout_weeks", cfg["holdout_weeks"])),
        "cutoff": date.fromisoformat(backtest["cutoff"]) if backtest.get("cutoff") else None,
        "today": date.fromisoformat(backtest["today"]) if backtest.get("today") else None,
    }
