"""Playwright fixtures for the browser end-to-end tests.

The live server comes from the root conftest (`base_url`). Playwright cannot download its own
browsers here, so the tests drive the system Chromium (CHROMIUM_PATH, /usr/bin/chromium by default).
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict, base_url: str) -> dict:
    return {**browser_context_args, "locale": "en-US", "base_url": base_url}


@pytest.fixture(autouse=True)
def _screenshot(request: pytest.FixtureRequest, page: Page) -> Iterator[None]:
    """A full-page screenshot of every page still open when the test ends, for looking at later."""
    yield
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    ARTIFACTS.mkdir(exist_ok=True)
    browser = page.context.browser
    pages = [p for ctx in browser.contexts for p in ctx.pages] if browser else [page]
    for i, p in enumerate(pages, start=1):
        suffix = "" if i == 1 else f"-{i}"
        with contextlib.suppress(Exception):  # the page may be closed already; a screenshot is a nicety
            p.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
