"""Shared fixtures. The environment (databases, Redis prefix, settings) is prepared by testkit."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import testkit
from testkit import Browser, LiveServer


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001
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
    proc = subprocess.Popen([sys.executable, "-m", "saas.cli", "worker"], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    from saas.config import normalise_database_url

    return normalise_database_url(testkit.DATABASE_URL)


