"""The demo in one minute: from the landing page to a dashboard with charts; refresh, campaign, list."""
from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.conftest import ARTIFACTS

DEMO_WAIT_S = 240  # a guard against a hang, not a speed check (bench/ measures the demo's speed)


def test_try_the_demo_reaches_the_dashboard_and_builds_a_campaign(page: Page, worker) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto("/")
    page.get_by_role("button", name=re.compile("Try the demo")).click()
    expect(page.locator("#demo-progress progress")).to_be_visible()
    page.wait_for_url(re.compile(r"/t/[\w-]+/$"), timeout=DEMO_WAIT_S * 1000)
    expect(page.locator("svg.chart").first).to_be_visible(timeout=15000)
    expect(page.locator("html")).to_have_attribute("lang", "ru")  # the demo company speaks Russian
    # growth says which years it compares, in Russian; the monthly new/lost chart is there
    expect(page.locator(".growth-basis")).to_contain_text("Сравниваются только полные годы")
    expect(page.locator(".growth-cagr")).to_contain_text(re.compile(r"CAGR считается по полным годам \d{4}–\d{4}"))
    expect(page.locator("svg.chart[aria-label='Новые и потерянные клиенты по месяцам']")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "demo-dashboard-ru.png"), full_page=True)
    page.locator("button[name=lang][value=en]").click()  # the rest of the test reads English labels
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.locator("svg.chart").count() >= 5
    # the model the refresh chose on its backtest, and why
    expect(page.locator(".method-note")).to_contain_text(
        re.compile(r"(Pareto|BG|MBG)/NBD model .* It was chosen because"))
    page.screenshot(path=str(ARTIFACTS / "demo-dashboard.png"), full_page=True)

    # the refresh button's progress finishes with new numbers ("last refreshed" moves)
    stamp = page.locator("[data-computed]")
    before = stamp.get_attribute("data-computed")
    page.get_by_role("button", name=re.compile("Refresh now")).click()
    expect(page.locator("#refresh progress")).to_be_visible()
    expect(stamp).not_to_have_attribute("data-computed", before, timeout=90000)

    # a client card with scores
    page.get_by_role("link", name="Clients").first.click()
    page.locator("a.client-name").first.click()
    expect(page.locator(".score-panel")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "demo-client-card.png"), full_page=True)
    # the same card in Russian: status and segment side by side with their meanings, reasons in Russian
    page.locator("button[name=lang][value=ru]").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator(".score-panel .meanings dt").first).to_contain_text("Статус")
    expect(page.locator(".score-panel .meanings dt").nth(1)).to_contain_text("Сегмент (RFM)")
    expect(page.locator(".score-panel .reliability-reason")).not_to_contain_text(
        re.compile(r"payments|overdue|days|history"))
    page.screenshot(path=str(ARTIFACTS / "demo-client-card-ru.png"), full_page=True)
    page.locator("button[name=lang][value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # a campaign with three conditions: the live count changes, build, progress, list, CSV
    page.get_by_role("link", name="Campaigns").first.click()
    page.get_by_role("link", name=re.compile("New campaign")).click()
    expect(page.locator("[data-count=eligible]")).to_be_visible(timeout=15000)  # counted on opening, untouched
    page.fill("input[name=name]", "Spring sale")
    page.select_option("select[name=channel]", "none")
    count = page.locator("[data-count=eligible]")
    expect(count).to_be_visible(timeout=15000)
    everyone_text = count.inner_text()
    everyone = int(re.sub(r"\D", "", everyone_text))
    page.check("input[name=g0_status][value=active]")
    page.check("input[name=g0_status][value=at_risk]")
    page.fill("input[name=g0_revenue_min]", "1000")
    page.fill("input[name=g0_deals_min]", "2")
    expect(count).not_to_have_text(everyone_text, timeout=15000)
    page.wait_for_load_state("networkidle")
    narrowed = int(re.sub(r"\D", "", count.inner_text()))
    assert 0 < narrowed < everyone
    expect(page.locator("#sample ol.sample li")).to_have_count(min(10, narrowed))  # the best, in a second request
    page.screenshot(path=str(ARTIFACTS / "demo-campaign-builder.png"), full_page=True)
    page.fill("input[name=size]", "50")
    page.get_by_role("button", name="Save and build the list").click()
    expect(page.locator(".badge", has_text="ready")).to_be_visible(timeout=90000)
    page.get_by_role("link", name="Open the list").click()
    expect(page.locator("table tbody tr")).to_have_count(50)
    page.screenshot(path=str(ARTIFACTS / "demo-campaign-list.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    content = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    members = page.locator("table tbody tr").count()
    controls = page.locator("table tbody .badge", has_text="control").count()
    assert len(content) - 1 == members - controls
