"""The tables every domain relies on: the company registry (`shared.tenants`), the development
outbox, and in each company's schema its audit events and background jobs."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, Identity, Index, Integer, LargeBinary, Text,
                        func, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.core.db import SharedBase, TenantBase


def _id() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(), primary_key=True)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Tenant(SharedBase):
    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'deleted')", name="status"),
        # The platform console sorts by these, the id breaking ties (keyset pagination): s0002.
        Index("ix_tenants_created_at_id", "created_at", "id"),
        Index("ix_tenants_activity_id", text("coalesce(last_activity_at, '-infinity'::timestamptz)"), "id"),
        Index("ix_tenants_name_id", text("lower(name)"), "id"),
        Index("ix_tenants_purge_after", "purge_after", postgresql_where=text("status = 'deleted'")),
    )
    id: Mapped[int] = _id()
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    schema_name: Mapped[str] = mapped_column(Text, unique=True)
    schema_version: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    plan: Mapped[str] = mapped_column(Text, server_default="free")
    locale: Mapped[str] = mapped_column(Text, server_default="ru")
    currency: Mapped[str] = mapped_column(Text, server_default="RUB")
    timezone: Mapped[str] = mapped_column(Text, server_default="Europe/Moscow")
    is_demo: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = _now()
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspend_reason: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purge_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Per-tenant overrides of the plan's limits ({"clients": 5000, ...}); see saas/accounts/limits.py.
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # Usage figures kept by the platform's refresh job (counting every schema per page view is too slow).
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    stats_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMail(SharedBase):
    """Development mail: what would have gone over SMTP, shown at /dev/outbox."""

    __tablename__ = "outbox"
    id: Mapped[int] = _id()
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class AuditEvent(TenantBase):
    """Who revealed, exported, imported, merged or erased what, and when. Never the data itself."""

    __tablename__ = "audit_events"
    id: Mapped[int] = _id()
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, index=True)
    object_type: Mapped[str | None] = mapped_column(Text)
    object_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = _now()


class Job(TenantBase):
    """Durable state of a background job; the RQ job id is derived from it."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name="status"),
    )
    id: Mapped[int] = _id()
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="queued")
    progress: Mapped[int] = mapped_column(Integer, server_default="0")
    total: Mapped[int] = mapped_column(Integer, server_default="0")
    object_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A company export's ZIP, or an uploaded restore file, until it expires. Deferred: listing
    # jobs never loads it, and a schema not yet migrated is not asked for it.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
