"""The SVG charts: tick choice, labels that fit their box, a text alternative and a value on every mark."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date

import pytest

from saas.analytics import charts, growth
from saas.analytics.routes import build_charts
from saas.core.i18n import get_locale, set_locale

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _locale() -> Iterator[None]:
    before = get_locale()  # restored after: a later test formats numbers in the current locale
    set_locale("en")
    yield
    set_locale(before)


def svgs(markup: str) -> list[ET.Element]:
    """Every chart drawing in a chart's markup (the card's and the phone's)."""
    return [ET.fromstring(m)  # noqa: S314 - our own markup, parsed to check it
            for m in re.findall(r"<svg\b.*?</svg>", str(markup), flags=re.S)]


def view_box(svg: ET.Element) -> tuple[float, float]:
    _x, _y, w, h = (float(v) for v in svg.get("viewBox", "").split())
    return w, h


def text_extents(svg: ET.Element) -> Iterator[tuple[str, float, float, float]]:
    """(text, left, right, baseline) of every <text>, by the same width estimate the layout uses,
    or the squeezed width where it was squeezed."""
    for t in svg.iter(f"{SVG}text"):
        size = float(t.get("font-size", charts.FONT))
        width = float(t.get("textLength") or charts.text_width(t.text or "", size))
        x = float(t.get("x", 0))
        left = {"start": x, "middle": x - width / 2, "end": x - width}[t.get("text-anchor", "start")]
        yield t.text or "", left, left + width, float(t.get("y", 0))


def assert_fits(markup: str) -> None:
    for svg in svgs(markup):
        w, h = view_box(svg)
        for text, left, right, baseline in text_extents(svg):
            assert left >= -0.5 and right <= w + 0.5, (text, left, right, w)
            assert 0 < baseline <= h, (text, baseline, h)


def y_ticks(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "end"]


# ---- ticks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("high", [1, 2, 3, 4, 5, 7])
def test_small_counts_give_distinct_whole_ticks(high: int) -> None:
    ticks = charts.nice_ticks(0, high, integer=True)
    assert all(t == int(t) for t in ticks)
    assert len(ticks) == len(set(ticks)) >= 2
    assert ticks[0] == 0 and ticks[-1] >= high
    labels = [charts.fmt_tick(t) for t in ticks]
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize(("low", "high", "step"), [(0, 1250, 500), (0, 2666, 1000), (0, 33_866_190, 10_000_000),
                                                   (-420, 250, 200), (0, 0.37, 0.1), (0, 96, 20)])
def test_large_ranges_give_nice_steps(low: float, high: float, step: float) -> None:
    ticks = charts.nice_ticks(low, high)
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert steps == {step}
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    assert round(mantissa, 9) in (1, 2, 5)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 7


def test_flat_and_empty_ranges_still_make_an_axis() -> None:
    assert charts.nice_ticks(0, 0, integer=True) == [0, 1]
    assert len(charts.nice_ticks(5, 5)) >= 2


def test_a_small_count_chart_never_repeats_an_axis_label() -> None:
    markup = charts.bars(["2023", "2024", "2025"], {"new": [0, 1, 2]}, {}, "New clients")
    for svg in svgs(markup):
        ticks = y_ticks(svg)
        assert ticks == ["0", "1", "2"]


# ---- labels that fit ---------------------------------------------------------------------------


def test_text_width_grows_with_length_and_size() -> None:
    assert charts.text_width("Потенциально лояльные", 12) > charts.text_width("Loyal", 12)
    assert charts.text_width("abc", 24) == 2 * charts.text_width("abc", 12)


def test_wrap_keeps_every_word_and_respects_the_width() -> None:
    lines = charts.wrap("Потенциально лояльные клиенты", 120)
    assert " ".join(lines) == "Потенциально лояльные клиенты" and len(lines) == 2
    assert charts.text_width(lines[0]) <= 120


def test_a_long_russian_segment_name_fits_inside_the_view_box() -> None:
    set_locale("ru")
    rows = [("Потенциально лояльные", 282), ("Чемпионы", 786), ("Нельзя потерять совсем никогда", 141)]
    markup = charts.hbars(rows, "Размеры сегментов")
    assert_fits(markup)
    drawn = [svgs(markup)[0], svgs(markup)[1]]
    for svg in drawn:  # the whole name is there, on one line or two
        texts = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
        assert "Потенциально" in texts and "лояльные" in texts
    phone = svgs(markup)[1]
    assert view_box(phone)[0] == charts.NARROW
    assert any(t.text == "Нельзя потерять" for t in phone.iter(f"{SVG}text"))  # wrapped on the phone


def test_money_values_and_month_labels_fit() -> None:
    set_locale("ru")
    assert_fits(charts.hbars([("Чемпионы", 33_866_190), ("Лояльные", 0)], "Выручка",
                             value_format=lambda v: f"{v:,.2f} ₽"))
    months = [f"{m} 2{y}" for y in range(3, 6) for m in ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг",
                                                         "сен", "окт", "ноя", "дек")]
    markup = charts.bars(months, {"new": list(range(36)), "lost": list(range(36))}, {}, "Новые и потерянные",
                         negative=("lost",))
    assert_fits(markup)
    for svg in svgs(markup):  # thinned, never overlapping, and the latest month is always named
        below = [(left, right, text) for text, left, right, base in text_extents(svg) if base > view_box(svg)[1] - 12]
        assert below[-1][2] == months[-1]
        assert all(a[1] + 4 <= b[0] for a, b in zip(below, below[1:], strict=False))
    assert_fits(charts.line(months, list(range(36)), "Активные"))


