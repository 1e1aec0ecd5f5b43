"""Hooks other domains call when data changes; analytics fills them in (scores refresh)."""
from __future__ import annotations


async def after_import(db, tenant) -> None:  # noqa: ANN001
    """Called by the import job after a successful import. Analytics will queue a score refresh."""
    return None
