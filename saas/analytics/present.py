"""Words and labels for scores, shared by the dashboard, the client card and the list."""
from __future__ import annotations

from typing import Any

from saas.analytics import reliability, rfm
from saas.core.i18n import _, fmt_money, fmt_number, gettext_, lazy, ngettext_

STATUS_LABELS = {"new": lazy("new"), "active": lazy("active"), "at_risk": lazy("at risk"), "lost": lazy("lost")}
RISK_LABELS = {"reliable": lazy("reliable"), "watch": lazy("watch"), "risk": lazy("risk group"),
               "unknown": lazy("not enough history")}
SEGMENT_LABELS = {
    "champions": lazy("Champions"), "loyal": lazy("Loyal"), "potential_loyalists": lazy("Potential loyalists"),
    "new": lazy("New customers"), "promising": lazy("Promising"), "need_attention": lazy("Need attention"),
    "about_to_sleep": lazy("About to sleep"), "cant_lose": lazy("Can't lose them"), "at_risk": lazy("At risk"),
    "hibernating": lazy("Hibernating"), "lost": lazy("Lost"), rfm.NO_PURCHASES: lazy("No purchases yet"),
}
# One line each, shown beside the labels on the card: the status is the client's own forecast,
# the segment a comparison with the company's other buyers, so they can differ.
STATUS_MEANINGS = {
    "new": lazy("First purchase recently, no repeat yet."),
    "active": lazy("Likely to buy again soon, like a typical client of yours who is still with you."),
    "at_risk": lazy("Less likely to buy soon than a typical client of yours: may be leaving."),
    "lost": lazy("Unlikely to buy again without a reason to."),
}
SEGMENT_MEANINGS = {
    "champions": lazy("Among your most recent, most frequent and biggest buyers."),
    "loyal": lazy("Buy often and recently, for average amounts."),
    "potential_loyalists": lazy("Recent buyers with a few purchases: could become loyal."),
    "new": lazy("Among your most recent buyers, with few purchases so far."),
    "promising": lazy("Fairly recent buyers with few purchases so far."),
    "need_attention": lazy("Buy often, but the last purchase is getting old."),
    "about_to_sleep": lazy("Few purchases, the last one neither recent nor old."),
    "cant_lose": lazy("Used to buy often and for the most; not for a long time now."),
    "at_risk": lazy("Used to buy often; not for a long time now."),
    "hibernating": lazy("Few purchases, a long time ago."),
    "lost": lazy("Few purchases, the last one among your oldest."),
    rfm.NO_PURCHASES: lazy("No purchase yet, so not compared with your buyers."),
}


def reliability_reason(score: Any, currency: str = "RUB") -> str:
    """Why the reliability score is what it is, in the reader's language and number formats."""
    if score is None:
        return ""
    return reliability.reason(score.risk_factors or {}, score.risk_group, money=lambda v: fmt_money(v, currency),
                              number=fmt_number, translate=gettext_, plural=ngettext_)


def returns_note(score: Any) -> str:
    """Returns, a separate signal beside the reliability score (not part of it)."""
    if score is None:
        return ""
    return reliability.returns_note(score.risk_factors or {}, number=fmt_number, translate=gettext_)


def score_labels() -> dict[str, dict[str, str]]:
    """Every label table in the reader's language, for the templates (a Jinja global)."""
    return {name: {k: _(v) for k, v in table.items()}
            for name, table in (("status", STATUS_LABELS), ("segment", SEGMENT_LABELS), ("risk", RISK_LABELS),
                                ("status_meaning", STATUS_MEANINGS), ("segment_meaning", SEGMENT_MEANINGS))}


def register() -> None:
    """Give the templates the score labels and reasons (called once at startup by saas.wiring)."""
    from saas.core.web.render import register_globals

    register_globals(reliability_reason=reliability_reason, returns_note=returns_note, score_labels=score_labels)
