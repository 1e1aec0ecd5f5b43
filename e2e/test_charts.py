"""Charts on a phone and a laptop, in Russian and English: the dashboard and the validation page of
a demo company never scroll sideways, no chart text leaves its SVG, and every chart says what it shows."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import ARTIFACTS

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}

# Each chart's texts against its viewBox (user units, so the SVG's scaling does not matter), and
# whatever sticks out of the page on the right, to name the culprit when the page scrolls sideways.
MEASURE = """() => {
  const out = {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
               wide: [], charts: []};
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 0.5 && !el.closest('.table-scroll'))
      out.wide.push(el.tagName + '.' + el.className.baseVal + el.className + ' ' + Math.round(r.right));
  }
  for (const svg of document.querySelectorAll('svg[role=img]')) {
    if (!svg.getBoundingClientRect().width) continue;  // folded away: nothing drawn to measure
    const vb = svg.viewBox.baseVal;
    const chart = {label: svg.getAttribute('aria-label') || '', role: svg.getAttribute('role'),
                   marks: svg.querySelectorAll('rect, circle').length,
                   titled: svg.querySelectorAll('rect > title, g > title').length, outside: []};
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBBox();
      if (b.x < vb.x - 0.5 || b.y < vb.y - 0.5 || b.x + b.width > vb.x + vb.width + 0.5
          || b.y + b.height > vb.y + vb.height + 0.5)
        chart.outside.push(t.textContent + ' ' + [b.x, b.y, b.width, b.height].map(Math.round).join(','));
    }
    out.charts.push(chart);
  }
  return out;
}"""


@pytest.fixture(scope="module")
def demo(browser: Browser, base_url: str, worker) -> Iterator[dict[str, Any]]:
    """One demo company for the module: its dashboard's address and the signed-in browser state."""
    context = browser.new_context(base_url=base_url, locale="en-US")
    page = context.new_page()
    page.goto("/")
    page.get_by_role("button", name=re.compile("Try the demo")).click()
    page.wait_for_url(re.compile(r"/t/[\w-]+/$"), timeout=240_000)
    expect(page.locator("svg.chart").first).to_be_visible(timeout=15_000)
    yield {"url": page.url, "state": context.storage_state()}
    # the language is kept on the demo's owner: leave it Russian, as the demo starts, for later tests
    page.goto(page.url)
    if page.locator("html").get_attribute("lang") != "ru":
        page.locator("button[name=lang][value=ru]").first.click()
        expect(page.locator("html")).to_have_attribute("lang", "ru")
    context.close()


def open_as(browser: Browser, base_url: str, demo: dict[str, Any], size: str, lang: str) -> Page:
    context = browser.new_context(base_url=base_url, viewport=SIZES[size], storage_state=demo["state"])
    page = context.new_page()
    page.goto(demo["url"])
    if page.locator("html").get_attribute("lang") != lang:
        page.locator(f"button[name=lang][value={lang}]").first.click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
    return page


def check_page(page: Page, name: str) -> dict[str, Any]:
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"charts-{name}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"charts-{name}-top.png"))
    for i, card in enumerate(page.locator("main section.card").all()):  # readable pieces of a long page
        card.screenshot(path=str(ARTIFACTS / f"charts-{name}-{i}.png"))
    m = page.evaluate(MEASURE)
    assert m["scrollWidth"] <= m["innerWidth"], (name, m["scrollWidth"], m["wide"][:8])
    assert m["charts"], name
    for chart in m["charts"]:
        assert chart["role"] == "img" and len(chart["label"]) >= 5, (name, chart)
        assert chart["outside"] == [], (name, chart["label"], chart["outside"])
        assert chart["titled"] >= 1, (name, chart["label"])
    return m


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_dashboard_charts_fit(browser: Browser, base_url: str, demo: dict[str, Any], size: str, lang: str) -> None:
    page = open_as(browser, base_url, demo, size, lang)
    m = check_page(page, f"dashboard-{size}-{lang}")
    assert len(m["charts"]) >= 7  # years, active, ytd, months, new/lost, status, segments, revenue, cohorts
    # the long Russian segment names are whole, not clipped at the left edge
    segments = page.locator("svg[data-chart=hbars]:visible").nth(1 if page.locator(".growth-ytd").count() else 0)
    if lang == "ru":
        expect(segments).to_contain_text("Потенциально лояльные")
    # a year axis of counts prints each tick once
    ticks = page.locator("svg[data-chart=bars]:visible").first.locator("text[text-anchor=end]").evaluate_all(
        "els => els.map(e => e.textContent)")
    assert len(ticks) == len(set(ticks)) >= 2, ticks
    # the numbers behind a chart, one click away
    table = page.locator("details.chart-data").nth(1)
    table.locator("summary").click()
    expect(table.locator("table tbody tr").first).to_be_visible()
    table.screenshot(path=str(ARTIFACTS / f"charts-dashboard-{size}-{lang}-table.png"))
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.context.close()


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_validation_chart_fits(browser: Browser, base_url: str, demo: dict[str, Any], size: str, lang: str) -> None:
    page = open_as(browser, base_url, demo, size, lang)
    page.goto(demo["url"] + "analytics/validation")
    expect(page.locator(".validation-chart svg[role=img]:visible")).to_have_count(1)
    m = check_page(page, f"validation-{size}-{lang}")
    assert m["charts"][0]["titled"] >= 16  # a value on every bar of 0…7+ repeat purchases
    page.context.close()
