"""Read side of analytics: the dashboard's figures and one client's scores."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics.models import ModelFit, Setting
from saas.clients.models import ClientScore
from saas.clients.models import Client

MIX = text("""
    SELECT s.status, s.segment, s.risk_group, count(*), coalesce(sum(c.revenue_total), 0), coalesce(sum(s.clv), 0)
    FROM client_scores s JOIN clients c ON c.id = s.client_id
    WHERE c.erased_at IS NULL AND c.archived_at IS NULL
    GROUP BY GROUPING SETS ((s.status), (s.segment), (s.risk_group))
""")


async def dashboard(db: AsyncSession) -> dict[str, Any]:
    cached = await db.get(Setting, "dashboard")
    rows = (await db.execute(MIX)).all()
    status = {r[0]: r[3] for r in rows if r[0] is not None}
    clv_total = sum(float(r[5]) for r in rows if r[0] is not None)
    segments = {r[1]: (r[3], float(r[4])) for r in rows if r[1] is not None}
    risk = {r[2]: r[3] for r in rows if r[2] is not None}
    fits: dict[str, ModelFit] = {}  # the last refresh's fits, per model: the whole-history one where there is one
    last = select(func.max(ModelFit.created_at)).scalar_subquery()
    for fit in await db.scalars(select(ModelFit).where(ModelFit.created_at == last).order_by(ModelFit.id.desc())):
        fits.setdefault(fit.model, fit)
    scoring = await db.get(Setting, "scoring")
    backtest = await db.get(Setting, "backtest")
    # the last refresh (live scoring after a write re-scores single clients, not the company)
    computed_at = scoring.updated_at if scoring else await db.scalar(select(func.max(ClientScore.computed_at)))
    clients = await db.scalar(select(func.count()).select_from(Client).where(Client.erased_at.is_(None),
                                                                            Client.archived_at.is_(None)))
    return {"cache": cached.value if cached else None, "status": status, "segments": segments, "risk": risk,
            "fits": fits, "computed_at": computed_at, "clients": clients, "clv_total": clv_total,
            "scoring": scoring.value if scoring else None, "backtest": backtest.value if backtest else None}


async def top_risk(db: AsyncSession, limit: int = 10) -> list[tuple[Client, ClientScore]]:
    rows = await db.execute(
        select(Client, ClientScore).join(ClientScore, ClientScore.client_id == Client.id)
        .where(ClientScore.risk_group == "risk", Client.erased_at.is_(None), Client.archived_at.is_(None))
        .order_by(ClientScore.risk_score, Client.unpaid_total.desc()).limit(limit)
    )
    return [(c, s) for c, s in rows]


async def scores_for(db: AsyncSession, client_ids: list[int]) -> dict[int, ClientScore]:
    if not client_ids:
        return {}
    return {s.client_id: s for s in await db.scalars(select(ClientScore).where(ClientScore.client_id.in_(client_ids)))}
