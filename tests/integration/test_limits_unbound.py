"""Plan limits never fall open: an unbound session (no company) is an error, not "no limit"."""
from __future__ import annotations

import pytest

from saas.core.db import Database
from saas.accounts.limits import check_limit, room
from saas.accounts.service import do_create_tenant
from testkit import with_database


def test_an_unbound_session_is_refused_and_a_bound_one_counts(db_url: str) -> None:
    async def go(db: Database) -> tuple[int, int]:
        async with db.session() as s:
            tenant = await do_create_tenant(s, "Лимиты без привязки")
            tenant.limits = {"clients": 2}
        async with db.session() as s:
            with pytest.raises(LookupError):
                await room(s, None, "clients")
            with pytest.raises(LookupError):
                await check_limit(s, None, "clients")
        async with db.tenant_session(tenant) as s:
            space = await room(s, None, "clients")
            return space.limit, space.left

    assert with_database(db_url, go) == (2, 2)
