"""The embedded default: `saas run` with no service variables keeps its data across restarts."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from testkit import _free_port
from tests.integration.processes import wait_for


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX")}
    env.update(SAAS_ENV="development", DATA_DIR=str(data_dir), PORT=str(port), BASE_URL=f"http://127.0.0.1:{port}")
    return env


def _start(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "saas.cli", "run"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def healthy() -> bool:
        assert proc.poll() is None, "saas run exited early"
        try:
            r = httpx.get(f"{env['BASE_URL']}/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            return False
        body = r.json()
        assert (body["status"], body["database"], body["redis"]) == ("ok", "ok", "ok")
        # the embedded default is plain PostgreSQL 18
        assert body["engine"] == {"kind": "postgresql", "server_version": body["engine"]["server_version"]}
        assert body["engine"]["server_version"].startswith("18")
        return True

    wait_for(healthy, 120, "saas run to become healthy", every=0.3)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
    assert proc.wait(60) == 0


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    r = subprocess.run([sys.executable, "-m", "saas.cli", *args], env=env, input=stdin, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_run_restart_keeps_the_tenant() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="kte", dir="/tmp"))  # short: unix socket paths are limited
    env = _env(data_dir, _free_port())
    try:
        proc = _start(env)
        try:
            slug = _cli(env, "tenants", "create", "--name", "Embedded Co", "--owner-email", "emb@example.com",
                        stdin="embedded pass 1\n").strip()
            assert slug == "embedded-co"
        finally:
            _stop(proc)
        assert not (data_dir / "pg" / "postmaster.pid").exists(), "PostgreSQL still running after Ctrl-C"
        assert not (data_dir / "redis.sock").exists() or not _redis_alive(data_dir), "Redis still running"

        proc = _start(env)
        try:
            assert "embedded-co" in _cli(env, "tenants", "list")
            with httpx.Client(base_url=env["BASE_URL"], headers={"Origin": env["BASE_URL"]}) as web:
                web.get("/login")
                r = web.post("/login", data={"email": "emb@example.com", "password": "embedded pass 1",
                                             "_csrf_token": web.cookies["csrftoken"]})
                assert r.status_code == 303 and r.headers["location"] == "/t/embedded-co/"
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _redis_alive(data_dir: Path) -> bool:
    from saas.embedded import _alive

    return _alive(data_dir / "redis.sock")
