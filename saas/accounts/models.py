"""Platform tables of accounts (schema `shared`): users, memberships, invitations, resets, tokens, platform audit."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.core.db import SharedBase
from saas.core.models import _id, _now

ROLES = ("owner", "admin", "marketer", "viewer")
ROLE_CHECK = "role IN ('owner', 'admin', 'marketer', 'viewer')"


class User(SharedBase):
    __tablename__ = "users"
    id: Mapped[int] = _id()
    email: Mapped[str] = mapped_column(Text, unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(Text)
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = _now()
    # Set when the owner of the address opened a link we mailed to it (a confirmation or an
    # invitation). Needed before a second company or joining one with an existing account.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Membership(SharedBase):
    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)
    user_id: Mapped[int] = mapped_column(ForeignKey("shared.users.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("shared.tenants.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Invitation(SharedBase):
    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("shared.tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("shared.users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(SharedBase):
    __tablename__ = "password_resets"
    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(ForeignKey("shared.users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(SharedBase):
    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("shared.tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    prefix: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The member who created it: the token works only while they are a member with at least its
    # role. NULL for tokens issued by the platform operator (`saas tokens create`).
    created_by: Mapped[int | None] = mapped_column(ForeignKey("shared.users.id", ondelete="CASCADE"), index=True)




class PlatformAudit(SharedBase):
    __tablename__ = "platform_audit"
    id: Mapped[int] = _id()
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = _now()
