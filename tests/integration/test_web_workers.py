"""`saas web --workers 2` (issue 17): two processes share the port, both answer, and a session made
through one is valid through the other (sessions live in Redis, not in a process)."""
from __future__ import annotations

import time

import httpx
import psutil

from testkit import Browser
from tests.integration.processes import Stack, wait_for


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def test_two_web_workers_answer_and_share_sessions() -> None:
    stack = Stack()
    try:
        port = __import__("testkit")._free_port()
        url = f"http://127.0.0.1:{port}"
        parent = stack._spawn(["web", "--workers", "2"], {"PORT": str(port), "BASE_URL": url})

        def up() -> bool:
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "the web server")
        # uvicorn's supervisor and its worker processes (multiprocessing also starts a resource tracker)
        workers = wait_for(lambda: [p for p in psutil.Process(parent.pid).children(recursive=True)
                                    if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]
                           if len(psutil.Process(parent.pid).children()) >= 2 else None, 30, "two workers")
        assert len(workers) == 2, [p.cmdline() for p in workers]
        before = {p.pid: _cpu(p) for p in workers}

        user = Browser(url)
        slug = user.signup("Two Processes Co")
        # Each request on a new connection: the kernel hands connections to either process.
        for _ in range(60):
            with httpx.Client(base_url=url, cookies=user.cookies, timeout=10) as fresh:
                page = fresh.get(f"/t/{slug}/")
                assert page.status_code == 200 and "Two Processes Co" in page.text
        time.sleep(0.2)
        used = {pid: _cpu(psutil.Process(pid)) - t for pid, t in before.items()}
        assert all(v > 0.05 for v in used.values()), used  # both processes served pages
    finally:
        stack.stop()
