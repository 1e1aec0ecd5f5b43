"""Analytics tables of a company: the scores snapshot, model fits and the company's settings."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Float, Identity, Index, Integer, Numeric, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.core.db import TenantBase

STATUSES = ("new", "active", "at_risk", "lost")
RISK_GROUPS = ("reliable", "watch", "risk", "unknown")  # unknown: too few deferred payments to judge


class ClientScore(TenantBase):
    """One row per client, replaced as a whole by each refresh (readers see old or new, never half)."""

    __tablename__ = "client_scores"
    __table_args__ = (
        CheckConstraint("status IN ('new', 'active', 'at_risk', 'lost')", name="status"),
        CheckConstraint("risk_group IN ('reliable', 'watch', 'risk', 'unknown')", name="risk_group"),
        Index("ix_client_scores_status", "status"),
        Index("ix_client_scores_segment", "segment"),
        Index("ix_client_scores_clv", "clv"),
    )
    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(Text)
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_purchases: Mapped[float | None] = mapped_column(Float)  # over the tenant's horizon
    expected_spend: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    clv: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))  # 12 months
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    m_score: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(Text)
    risk_score: Mapped[int] = mapped_column(Integer)
    risk_group: Mapped[str] = mapped_column(Text)
    risk_factors: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    method: Mapped[str] = mapped_column(Text)  # pareto-nbd | rules
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ModelFit(TenantBase):
    __tablename__ = "model_fits"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, float]] = mapped_column(JSONB)
    log_likelihood: Mapped[float | None] = mapped_column(Float)
    clients: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    converged: Mapped[bool]
    quality: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Setting(TenantBase):
    """The company's own settings (analytics thresholds and weights, and later more), by key."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
