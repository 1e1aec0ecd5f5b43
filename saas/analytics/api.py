"""The analytics API: a client's scores inside the clients API, and the company's summary.

Analytics sits above clients, so the clients API does not import it: `register` hands it a
`ScoresView` (how to read one client's scores, show them, and which filter values exist). The
list joins client_scores itself (one LEFT JOIN, see saas.clients.queries.list_clients).
Everything here reads what the last refresh stored; nothing is computed on request.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import get
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import queries, rfm, validation
from saas.analytics import settings as analytics_settings
from saas.clients.models import RISK_GROUPS, STATUSES, ClientScore
from saas.analytics.present import reliability_reason
from saas.clients.api import ScoresView, use_scores
from saas.core.errors import ERRORS
from saas.clients.schemas import ClientAnalyticsOut
from saas.accounts.deps import ApiCtx

# ---- a client's scores --------------------------------------------------------------------


def filter_values() -> dict[str, tuple[str, ...]]:
    return {"status": STATUSES, "rfm_segment": (*rfm.SEGMENTS, rfm.NO_PURCHASES), "reliability_group": RISK_GROUPS}


async def load_score(db: AsyncSession, client_id: int) -> ClientScore | None:
    return await db.get(ClientScore, client_id)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def score_out(score: ClientScore, currency: str) -> ClientAnalyticsOut:
    """The payload; the reason is the card's own words, in the request's language."""
    return ClientAnalyticsOut(
        status=score.status, p_alive=_number(score.p_alive), expected_purchases=_number(score.expected_purchases),
        clv=None if score.clv is None else str(score.clv), rfm_segment=score.segment, reliability=score.risk_score,
        reliability_group=score.risk_group, reasons=reliability_reason(score, currency), scored_at=score.computed_at,
    )


def register() -> None:
    """Called once by the app factory (repeating it is harmless)."""
    use_scores(ScoresView(filters=filter_values, load=load_score, out=score_out))


# ---- the summary ----------------------------------------------------------------------------


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class GrowthPeriodOut(msgspec.Struct):
    period: Annotated[str, _doc('"2025" for a year, "2025-03" for a month')]
    active: Annotated[int, _doc("Clients who made a purchase in the period (returns are not purchases)")]
    new: Annotated[int, _doc("Made their first purchase ever")]
    returning: Annotated[int, _doc("Had bought before: retained + reactivated")]
    retained: Annotated[int, _doc("Also bought in the previous period")]
    reactivated: Annotated[int, _doc("Came back after a gap")]
    lost: Annotated[int | None, _doc("Bought in the previous period, not in this one (null: no whole period "
                                     "before it to compare with)")]
    rate: Annotated[float | None, _doc("active / previous active − 1 (null for the first or a running period)")]
    partial: Annotated[bool, _doc("The running year, not over yet: see `year_to_date`")]


class YearToDateOut(msgspec.Struct):
    year: int
    through: Annotated[date, _doc("This year from 1 January through this day…")]
    active: int
    last_year_through: Annotated[date, _doc("…against last year from 1 January through this day")]
    last_year_active: Annotated[int | None, _doc("Null when last year is not complete")]
    rate: float | None


class GrowthRateOut(msgspec.Struct):
    """Average yearly growth over the complete years first_year..last_year (all null with fewer than two)."""

    cagr: Annotated[float | None, _doc("(last_year_active / first_year_active) ^ (1 / years between) − 1")]
    mean_yearly_rate: Annotated[float | None, _doc("Mean of the yearly rates over the same years")]
    first_year: int | None
    last_year: int | None
    first_year_active: int | None
    last_year_active: int | None


class FitOut(msgspec.Struct):
    model: str
    params: dict[str, float | None]
    log_likelihood: float | None
    converged: bool
    clients: int
    quality: Annotated[dict[str, Any], _doc("What the refresh recorded about the fit (e.g. standard errors, BIC)")]
    fitted_at: datetime


class ModelOut(msgspec.Struct):
    method: Annotated[str | None, _doc('What decided the statuses: a model\'s name, or "rules"; null before the '
                                       "first refresh")]
    explanation: Annotated[str, _doc("How the statuses were made and why this model, in the request's language "
                                     "(the dashboard's sentence); empty before the first refresh")]
    fit: Annotated[FitOut | None, _doc("The chosen model's fit on the whole history (null for rules)")]
    fits: Annotated[list[FitOut], _doc("Every model the last refresh fitted, one fit each")]
    backtest: Annotated[dict[str, Any] | None, _doc("The backtest as the refresh stored it: predicted against "
                                                    "actual purchases in the held-out weeks, per model, per number "
                                                    "of repeat purchases and per status; the candidates and the "
                                                    "choice")]


class AnalyticsSummaryOut(msgspec.Struct):
    computed_for: Annotated[date | None, _doc("The day the last refresh computed for (null before the first)")]
    scored_at: datetime | None
    clients: Annotated[int, _doc("Current clients (not archived)")]
    buyers: Annotated[int | None, _doc("Clients with at least one purchase")]
    repeat_buyers: Annotated[int | None, _doc("Clients with two purchase days or more")]
    history_start: Annotated[date | None, _doc("The first purchase on record")]
    years: Annotated[list[GrowthPeriodOut], _doc("From the first complete year; the running year last (partial)")]
    months: Annotated[list[GrowthPeriodOut], _doc("Complete months only, the last 36 at most")]
    year_to_date: YearToDateOut | None
    growth: GrowthRateOut
    status_counts: dict[str, int]
    segment_counts: dict[str, int]
    reliability_counts: dict[str, int]
    model: ModelOut


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def _periods(stored: list[dict[str, Any]], monthly: bool) -> list[GrowthPeriodOut]:
    out = []
    for p in stored:
        key = int(p["key"])
        retained, reactivated = int(p.get("retained", 0)), int(p.get("reactivated", 0))
        out.append(GrowthPeriodOut(
            period=f"{key // 12}-{key % 12 + 1:02d}" if monthly else str(key), active=int(p["active"]),
            new=int(p["new"]), returning=int(p.get("returning", retained + reactivated)), retained=retained,
            reactivated=reactivated, lost=_int(p.get("lost")), rate=_number(p.get("rate")),
            partial=bool(p.get("partial", False))))
    return out


def _year_to_date(stored: dict[str, Any] | None) -> YearToDateOut | None:
    if not stored:
        return None
    return YearToDateOut(year=int(stored["year"]), through=date.fromisoformat(stored["through"]),
                         active=int(stored["active"]),
                         last_year_through=date.fromisoformat(stored["last_year_through"]),
                         last_year_active=_int(stored.get("last_year_active")), rate=_number(stored.get("rate")))


def _fit(fit: Any) -> FitOut:
    return FitOut(model=fit.model, params={k: _number(v) for k, v in (fit.params or {}).items()},
                  log_likelihood=_number(fit.log_likelihood), converged=bool(fit.converged), clients=fit.clients,
                  quality=dict(fit.quality or {}), fitted_at=fit.created_at)


def _chosen(fits: list[Any], method: str | None) -> Any:
    flagged = [f for f in fits if (f.quality or {}).get("chosen")]
    return next(iter(flagged), None) or next((f for f in fits if f.model == method), None)


@get("/analytics/summary", summary="Growth, status and segment counts, and the model behind them",
     responses=ERRORS, description="What the last score refresh stored: active, new, returning and lost clients "
     "per year and per month, the average yearly growth over complete years, how many clients are in each "
     "status, RFM segment and reliability group, and the model used with its backtest. Before the first "
     "refresh the figures are null or empty.")
async def api_analytics_summary(ctx: ApiCtx) -> AnalyticsSummaryOut:
    data = await queries.dashboard(ctx.db)
    cache = data["cache"] or {}
    summary = cache.get("summary") or {}
    scoring = data["scoring"] or {}
    method = scoring.get("method", cache.get("method"))
    fits = list(data["fits"].values())
    chosen = _chosen(fits, method) if method not in (None, "rules") else None
    explanation = validation.method_sentence(scoring, data["backtest"], await analytics_settings.load(ctx.db))
    return AnalyticsSummaryOut(
        computed_for=_day(cache.get("computed_for")), scored_at=data["computed_at"],
        clients=int(data["clients"] or 0), buyers=_int(cache.get("buyers")),
        repeat_buyers=_int(cache.get("repeat_buyers")), history_start=_day(cache.get("history_start")),
        years=_periods(cache.get("years", []), monthly=False), months=_periods(cache.get("months", []), monthly=True),
        year_to_date=_year_to_date(cache.get("ytd")),
        growth=GrowthRateOut(cagr=_number(summary.get("cagr")), mean_yearly_rate=_number(summary.get("mean_rate")),
                             first_year=_int(summary.get("first_year")), last_year=_int(summary.get("last_year")),
                             first_year_active=_int(summary.get("first_active")),
                             last_year_active=_int(summary.get("last_active"))),
        status_counts=dict(data["status"]), segment_counts={k: v[0] for k, v in data["segments"].items()},
        reliability_counts=dict(data["risk"]),
        model=ModelOut(method=method, explanation=explanation, fit=_fit(chosen) if chosen is not None else None,
                       fits=[_fit(f) for f in fits], backtest=data["backtest"]),
    )


HANDLERS = [api_analytics_summary]
