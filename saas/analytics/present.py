"""Words and labels for scores, shared by the dashboard, the client card and the list."""
from __future__ import annotations

from typing import Any

from saas.analytics import reliability
from saas.web.i18n import fmt_money, gettext_


def reliability_reason(score: Any, currency: str = "RUB") -> str:
    if score is None:
        return ""
    return reliability.reason(score.risk_factors or {}, lambda v: fmt_money(v, currency), gettext_)
