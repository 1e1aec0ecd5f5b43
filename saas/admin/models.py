"""Platform tables of the admin domain: the pool of spare company schemas."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from saas.core.db import SharedBase


class SpareSchema(SharedBase):
    """A schema created ahead of time with every company table at `version` (saas/admin/spares.py):
    a signup renames one instead of running the DDL."""

    __tablename__ = "spare_schemas"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
