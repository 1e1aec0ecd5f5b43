"""The test kit: real PostgreSQL and Redis for this run, a live server, and helpers.

With TEST_DATABASE_URL / TEST_REDIS_URL the run uses those services; otherwise it starts the
embedded ones in a temporary directory. Either way it creates its own database (and its own Redis
key prefix) and removes them at the end. It never touches .data/.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
import tempfile
import threading
import time
from pathlib import Path

import httpx

RUN_ID = secrets.token_hex(4)
TMP = Path(tempfile.mkdtemp(prefix="kt-"))
DB_NAME = f"kt_test_{RUN_ID}"
PREFIX = f"kt_test_{RUN_ID}"
_owned: list = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin_pg_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from saas.embedded import start_postgres

    return start_postgres(TMP / "data").replace("/kartoteka?", "/postgres?")


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    from saas.embedded import start_redis

    url, proc = start_redis(TMP / "data")
    _owned.append(proc)
    return url


def _with_db(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _create_db(admin: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    await conn.close()


async def _drop_db(admin: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await conn.close()


_env: dict[str, object] = {}


def prepare() -> dict[str, object]:
    """Start (or reach) the services, create this run's database and migrate it: once, on first use.

    Nothing happens at import, so `pytest tests/unit` never starts PostgreSQL."""
    if _env:
        return _env
    admin = _admin_pg_url()
    asyncio.run(_create_db(admin))
    _env.update(ADMIN_PG=admin, DATABASE_URL=_with_db(admin, DB_NAME))
    _env.update(REDIS_URL=_redis_url(), PORT=_free_port())
    os.environ.update(
        SAAS_ENV="test", DATABASE_URL=str(_env["DATABASE_URL"]), REDIS_URL=str(_env["REDIS_URL"]),
        REDIS_PREFIX=PREFIX, DATA_DIR=str(TMP / "data"), HOST="127.0.0.1", PORT=str(_env["PORT"]),
        BASE_URL=f"http://127.0.0.1:{_env['PORT']}",
    )
    _migrate()
    return _env


def __getattr__(name: str) -> object:
    """ADMIN_PG, DATABASE_URL, REDIS_URL and PORT prepare the run when first read."""
    if name in ("ADMIN_PG", "DATABASE_URL", "REDIS_URL", "PORT"):
        return prepare()[name]
    raise AttributeError(name)


def _migrate() -> None:
    from saas.core.db import Database
    from saas.admin.migrate import migrate_all

    async def go() -> None:
        db = Database(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://"))
        await migrate_all(db.engine, echo=lambda _m: None)
        await db.dispose()

    asyncio.run(go())


def cleanup() -> None:
    import redis

    if not _env:
        shutil.rmtree(TMP, ignore_errors=True)
        return

    with contextlib.suppress(Exception):  # cleanup is best effort
        r = redis.Redis.from_url(str(_env["REDIS_URL"]))
        for pattern in (f"{PREFIX}*", f"rq:*{PREFIX}*"):
            for key in r.scan_iter(pattern, count=1000):
                r.delete(key)
    asyncio.run(_drop_db(str(_env["ADMIN_PG"])))
    for proc in _owned:
        from saas.embedded import stop_process

        stop_process(proc)
    shutil.rmtree(TMP, ignore_errors=True)


class LiveServer:
    def __init__(self, port: int) -> None:
        import uvicorn

        from saas.app import create_app
        from saas.core.config import get_settings

        get_settings.cache_clear()
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the live server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Browser(httpx.Client):
    """An httpx client that behaves like a browser form user: cookies, CSRF field, Origin."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url=base_url, follow_redirects=False, timeout=30,
                         headers={"Accept-Language": "en", "Origin": base_url})

    def csrf(self) -> str:
        token = self.cookies.get("csrftoken")
        if not token:
            self.get("/login")
            token = self.cookies.get("csrftoken")
        return token

    def form(self, path: str, data: dict | None = None, **kwargs) -> httpx.Response:
        return self.post(path, data={**(data or {}), "_csrf_token": self.csrf()}, **kwargs)

    def signup(self, company: str, email: str | None = None, password: str = "correct horse 1") -> str:
        email = email or f"{secrets.token_hex(4)}@example.com"
        r = self.form("/signup", {"company": company, "name": "Test Owner", "email": email, "password": password})
        assert r.status_code == 303, r.text
        self.email, self.password = email, password
        return r.headers["location"].split("/")[2]  # /t/{slug}/


def cli(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    prepare()  # the CLI reads this run's database and Redis from the environment
    return subprocess.run([sys.executable, "-m", "saas.cli", *args], input=input, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@contextlib.contextmanager
def company_with_api(base_url: str, company: str, token_name: str):
    """(browser, slug, api): a new company's signed-in owner and an httpx client with an owner API token;
    both closed after."""
    b = Browser(base_url)
    slug = b.signup(company)
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", token_name).stdout.strip()
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                       timeout=30)
    yield b, slug, api
    api.close()
    b.close()


def platform_admin(password: str) -> str:
    """A new platform admin through `saas admin create`; returns the e-mail."""
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    r = cli("admin", "create", "--email", email, "--name", "Root", input=password + "\n")
    assert r.returncode == 0, r.stderr
    return email


@contextlib.contextmanager
def statements_sent(engine=None):
    """Every statement this process sends while the block runs, as (text, in autocommit); the live
    server runs in the tests' process. `engine`: only that (sync) engine's, else every engine's."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = engine if engine is not None else Engine
    seen: list[tuple[str, bool]] = []

    def record(conn, _cursor, statement, *_args) -> None:
        seen.append((statement, conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"))

    event.listen(target, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", record)


def sql(db_url: str, query: str, params: dict | None = None) -> list[tuple]:
    """Run one statement on the test database outside the app (for checks the UI does not show)."""
    from sqlalchemy import text

    from saas.core.db import Database

    async def go() -> list[tuple]:
        db = Database(db_url, pool_size=1)
        try:
            async with db.session() as s:
                result = await s.execute(text(query), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(go())


def audit_count(db_url: str, schema: str, action: str, object_id: int | None = None) -> int:
    """How many audit rows of `action` (on `object_id`, if given) a tenant schema holds."""
    query = f'SELECT count(*) FROM "{schema}".audit_events WHERE action = :a'  # noqa: S608 (a test's schema)
    params: dict[str, object] = {"a": action}
    if object_id is not None:
        query += " AND object_id = :o"
        params["o"] = object_id
    return sql(db_url, query, params)[0][0]


async def tenant_schema(db, slug: str) -> str:
    """The schema of the company with this slug, read from shared.tenants on `db` (a saas Database)."""
    from sqlalchemy import text

    async with db.session() as s:
        return (await s.execute(text("SELECT schema_name FROM shared.tenants WHERE slug = :s"),
                                {"s": slug})).scalar_one()


def with_database(db_url: str, fn):  # fn: async (Database) -> result
    """asyncio.run(fn(db)) with a Database on the test database, disposed after."""
    from saas.core.db import Database

    async def go():
        db = Database(db_url, pool_size=2)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(go())
