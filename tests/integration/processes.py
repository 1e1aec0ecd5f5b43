"""Real processes for the fault tests: web servers and RQ workers of the product, each in its own
session (so a test can SIGKILL a worker's whole tree), with an own Redis prefix per stack so no
other test's worker takes their jobs."""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

import testkit


class Stack:
    """Web processes and workers of one deployment: same database, same Redis, same prefix."""

    def __init__(self, **env: str) -> None:
        self.env = {**os.environ, "REDIS_PREFIX": f"{testkit.PREFIX}_{secrets.token_hex(3)}", **env}
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        path = testkit.TMP / f"{args[0]}-{len(self.procs)}-{secrets.token_hex(2)}.log"
        with open(path, "wb") as log:  # the child writes through its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "-m", "saas.cli", *args], env={**self.env, **env},
                                    start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = str(path)
        self.procs.append(proc)
        return proc

    def web(self, timeout: float = 30) -> str:
        port = testkit._free_port()
        url = f"http://127.0.0.1:{port}"
        proc = self._spawn(["web"], {"PORT": str(port), "BASE_URL": url})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the web process exited: " + Path(proc.log_path).read_text()[-2000:]
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the web process did not start")

    def worker(self, *, burst: bool = False, grace: int = 5) -> subprocess.Popen:
        """A worker that notices a dead peer's job within seconds: a heartbeat every second, lapsing
        after `grace` more, registries cleaned every second."""
        env = {"RQ_JOB_MONITORING_INTERVAL": "1", "RQ_HEARTBEAT_GRACE": str(grace), "RQ_MAINTENANCE_INTERVAL": "1",
               "RQ_WORKER_TTL": "16"}  # RQ blocks on the queue for TTL - 15 s between maintenance runs
        return self._spawn(["worker", *(["--burst"] if burst else [])], env)

    def stop(self, procs: list[subprocess.Popen] | None = None) -> None:
        procs = self.procs if procs is None else procs
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                kill_tree(proc)

    def stop_workers(self) -> None:
        self.stop([p for p in self.procs if "worker" in p.args])


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a worker and everything it started (RQ's work horse runs in its own process group)."""
    assert proc.poll() is None, "the process had already exited"
    try:
        tree = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        return
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    proc.wait(10)


def wait_for(check, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
