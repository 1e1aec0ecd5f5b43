"""Words and labels for scores, shared by the dashboard, the client card and the list."""
from __future__ import annotations

from typing import Any

from saas.analytics import reliability
from saas.web.i18n import fmt_money, fmt_number, gettext_, ngettext_


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
