"""Analytics' subscribers to the clients domain's events (saas.clients.events), registered at
startup by `register` (the app factory, and the CLI, which also runs the worker):

- live scores: a client's scores follow every write to its operations (forms, API, imports, undo,
  merges), in the same transaction, from the fit the last refresh stored (the nightly refresh
  refits);
- after an import or a restore, a score refresh is queued (it refits on the new history).

Scoring must never cost the user the write itself. It runs in a savepoint: an error there rolls
back only the scores (logged; the next refresh rewrites them). It also waits at most LOCK_WAIT for
a refresh that is rewriting client_scores at that moment (that refresh's own snapshot may predate
the write, so the scores can stay stale until the next refresh or write: logged too).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics.scoring import score_clients
from saas.clients import events

if TYPE_CHECKING:
    from saas.core.db import Database
    from saas.core.models import Tenant

LOCK_WAIT = "2s"
log = logging.getLogger("saas.analytics.live")
# Sent on the driver's connection as they are (no statement to prepare); the ORM has flushed
# before, and nothing inside changes its objects, so it has nothing to learn from them.
_SAVEPOINT, _RELEASE, _ROLLBACK = ("SAVEPOINT live_scores", "RELEASE SAVEPOINT live_scores",
                                   "ROLLBACK TO SAVEPOINT live_scores")


async def rescore(db: AsyncSession, client_ids: list[int]) -> None:
    """In a savepoint: an error rolls back the scores and the lock wait (score_clients sets it with
    its first read and sets the transaction's own back with its write), never the write."""
    await db.flush()  # pending rows go in before the savepoint, not inside it
    raw: Any = (await (await db.connection()).get_raw_connection()).driver_connection  # asyncpg's
    await raw.execute(_SAVEPOINT)
    try:
        await score_clients(db, client_ids, lock_wait=LOCK_WAIT)
    except Exception:  # the write goes on; its scores wait for the next refresh
        await raw.execute(_ROLLBACK)
        log.exception("live scoring of %s client(s) failed", len(client_ids))
    else:
        await raw.execute(_RELEASE)


async def refresh_after_import(db: Database, tenant: Tenant) -> None:
    from saas.analytics.jobs import do_queue_refresh

    async with db.session(tenant.schema_name) as s:
        await do_queue_refresh(s, tenant, check_queue=False)


def register() -> None:
    events.on_operations_changed(rescore)
    events.on_import_finished(refresh_after_import)
