"""Campaigns, their ranked member snapshots, and reusable targets (segments)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Identity, Index,
                        Integer, Text, func)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.core.db import TenantBase

CHANNELS = ("email", "sms", "calls", "post", "none")


class Campaign(TenantBase):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms', 'calls', 'post', 'none')", name="channel"),
        CheckConstraint("status IN ('draft', 'building', 'ready', 'failed')", name="status"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    goal: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text, server_default="none")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    ranking: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default='{"by": "clv"}')
    size: Mapped[int | None] = mapped_column(Integer)  # top N; None: everyone eligible
    control_share: Mapped[float] = mapped_column(Float, server_default="0.1")
    suppression: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(Text, server_default="draft")
    error: Mapped[str | None] = mapped_column(Text)
    built_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    members_count: Mapped[int] = mapped_column(Integer, server_default="0")
    control_count: Mapped[int] = mapped_column(Integer, server_default="0")
    excluded: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_days: Mapped[int] = mapped_column(Integer, server_default="30")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CampaignMember(TenantBase):
    """The ranked snapshot. A rebuild replaces it in one transaction: readers see old or new."""

    __tablename__ = "campaign_members"
    __table_args__ = (Index("ix_campaign_members_client", "client_id"),)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    control: Mapped[bool] = mapped_column(Boolean, server_default="false")


class SavedSegment(TenantBase):
    __tablename__ = "saved_segments"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
