"""How good are these answers: the validation page with its chart in English and Russian, reached
from the dashboard; and a client card whose scores follow a paid debt without pressing Refresh."""
from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

from playwright.sync_api import Page, expect

from e2e.conftest import ARTIFACTS
from e2e.test_foundation import signup
from saas.analytics.scoring import refresh
from saas.clients.models import Client, Operation
from saas.clients.operations import refresh_all_metrics
from saas.core import clock
from saas.core.db import Database
from testkit import tenant_schema
from tests.integration import companies


def seed(db_url: str, slug: str) -> int:
    """1,200 simulated clients plus one who owes 8,000 for five months; one refresh. The debtor's id."""
    today = clock.today()

    async def go() -> int:
        db = Database(db_url, pool_size=2)
        try:
            schema = await tenant_schema(db, slug)
            await companies.write(db, schema, companies.pareto_company(1200, seed=21), today)
            async with db.session(schema) as s:
                debtor = Client(last_name="Должников", first_name="Пётр")
                s.add(debtor)
                await s.flush()
                for days in (500, 400, 300, 200):
                    s.add(Operation(client_id=debtor.id, kind="sale", occurred_on=today - timedelta(days=days),
                                    amount=Decimal(1500), due_on=today - timedelta(days=days - 14),
                                    paid_on=today - timedelta(days=days - 12)))
                s.add(Operation(client_id=debtor.id, kind="sale", occurred_on=today - timedelta(days=170),
                                amount=Decimal(8000), due_on=today - timedelta(days=156)))
                await s.flush()
                await refresh_all_metrics(s)
                await refresh(s, today=today)
                return debtor.id
        finally:
            await db.dispose()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps an event loop on this thread
        return pool.submit(asyncio.run, go()).result()


def test_validation_page_in_english_and_russian(page: Page, db_url: str) -> None:
    account = signup(page, "Validation Co")
    seed(db_url, account.slug)
    page.goto(f"/t/{account.slug}/")
    note = page.locator(".method-note")
    expect(note).to_contain_text(re.compile(r"(Pareto|BG|MBG)/NBD model"))
    expect(page.locator(".status-evidence li").first).to_contain_text(re.compile(r"bought again within 13 weeks"))
    note.get_by_role("link", name="How good are these answers?").click()
    expect(page).to_have_url(re.compile(r"/analytics/validation$"))
    expect(page.locator("h1")).to_have_text("How good are these answers")
    chart = page.locator(".validation-chart svg.chart")
    expect(chart).to_be_visible()
    assert chart.locator("rect").count() >= 16  # 0..7+ repeat purchases: actual and predicted bars
    expect(page.locator(".status-check table tbody tr")).to_have_count(4)
    expect(page.locator(".status-check")).to_contain_text("The order holds")
    expect(page.locator("table.models tr.chosen")).to_have_count(1)
    expect(page.locator(".clv-formula .formula")).to_contain_text("CLV = Σ")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "validation-en.png"), full_page=True)

    page.locator("button[name=lang][value=ru]").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("h1")).to_have_text("Насколько можно доверять этим ответам")
    expect(page.locator(".validation-chart svg.chart")).to_be_visible()
    expect(page.locator(".status-check")).to_contain_text("Порядок соблюдён")
    page.screenshot(path=str(ARTIFACTS / "validation-ru.png"), full_page=True)
    page.locator("button[name=lang][value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_card_scores_follow_a_paid_debt_without_a_refresh(page: Page, db_url: str) -> None:
    account = signup(page, "Paid Debt Co")
    debtor = seed(db_url, account.slug)
    page.goto(f"/t/{account.slug}/clients/{debtor}")
    reason = page.locator("#score-panel .reliability-reason")
    expect(reason).to_contain_text("overdue")
    page.evaluate("window.__stay = 42")  # no reload below: the marker survives htmx swaps only
    unpaid = page.locator("#operations tr", has=page.locator(".badge-bad"))
    unpaid.get_by_role("link", name="Edit").click()
    editing = page.locator("#operations tr.editing")
    editing.locator("input[name=paid_on]").fill(clock.today().isoformat())
    editing.get_by_role("button", name="Save").click()
    expect(page.locator("#operations .badge-bad")).to_have_count(0)
    expect(reason).not_to_contain_text("overdue")
    expect(page.locator("#score-panel .score-head")).to_contain_text(re.compile(r"Reliability: \w+"))
    assert page.evaluate("window.__stay") == 42
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "card-paid-debt.png"), full_page=True)
