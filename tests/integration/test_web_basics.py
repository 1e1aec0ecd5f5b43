"""Security headers, health, error pages and the language switch."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx

from testkit import Browser, _free_port
from tests.integration.processes import wait_for


def test_csp_and_security_headers_on_200_404_and_500(base_url: str) -> None:
    for path, status in (("/", 200), ("/no-such-page", 404), ("/dev/error", 500)):
        r = httpx.get(base_url + path)
        assert r.status_code == status, path
        csp = r.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"


def test_500_page_shows_no_stack_trace(base_url: str) -> None:
    r = httpx.get(base_url + "/dev/error", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Traceback" not in r.text and "deliberate error" not in r.text
    assert "Something went wrong on our side" in r.text


def test_405_also_carries_the_headers(base_url: str) -> None:
    r = httpx.put(base_url + "/healthz")
    assert r.status_code == 405 and "content-security-policy" in r.headers


def test_healthz_reports_both_services(base_url: str) -> None:
    r = httpx.get(base_url + "/healthz")
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("status", "database", "redis")} == {"status": "ok", "database": "ok", "redis": "ok"}
    # the engine, detected at start: the suite's server is plain PostgreSQL (tests/integration/test_citus.py: Citus)
    assert body["engine"]["kind"] == "postgresql" and body["engine"]["server_version"][:2].isdigit()


def test_healthz_is_503_when_redis_is_down() -> None:
    port, dead = _free_port(), _free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{dead}/0"}
    proc = subprocess.Popen([sys.executable, "-m", "saas.cli", "web", "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answered() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except httpx.HTTPError:
                return None

        r = wait_for(answered, 30, "the web process to answer")  # any answer, 503 included
        assert r.status_code == 503
        body = r.json()
        assert body["database"] == "ok" and body["redis"].startswith("down")
        # A page that does not need Redis still renders.
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)


def test_language_switch(http: Browser) -> None:
    http.get("/")
    r = http.form("/lang", {"lang": "ru", "next": "/login"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = http.get("/login").text
    assert '<html lang="ru">' in page and "Войти" in page
    http.form("/lang", {"lang": "en", "next": "/"})
    page = http.get("/login").text
    assert '<html lang="en">' in page and "Log in" in page


def test_language_follows_the_user_across_logins(http: Browser, make_http) -> None:
    http.signup("Lang Co")
    http.form("/lang", {"lang": "ru", "next": "/"})
    other = make_http()  # a new device, English by its browser
    other.form("/login", {"email": http.email, "password": http.password})
    assert '<html lang="ru">' in other.get("/companies").text
