"""A request binds its company in the query that finds it (issue 17: one round trip fewer on every
workspace page and API read), a refusal leaves nothing bound, the API gate's token check runs outside
a transaction, and a refused request gives its pooled connection back at once."""
from __future__ import annotations

import gc
import logging
import secrets
import time
from typing import Any

from sqlalchemy import text

from saas.accounts import service
from saas.accounts.models import Membership
from saas.core.db import Database
from testkit import Browser, company_with_api, sql, statements_sent, with_database

PATH = text("SELECT current_setting('search_path')")


async def _people(db: Database) -> dict[str, Any]:
    """Two companies; a user who is a viewer of the first only; a token the user made when an admin."""
    async with db.session() as s:
        user = await service.do_create_user(s, f"{secrets.token_hex(4)}@example.com", "Binder", "binder pass 1")
        mine = await service.do_create_tenant(s, f"Bound Co {secrets.token_hex(3)}")
        other = await service.do_create_tenant(s, f"Other Co {secrets.token_hex(3)}")
        s.add(Membership(user_id=user.id, tenant_id=mine.id, role="viewer"))
        await s.flush()
        secret = (await service.do_create_token(s, mine, "admin", "demoted", created_by=user.id))[1]
        plain = (await service.do_create_token(s, mine, "viewer", "plain"))[1]
    return {"user": user.id, "mine": mine, "other": other, "demoted": secret, "plain": plain}


def test_the_access_queries_bind_what_they_find_and_nothing_else(db_url: str) -> None:
    async def go(db: Database) -> list[Any]:
        p = await _people(db)
        seen = []
        async with db.session() as s:  # the member's company: bound by the query itself
            _user, access, companies = await service.user_and_access(s, p["user"], p["mine"].slug)
            seen += [access is not None, len(companies), await s.scalar(PATH), s.info.get("schema")]
        async with db.session() as s:  # not a member of the other company: nothing bound
            _user, access, _ = await service.user_and_access(s, p["user"], p["other"].slug)
            seen += [access, await s.scalar(PATH), s.info.get("schema")]
        async with db.session() as s:
            found = await service.access_token(s, p["plain"], bind_company=True)
            seen += [found is not None, await s.scalar(PATH), s.info.get("schema")]
        async with db.session() as s:  # the gate's way: found, not bound
            found = await service.access_token(s, p["plain"])
            seen += [found is not None, await s.scalar(PATH), s.info.get("schema")]
        async with db.session() as s:  # its creator is a viewer now: refused, and unbound again
            found = await service.access_token(s, p["demoted"], bind_company=True)
            seen += [found, await s.scalar(PATH), s.info.get("schema")]
        return [p["mine"].schema_name, *seen]

    schema, *seen = with_database(db_url, go)
    unbound = '"$user", public'
    assert seen == [True, 1, schema, schema,
                    None, unbound, None,
                    True, schema, schema,
                    True, unbound, None,
                    None, "", None]


def test_pages_and_api_calls_bind_without_a_statement_of_their_own(base_url: str) -> None:
    with company_with_api(base_url, "Round Trips Co", "rt") as (browser, slug, api):
        client = api.post("/api/v1/clients", json={"last_name": "Кругов"}).json()["id"]
        bind_alone = "SELECT set_config('search_path'"
        for page in (f"/t/{slug}/clients", f"/t/{slug}/clients/{client}"):
            with statements_sent() as seen:
                browser.get(page).raise_for_status()
            assert seen and not [s for s, _auto in seen if s.startswith(bind_alone)], page
        with statements_sent() as seen:
            api.get(f"/api/v1/clients/{client}").raise_for_status()
        assert seen and not [s for s, _auto in seen if s.startswith(bind_alone)]

        # A write: the gate checks the token in autocommit (no BEGIN/COMMIT), then the request's
        # transaction binds itself when it begins.
        with statements_sent() as seen:
            api.post(f"/api/v1/clients/{client}/operations", json={
                "kind": "sale", "amount": "10.00", "occurred_on": "2026-01-05"}).raise_for_status()
        tokens = [auto for s, auto in seen if "FROM shared.api_tokens" in s]
        assert tokens == [True]
        assert [s for s, auto in seen if s.startswith(bind_alone) and not auto]


def test_refused_requests_give_their_connection_back_at_once(base_url: str, db_url: str, caplog) -> None:
    """tenant_ctx and api_ctx refuse after the db dependency opened its transaction, and Litestar never
    resumes that dependency: its connection stayed checked out until the collector finalised the
    generator, which logged "aclose(): asynchronous generator is already running" and SQLAlchemy's
    "non-checked-in connection" on the way."""
    with company_with_api(base_url, "Refusing Co", "r") as (owner, slug, api):
        stranger = Browser(base_url)
        stranger.signup("Stranger Co")
        sql(db_url, "UPDATE shared.tenants SET status = 'suspended' WHERE slug = :s", {"s": slug})
        try:
            with caplog.at_level(logging.WARNING):
                for _ in range(5):
                    assert stranger.get(f"/t/{slug}/clients").status_code == 404
                    assert owner.get(f"/t/{slug}/clients").status_code == 403
                    assert api.get("/api/v1/clients").status_code == 403
                    assert api.get("/api/v1/clients", headers={"Authorization": "Bearer nope"}).status_code == 401
                gc.collect()
                time.sleep(0.3)  # the collector's finalisers run on the server's loop
        finally:
            stranger.close()
    assert [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.WARNING] == []
