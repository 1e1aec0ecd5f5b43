"""Shared fixtures. The environment (databases, Redis prefix, settings) is prepared by testkit."""
from __future__ import annotations

import os
import subprocess
import sys

from pathlib import Path

import pytest

import testkit
from saas.wiring import wire
from testkit import Browser, LiveServer

wire()  # the suite is a composition root too: services called directly need the hooks


WORKER_LOG = Path(__file__).resolve().parent / "test-artifacts" / "worker.log"


def pytest_collection_finish(session) -> None:
    """Services and the run's database only when a test outside tests/unit will run."""
    if any("tests/unit/" not in item.nodeid for item in session.items):
        testkit.prepare()


def pytest_sessionfinish(session, exitstatus) -> None:
    testkit.cleanup()


# ---- live server and worker ----------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server() -> LiveServer:
    server = LiveServer(testkit.PORT)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    return live_server.url


@pytest.fixture(scope="session")
def worker():
    """A real RQ worker process on this run's queue."""
    WORKER_LOG.parent.mkdir(exist_ok=True)
    with WORKER_LOG.open("ab") as log:  # kept: a failed job's traceback is read here, not lost
        proc = subprocess.Popen([sys.executable, "-m", "saas.cli", "worker"], env=os.environ.copy(),
                                stdout=log, stderr=subprocess.STDOUT)
    yield proc
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def http(base_url: str) -> Browser:
    with Browser(base_url) as b:
        yield b


@pytest.fixture
def make_http(base_url: str):
    made: list[Browser] = []

    def make() -> Browser:
        b = Browser(base_url)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture(scope="session")
def db_url() -> str:
    from saas.core.config import normalise_database_url

    return normalise_database_url(testkit.DATABASE_URL)


