"""Analytics tables of a company: model fits and the company's settings (the scores table is
clients.models.ClientScore: the client pages read it, analytics writes it)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, Identity, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.core.db import TenantBase

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
