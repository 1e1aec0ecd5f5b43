"""Hooks other domains call when data changes; analytics fills them in."""
from __future__ import annotations


async def after_import(db, tenant) -> None:  # noqa: ANN001
    """After a successful import, queue a score refresh for the tenant."""
    from saas.analytics.jobs import do_queue_refresh

    async with db.session(tenant.schema_name) as s:
        await do_queue_refresh(s, tenant, check_queue=False)
