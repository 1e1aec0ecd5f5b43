"""The API skeleton: bearer tokens decide tenant and role."""
from __future__ import annotations

import httpx
import pytest

from testkit import Browser, cli


@pytest.fixture(scope="module")
def tenant(base_url: str) -> str:
    with Browser(base_url) as b:
        return b.signup("Api Co")


def api(base_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers)


def test_token_from_the_cli_reads_me(base_url: str, tenant: str) -> None:
    r = cli("tokens", "create", "--tenant", tenant, "--role", "viewer", "--name", "ci")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kt_")
    me = api(base_url, lines[0]).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {"tenant": tenant, "tenant_name": "Api Co", "role": "viewer"}


def test_missing_or_bad_token_is_401(base_url: str) -> None:
    assert api(base_url, None).get("/api/v1/me").status_code == 401
    r = api(base_url, "kt_not-a-real-token").get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]


def test_weak_role_is_403(base_url: str, tenant: str) -> None:
    viewer = cli("tokens", "create", "--tenant", tenant, "--role", "viewer", "--name", "v").stdout.strip()
    admin = cli("tokens", "create", "--tenant", tenant, "--role", "admin", "--name", "a").stdout.strip()
    assert api(base_url, viewer).get("/api/v1/tokens").status_code == 403
    listed = api(base_url, admin).get("/api/v1/tokens")
    assert listed.status_code == 200
    assert {"v", "a"} <= {t["name"] for t in listed.json()}
    assert all("token_hash" not in t for t in listed.json())


def test_revoked_token_is_401(base_url: str, tenant: str, db_url: str) -> None:
    import asyncio

    from sqlalchemy import text

    from saas.core.db import Database

    token = cli("tokens", "create", "--tenant", tenant, "--role", "owner", "--name", "gone").stdout.strip()
    assert api(base_url, token).get("/api/v1/me").status_code == 200

    async def revoke() -> None:
        db = Database(db_url, pool_size=1)
        async with db.session() as s:
            await s.execute(text("UPDATE shared.api_tokens SET revoked_at = now() WHERE name = 'gone'"))
        await db.dispose()

    asyncio.run(revoke())
    assert api(base_url, token).get("/api/v1/me").status_code == 401


def test_openapi_document_lists_the_api(base_url: str) -> None:
    doc = httpx.get(base_url + "/api/openapi.json").json()
    assert "/api/v1/me" in doc["paths"]
    assert not any(p.startswith("/t/") for p in doc["paths"])
