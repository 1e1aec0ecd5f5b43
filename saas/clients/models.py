"""A company's card index: clients, their operations, the dictionaries and imports."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger, CheckConstraint, Computed, Date, DateTime, Float, ForeignKey, Identity, Index, Integer, LargeBinary,
    Numeric, Text, func, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from saas.core.db import TenantBase

MONEY = Numeric(14, 2)
TOTAL = Numeric(18, 2)  # a client's sums of many operations
# Words a person types to find a client: names, email and phone digits ('simple': no stemming).
SEARCH_VECTOR = (
    "to_tsvector('simple', coalesce(last_name, '') || ' ' || coalesce(first_name, '') || ' ' || "
    "coalesce(middle_name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(ltrim(phone, '+'), ''))"
)
# The same words but the surname's first one (and the phone's digits, which no word of letters
# matches): a one-word search by name finds surnames in the name index and the rest here
# (saas/clients/name_search.py).
OTHER_WORDS = (
    "to_tsvector('simple'::regconfig, coalesce(first_name, '') || ' ' || coalesce(middle_name, '') || ' ' || "
    "coalesce(email, '') || ' ' || CASE WHEN last_name ~ '^[[:alpha:]]+([- ][[:alpha:]]+)*$' "
    "THEN regexp_replace(last_name, '^[[:alpha:]]+', '') ELSE coalesce(last_name, '') END)"
)


class Client(TenantBase):
    __tablename__ = "clients"
    __table_args__ = (
        Index("ix_clients_search", "search", postgresql_using="gin"),
        Index("ix_clients_tags", "tags", postgresql_using="gin"),
        Index("ix_clients_interests", "product_group_ids", "direction_ids", postgresql_using="gin"),
        Index("ix_clients_phone", "phone", postgresql_ops={"phone": "text_pattern_ops"}),
        Index("ix_clients_email", "email", postgresql_ops={"email": "text_pattern_ops"}),
        Index("ix_clients_passport_bidx", "passport_bidx"),
        Index("ix_clients_last_op", text("coalesce(last_operation_on, '0001-01-01'::date)"), "id"),
        Index("ix_clients_revenue", "revenue_total", "id"),
        Index("ix_clients_name", func.lower(text("last_name")), func.lower(text("first_name")), "id"),
        # the raw names too: PostgreSQL reads an expression from an index alone only with its columns
        Index("ix_clients_name_listed", func.lower(text("last_name")), func.lower(text("first_name")), "id",
              postgresql_include=["last_name", "first_name"],
              postgresql_where=text("erased_at IS NULL AND archived_at IS NULL")),
        Index("ix_clients_other_words", text(OTHER_WORDS), postgresql_using="gin"),
        Index("ix_clients_import", "import_id"),
        Index("ix_clients_custom", "custom", postgresql_using="gin", postgresql_ops={"custom": "jsonb_path_ops"}),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    last_name: Mapped[str] = mapped_column(Text, server_default="")
    first_name: Mapped[str] = mapped_column(Text, server_default="")
    middle_name: Mapped[str] = mapped_column(Text, server_default="")
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(Text)  # E.164
    email: Mapped[str | None] = mapped_column(Text)  # lower-cased
    address: Mapped[str | None] = mapped_column(Text)
    # Passport: the whole record AES-GCM encrypted; equality search through a keyed blind index;
    # the mask is what lists show (never more than the last two digits of the number).
    passport_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    passport_key_id: Mapped[str | None] = mapped_column(Text)
    passport_bidx: Mapped[str | None] = mapped_column(Text)
    passport_mask: Mapped[str | None] = mapped_column(Text)
    consent: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")  # {"email": {"at", "source"}}
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    product_group_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    direction_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    note: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    search = mapped_column(TSVECTOR, Computed(SEARCH_VECTOR, persisted=True))
    import_id: Mapped[int | None] = mapped_column(BigInteger)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Kept current in the same transaction as every operation write (no triggers: Citus refuses them).
    first_operation_on: Mapped[date | None] = mapped_column(Date)
    last_operation_on: Mapped[date | None] = mapped_column(Date)
    operations_count: Mapped[int] = mapped_column(Integer, server_default="0")
    revenue_total: Mapped[Decimal] = mapped_column(TOTAL, server_default="0")
    unpaid_total: Mapped[Decimal] = mapped_column(TOTAL, server_default="0")


class Operation(TenantBase):
    __tablename__ = "operations"
    __table_args__ = (
        CheckConstraint("kind IN ('sale', 'service', 'return')", name="kind"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_operations_client", "client_id", "occurred_on"),
        Index("ix_operations_import", "import_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text, server_default="sale")
    occurred_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)  # positive; a return subtracts
    product_group_id: Mapped[int | None] = mapped_column(ForeignKey("product_groups.id", ondelete="SET NULL"))
    direction_id: Mapped[int | None] = mapped_column(ForeignKey("directions.id", ondelete="SET NULL"))
    due_on: Mapped[date | None] = mapped_column(Date)
    paid_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    import_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProductGroup(TenantBase):
    __tablename__ = "product_groups"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Direction(TenantBase):
    __tablename__ = "directions"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Import(TenantBase):
    """One uploaded file: its mapping and choices, progress, counts, and the rejected rows."""

    __tablename__ = "imports"
    __table_args__ = (
        CheckConstraint("kind IN ('clients', 'operations')", name="kind"),
        CheckConstraint("status IN ('uploaded', 'queued', 'running', 'done', 'failed', 'undone')", name="status"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="uploaded")
    filename: Mapped[str] = mapped_column(Text)
    # The file, until the import ends. Deferred: only the worker that reads or applies it loads it
    # (a list of 50 imports must not pull 50 files of up to 100 MB).
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    file_type: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(Text)
    delimiter: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    mapping: Mapped[dict[str, str]] = mapped_column(JSONB, server_default="{}")  # column index -> field
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    total_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    processed_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    created_count: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_count: Mapped[int] = mapped_column(Integer, server_default="0")
    skipped_count: Mapped[int] = mapped_column(Integer, server_default="0")
    rejected_count: Mapped[int] = mapped_column(Integer, server_default="0")
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # (Columns below in migration order.) The first rows' cells ({"line", "cells"}), read with the
    # file by the worker: the mapping screen's dry run maps these, so no page reads the file.
    # NULL until read; cleared with the file.
    sample: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # Retention (imports/retention.py): when the file, sample, rejected rows' cells and undo
    # snapshots were removed (the company's days after the upload); undo is gone from then on.
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why a stored file was removed before it was used: 'expired' or 'erasure' (a client erased).
    file_removed: Mapped[str | None] = mapped_column(Text)


class ImportUndo(TenantBase):
    """The state of a client before an import updated it, so the whole import can be undone."""

    __tablename__ = "import_undo"
    import_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    before: Mapped[dict[str, Any]] = mapped_column(JSONB)


class CustomField(TenantBase):
    """A company's own client field. Values live in clients.custom under `key` (stable forever)."""

    __tablename__ = "custom_fields"
    __table_args__ = (
        CheckConstraint("type IN ('text', 'number', 'money', 'date', 'bool', 'choice', 'multi')", name="type"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    label_ru: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    required: Mapped[bool] = mapped_column(server_default="false")
    in_list: Mapped[bool] = mapped_column(server_default="false")
    position: Mapped[int] = mapped_column(Integer, server_default="0")
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SavedView(TenantBase):
    """A named client-list query (search, filters, columns, sort); relative dates stay relative."""

    __tablename__ = "saved_views"
    __table_args__ = (Index("ix_saved_views_user", "user_id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    shared: Mapped[bool] = mapped_column(server_default="false")
    is_default: Mapped[bool] = mapped_column(server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# ---- scores: written by analytics (refresh and live scoring), read by the client pages --------

STATUSES = ("new", "active", "at_risk", "lost")
RISK_GROUPS = ("reliable", "watch", "risk", "unknown")  # unknown: too few deferred payments to judge


class ClientScore(TenantBase):
    """One row per client, replaced as a whole by each refresh (readers see old or new, never half)."""

    __tablename__ = "client_scores"
    __table_args__ = (
        CheckConstraint("status IN ('new', 'active', 'at_risk', 'lost')", name="status"),
        CheckConstraint("risk_group IN ('reliable', 'watch', 'risk', 'unknown')", name="risk_group"),
        # No index on status, segment or clv (t0011): filters on them join a page of clients read
        # in name order, and no query chose them at a million clients; each cost the refresh's write.
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