def test_the_cohort_map_is_as_wide_as_its_row_labels() -> None:
    set_locale("ru")
    rows = ["1 кв. 2024 (1 189)", "2 кв. 2024 (259)"]
    markup = charts.heatmap(rows, [[0.26, 0.21], [0.27, None]], ["+1", "+2"], "Удержание")
    assert_fits(markup)


def test_the_status_bar_prints_a_name_only_where_it_fits() -> None:
    markup = charts.stacked([("new", 13, "#000"), ("lost", 1, "#111"), ("at risk", 86, "#222")], "Status mix")
    assert_fits(markup)
    for svg in svgs(markup):
        for text, left, right, _b in text_extents(svg):
            rect = next(r for r in svg.iter(f"{SVG}rect") if float(r.get("x", 0)) <= left + 1
                        and left < float(r.get("x", 0)) + float(r.get("width", 0)))
            assert right <= float(rect.get("x", 0)) + float(rect.get("width", 0)), text


# ---- text alternative, hover values, locale ----------------------------------------------------


def snapshot() -> dict:
    """A dashboard's data as the refresh stores it (only what the charts read)."""
    years = [{"key": y, "active": a, "new": n, "reactivated": r, "lost": lo, "retained": 0, "net": 0, "rate": None}
             for y, a, n, r, lo in [(2023, 688, 688, 0, 0), (2024, 1275, 1010, 3, 426), (2025, 1933, 1370, 9, 721)]]
    years.append({"key": 2026, "active": 2666, "new": 900, "reactivated": 2, "lost": 400, "retained": 0, "net": 0,
                  "rate": None, "partial": True})
    months = [{"key": 2025 * 12 + m, "active": 100 + m, "new": m, "lost": m // 2} for m in range(11)]
    return {"cache": {"years": years, "months": months, "cohorts": [(2024 * 4, 189, [1.0, 0.26, 0.21]),
                                                                   (2024 * 4 + 1, 259, [1.0, 0.27])],
                      "ytd": {"active": 2666, "last_year_active": 1735, "through": "2026-12-04",
                              "last_year_through": "2025-12-04", "rate": 0.537}},
            "status": {"new": 635, "active": 1666, "at_risk": 2106, "lost": 593},
            "segments": {"champions": (786, 33_866_190.0), "potential_loyalists": (282, 1_914_510.0)}}


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_dashboard_chart_has_a_name_a_summary_and_a_title_per_mark(lang: str) -> None:
    set_locale(lang)
    drawn = build_charts(snapshot(), "RUB")
    assert set(drawn) == {"years", "active_years", "ytd", "months", "months_new", "status", "segments",
                          "segment_revenue", "cohorts"}
    for key, markup in drawn.items():
        assert_fits(markup)
        for svg in svgs(markup):
            assert svg.get("role") == "img" and svg.get("aria-label"), key
            assert svg.find(f"{SVG}title") is not None, key
            marks = [e for e in svg.iter() if e.tag in (f"{SVG}rect", f"{SVG}g")]
            assert marks and all(m.find(f"{SVG}title") is not None for m in marks), key
            desc = svg.find(f"{SVG}desc")  # the numbers in brief, for a screen reader
            assert desc is not None and re.search(r"\d", desc.text or ""), key
        if key not in ("status", "years", "ytd"):  # those have their numbers beside them on the page
            assert "<details" in str(markup) and "<table" in str(markup), key
            assert '<th scope="col"></th>' not in str(markup), key  # every column has a heading


def test_the_running_month_and_year_are_left_out() -> None:
    data = snapshot()
    drawn = build_charts(data, "RUB")
    card = svgs(drawn["active_years"])[0]
    assert "2026" not in [t.text for t in card.iter(f"{SVG}text")]  # the partial year is not drawn
    months = svgs(drawn["months"])[0]
    last_point = [g.find(f"{SVG}title") for g in months.iter(f"{SVG}g")][-1]
    assert last_point is not None and (last_point.text or "").startswith("Nov 25")  # the last complete month


def test_the_monthly_series_stops_at_the_last_complete_month() -> None:
    """Where the running month is dropped: its few days would draw a plunge at the chart's end."""
    today = date(2026, 12, 4)
    now = growth.month_key(today)
    rows = [(k, 100, 5, 90, 2) for k in range(now - 14, now)] + [(now, 12, 1, 10, 0)]
    months = growth.monthly(rows, date(2024, 1, 2), today)
    assert months[-1].key == now - 1 and all(p.active == 100 for p in months)


def test_numbers_follow_the_readers_locale() -> None:
    set_locale("ru")
    svg = svgs(charts.bars(["0", "1"], {"факт": [0.25, 1.5]}, {}, "Покупки"))[0]
    shown = [e.text or "" for e in svg.iter() if e.tag in (f"{SVG}text", f"{SVG}title")]
    assert "1 · факт: 1,5" in shown and "0,5" in shown  # a decimal comma in values and ticks
    assert not any(re.search(r"\d\.\d", s) for s in shown)
    assert "2 500" in str(charts.hbars([("a", 2500)], "x")).replace("\xa0", " ")
    set_locale("en")
    svg = svgs(charts.bars(["0", "1"], {"actual": [0.25, 1.5]}, {}, "Purchases"))[0]
    assert "1 · actual: 1.5" in [t.text for t in svg.iter(f"{SVG}title")]
