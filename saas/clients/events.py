"""What the clients domain tells the domains above it, through subscribers registered at startup.

Clients sits below analytics and never imports it. Analytics registers its subscribers when a
process starts (the app factory and the CLI, which runs the worker, call
`saas.analytics.live.register`):
- operations changed: `refresh_metrics` calls them after recounting the clients whose operations
  changed, in the same transaction, so their scores follow the write;
- import finished: an import (or a company restore) has committed; analytics queues a refresh.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.db import Database
from saas.core.models import Tenant

OperationsChanged = Callable[[AsyncSession, list[int]], Awaitable[None]]
_operations_changed: list[OperationsChanged] = []


def on_operations_changed(subscriber: OperationsChanged) -> None:
    """Subscribe (once: registering the same function again changes nothing)."""
    if subscriber not in _operations_changed:
        _operations_changed.append(subscriber)


async def operations_changed(db: AsyncSession, client_ids: list[int]) -> None:
    written: dict[int, Any] = db.info.get(SCORES_WRITTEN) or {}
    for client_id in client_ids:  # only what this change's subscribers write stays
        written.pop(client_id, None)
    for subscriber in _operations_changed:
        await subscriber(db, client_ids)


# The client_scores rows (column -> value) a subscriber has just written, by client id, kept in the
# session: the card's fragment drawn after the write shows them without reading them back.
SCORES_WRITTEN = "clients.scores_written"


def note_scores(db: AsyncSession, rows: dict[int, dict[str, Any]]) -> None:
    db.info.setdefault(SCORES_WRITTEN, {}).update(rows)


def written_score(db: AsyncSession, client_id: int) -> dict[str, Any] | None:
    """The row written for this client by the last change of its operations in this session, if
    its scoring wrote one (none before a first refresh, or when scoring failed)."""
    return db.info.get(SCORES_WRITTEN, {}).get(client_id)


ImportFinished = Callable[[Database, Tenant], Awaitable[None]]
_imports_finished: list[ImportFinished] = []


def on_import_finished(subscriber: ImportFinished) -> None:
    if subscriber not in _imports_finished:
        _imports_finished.append(subscriber)


async def import_finished(db: Database, tenant: Tenant) -> None:
    """After a successful import or restore, outside its transaction (`db` is the Database)."""
    for subscriber in _imports_finished:
        await subscriber(db, tenant)


ClientErased = Callable[[AsyncSession, int], Awaitable[dict[str, int] | None]]
_clients_erased: list[ClientErased] = []


def on_client_erased(subscriber: ClientErased) -> None:
    """Packages above clients that hold a client (campaign lists, saved exports) subscribe here."""
    if subscriber not in _clients_erased:
        _clients_erased.append(subscriber)


async def client_erased(db: AsyncSession, client_id: int) -> dict[str, int]:
    """In the erasure's transaction: each subscriber removes the person from what it keeps and
    returns counts for the audit log."""
    reached: dict[str, int] = {}
    for subscriber in _clients_erased:
        reached.update(await subscriber(db, client_id) or {})
    return reached
