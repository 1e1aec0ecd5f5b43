"""Server-rendered SVG charts: no external requests, no script, CSP-safe (attributes, not styles).

Why hand-written and not a library: our CSP allows no inline <style> or <script>, and pygal's SVG
carries both (its look is an embedded stylesheet, its tooltips JavaScript), so inlined it would lose
its styling and hover values, and as an <img> its text alternative. Browser libraries (Chart.js and
the like) draw on a canvas: nothing shows before JavaScript runs, and a canvas has no text for
screen readers. Our charts are five simple kinds, so ~350 lines that measure their labels, choose
1-2-5 ticks and print numbers in the reader's locale are less to keep than a dependency to bend.

Every chart is role="img", named by aria-label (its title) and described by a <desc> that sums up
its numbers; every bar, point and cell has a <title> (its value on hover, no script); and unless the
page prints the numbers next to it, a "Show as a table" <details> follows with the same figures.
Text widths are estimated from the characters and the font size (DejaVu Sans metrics, a wide
fallback font, so real fonts come out no wider) and the plot is laid out so no label leaves the
viewBox. Fluid charts are drawn twice, for a card and for a phone (see _responsive).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

from markupsafe import Markup

from saas.core.i18n import _, fmt_number, fmt_percent

COLORS = {"new": "#2f9e66", "active": "#2f5bea", "at_risk": "#d99a1e", "lost": "#d14343", "retained": "#8aa6f5",
          "reactivated": "#7cc4a4", "grid": "#e4e7ef", "text": "#596273", "ink": "#1c2233", "bar": "#2f5bea",
          "bar2": "#9bb4ff"}
PALETTE = ["#2f5bea", "#2f9e66", "#d99a1e", "#d14343", "#7c5cd6", "#1aa3b8", "#e0712b", "#8a94a6", "#c2417f",
           "#5a8f29", "#3d6fb6", "#b0b7c6"]
FONT = 12  # viewBox units; charts are drawn about as wide as a desktop card, so this is ~12 px there
WIDE, NARROW = 480, 320  # viewBox widths: a desktop card is ~520 px wide, a phone card ~310 px

# Advance widths in em, rounded up from DejaVu Sans (the widest common fallback).
_NARROW = set(" .,:;!|'`ilIjtf()[]{}-\u00a0\u202f")
_WIDE = set("mwMWжшщюыфЖШЩЮЫФ%—@")


def char_width(ch: str) -> float:
    if ch in _NARROW:
        return 0.36
    if ch in _WIDE:
        return 0.98
    if ch.isdigit():
        return 0.64
    if ch.isupper():
        return 0.76
    return 0.64


def text_width(text: str, size: float = FONT) -> float:
    """An upper estimate of the rendered width of `text` at `size`."""
    return sum(char_width(ch) for ch in text) * size


def wrap(text: str, max_width: float, size: float = FONT, max_lines: int = 2) -> list[str]:
    """Words into at most `max_lines` lines no wider than `max_width` where words allow; the last
    line takes the rest (a caller squeezes it with textLength if it is still too wide)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and text_width(candidate, size) > max_width and len(lines) < max_lines - 1:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current or not lines else lines


def nice_ticks(low: float, high: float, *, count: int = 5, integer: bool = False) -> list[float]:
    """Axis values covering [low, high] with a step of 1, 2 or 5 × 10^k, as close to `count` of them
    as such steps allow; whole steps for counts, so small ranges never print the same label twice."""
    low, high = min(low, high), max(low, high)
    if high - low < 1e-12:
        high = low + 1
    k = math.floor(math.log10((high - low) / max(count - 1, 1)))
    choices = []  # (how far from `count` ticks, how much wider than the data the axis is, step)
    for step in (m * 10.0 ** e for e in (k - 1, k, k + 1) for m in (1, 2, 5)):
        if integer and step < 1:
            continue
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        choices.append((abs(last - first + 1 - count), (last - first) * step, step))
    step = min(choices)[2] if choices else 1.0
    start, end = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(i * step, digits) + 0.0 for i in range(start, end + 1)]


def fmt_value(value: float) -> str:
    """A count as a whole number, anything else to one decimal, in the reader's locale."""
    value = float(value or 0)
    return fmt_number(round(value) if value.is_integer() else round(value, 1))


def fmt_tick(value: float) -> str:
    return ("−" if value < 0 else "") + fmt_number(abs(value))


def _text(x: float, y: float, text: str, *, size: float = FONT, anchor: str = "start", fill: str = COLORS["text"],
          fit: float | None = None) -> str:
    """One <text>; if it would be wider than `fit`, squeezed to exactly that width."""
    squeeze = ""
    if fit is not None and text_width(text, size) > fit:
        squeeze = f' textLength="{fit:.1f}" lengthAdjust="spacingAndGlyphs"'
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{squeeze}>'
            f"{escape(text)}</text>")


def _svg(width: float, height: float, label: str, summary: str, body: str, *, fluid: bool = True,
         kind: str = "", narrow: bool = False) -> Markup:
    """One chart. The accessible name is its title; the numbers in brief are its description."""
    width, height = math.ceil(width), math.ceil(height)
    size = 'width="100%"' if fluid else f'width="{width}" height="{height}"'
    desc = f"<desc>{escape(summary)}</desc>" if summary and summary != label else ""
    return Markup(  # noqa: S704 - label and summary are escaped here and every text in `body` where it is built
        f'<svg class="{"chart-narrow" if narrow else "chart"}" data-chart="{kind}" viewBox="0 0 {width} {height}" '
        f'{size} role="img" aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>{desc}{body}</svg>'
    )


Drawing = Callable[[int], tuple[float, str]]  # a width -> the height it needs and the SVG body


def _responsive(draw: Drawing, label: str, summary: str, kind: str) -> Markup:
    """The chart drawn twice, for a card (WIDE units across) and for a phone (NARROW): CSS shows one.
    Scaling one drawing down to a phone would shrink its text to 6 px; this keeps it about 11 px."""
    wide_h, wide = draw(WIDE)
    narrow_h, narrow = draw(NARROW)
    return (_svg(WIDE, wide_h, label, summary, wide, kind=kind)
            + _svg(NARROW, narrow_h, label, summary, narrow, kind=kind, narrow=True))


NUM = ' class="num"'


def scroll_box(inner: str, label: str) -> str:
    """A box that scrolls sideways on a narrow screen, reachable (and so scrollable) by keyboard."""
    return f'<div class="table-scroll" tabindex="0" role="region" aria-label="{escape(label)}">{inner}</div>'


def data_table(head: Sequence[str], rows: Sequence[Sequence[str]], label: str) -> Markup:
    """The chart's numbers as a table, folded away under "Show as a table"."""
    th = "".join(f'<th scope="col"{NUM if i else ""}>{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td{NUM}>{escape(c)}</td>' if i else f'<th scope="row">{escape(c)}</th>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return Markup(  # noqa: S704 - every cell is escaped above
        f'<details class="chart-data"><summary>{escape(_("Show as a table"))}</summary>'
        + scroll_box(f'<table class="table small"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>', label)
        + "</details>")


def _series_summary(label: str, labels: Sequence[str], series: Mapping[str, Sequence[float]],
                    fmt: Callable[[float], str]) -> str:
    if not labels:
        return label
    parts = [_("%(title)s, %(first)s – %(last)s.", title=label, first=labels[0], last=labels[-1])]
    for name, values in series.items():
        vals = [float(v or 0) for v in values]
        parts.append(_("%(name)s: from %(low)s to %(high)s, last %(last)s.", name=name, low=fmt(min(vals)),
                       high=fmt(max(vals)), last=fmt(vals[-1])))
    return " ".join(parts)


def _x_labels(labels: Sequence[str], centers: Sequence[float], slot: float, y: float, width: float) -> list[str]:
    """Category labels under the plot: every k-th, counted back from the latest so it is always
    named, kept inside the box, and moved one back where one would still touch its neighbour."""
    widest = max((text_width(lab) for lab in labels), default=0)
    every = max(1, math.ceil((widest + 8) / max(slot, 1e-6)))
    placed: list[tuple[float, float, str]] = []
    i = len(labels) - 1
    while i >= 0:
        half = text_width(labels[i]) / 2
        x = min(max(centers[i], half + 1), width - half - 1)
        if placed and x + half + 6 > placed[-1][0] - placed[-1][1]:
            i -= 1  # pushed in from the edge, the last label took more room: try the one before
            continue
        placed.append((x, half, labels[i]))
        i -= every
    return [_text(x, y, lab, anchor="middle") for x, _h, lab in reversed(placed)]


def _y_axis(ticks: Sequence[float], y_of: Callable[[float], float], left: float, right: float) -> list[str]:
    return [f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y_of(t):.1f}" y2="{y_of(t):.1f}" stroke="{COLORS["grid"]}"/>'
            + _text(left - 6, y_of(t) + FONT * 0.35, fmt_tick(t), anchor="end") for t in ticks]


def _whole(values: Sequence[float]) -> bool:
    return all(float(v or 0).is_integer() for v in values)


def bars(labels: Sequence[str], series: Mapping[str, Sequence[float]], colors: Mapping[str, str], label: str,
         *, height: int = 240, negative: Sequence[str] = (), table: bool = True,
         value_format: Callable[[float], str] = fmt_value, key: str = "") -> Markup:
    """Grouped bars per label; series named in `negative` are drawn below the axis (e.g. lost), in
    the same slots as the ones above, so a group is no wider than it needs to be."""
    every_value = [float(v or 0) for vals in series.values() for v in vals]
    up = max([0.0] + [float(v or 0) for k, vals in series.items() if k not in negative for v in vals])
    down = max([0.0] + [float(v or 0) for k, vals in series.items() if k in negative for v in vals])
    ticks = nice_ticks(-down, up, integer=_whole(every_value))
    lo, hi = ticks[0], ticks[-1]
    left = max(text_width(fmt_tick(t)) for t in ticks) + 10
    right, top, bottom = 6.0, 8.0, FONT + 12
    plot_h = height - top - bottom
    ups = [n for n in series if n not in negative]
    downs = [n for n in series if n in negative]
    slots = max(len(ups), len(downs), 1)

    def y_of(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    def draw(width: int) -> tuple[float, str]:
        parts = _y_axis(ticks, y_of, left, width - right)
        group_w = (width - left - right) / max(len(labels), 1)
        bar_w = group_w * 0.8 / slots
        zero = y_of(0)
        for gi, lab in enumerate(labels):
            x0 = left + gi * group_w + group_w * 0.1
            for names in (ups, downs):
                for si, name in enumerate(names):
                    v = float(series[name][gi] or 0)
                    h = abs(y_of(v) - zero)
                    y = zero if name in negative else zero - h
                    parts.append(f'<rect x="{x0 + si * bar_w:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 0.8):.1f}" '
                                 f'height="{h:.1f}" fill="{colors.get(name, COLORS["bar"])}" rx="1">'
                                 f"<title>{escape(lab)} · {escape(name)}: {escape(value_format(v))}</title></rect>")
        centers = [left + (gi + 0.5) * group_w for gi in range(len(labels))]
        parts += _x_labels(labels, centers, group_w, height - 8, width)
        parts.append(f'<line x1="{left:.1f}" x2="{width - right}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#98a2b3"/>')
        return height, "".join(parts)

    svg = _responsive(draw, label, _series_summary(label, labels, series, value_format), "bars")
    if not table:
        return svg
    rows = [[lab, *(value_format(float(series[n][i] or 0)) for n in series)] for i, lab in enumerate(labels)]
    return svg + data_table([key, *series], rows, label)


def line(labels: Sequence[str], values: Sequence[float], label: str, *, height: int = 200,
         color: str = COLORS["active"], name: str = "", table: bool = True,
         value_format: Callable[[float], str] = fmt_value, key: str = "") -> Markup:
    vals = [float(v or 0) for v in values]
    ticks = nice_ticks(min([0.0, *vals]), max([0.0, *vals]), integer=_whole(vals))
    lo, hi = ticks[0], ticks[-1]
    right, top, bottom = 8.0, 8.0, FONT + 12
    left = max(text_width(fmt_tick(t)) for t in ticks) + 10
    plot_h = height - top - bottom

    def y_of(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    def draw(width: int) -> tuple[float, str]:
        step = (width - left - right) / max(len(vals) - 1, 1)
        points = [(left + i * step, y_of(v)) for i, v in enumerate(vals)]
        parts = _y_axis(ticks, y_of, left, width - right)
        if points:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
            base = y_of(max(lo, 0))
            area = path + f" L{points[-1][0]:.1f},{base:.1f} L{points[0][0]:.1f},{base:.1f} Z"
            parts.append(f'<path d="{area}" fill="{color}" fill-opacity="0.08"/>'
                         f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            hit = max(3.0, min(8.0, step / 2))  # a target the pointer can find, not wider than its slot
            for (x, y), lab, v in zip(points, labels, vals, strict=True):
                parts.append(f'<g><circle cx="{x:.1f}" cy="{y:.1f}" r="{hit:.1f}" fill="transparent"/>'
                             f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>'
                             f"<title>{escape(lab)}: {escape(value_format(v))}</title></g>")
            parts += _x_labels(labels, [x for x, _y in points], step, height - 8, width)
        return height, "".join(parts)

    summary = _series_summary(label, labels, {name or label: vals}, value_format)
    svg = _responsive(draw, label, summary, "line")
    if not table:
        return svg
    return svg + data_table([key, name or label], [[lab, value_format(v)] for lab, v in zip(labels, vals, strict=True)],
                            label)


def stacked(parts_: Sequence[tuple[str, float, str]], label: str, *, height: int = 32, table: bool = True) -> Markup:
    """One horizontal bar split by share: (name, value, color). A name is printed inside its part
    only where it fits, else its share alone; the legend and the table carry the rest."""
    total = sum(float(v or 0) for _n, v, _c in parts_) or 1.0

    def draw(width: int) -> tuple[float, str]:
        x, out = 0.0, []
        for name, value, color in parts_:
            w = width * float(value or 0) / total
            share = fmt_percent(float(value or 0) / total)
            if w > 0:
                out.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{color}">'
                           f"<title>{escape(name)}: {escape(fmt_value(value))} ({escape(share)})</title></rect>")
                text = f"{name} {share}" if text_width(f"{name} {share}") + 12 <= w else share
                if text_width(text) + 12 <= w:
                    out.append(_text(x + 6, height / 2 + FONT * 0.35, text, fill="#fff"))
            x += w
        return height, "".join(out)

    summary = f"{label}: " + "; ".join(f"{n} {fmt_value(v)} ({fmt_percent(float(v or 0) / total)})"
                                       for n, v, _c in parts_)
    svg = _responsive(draw, label, summary, "stacked")
    if not table:
        return svg
    return svg + data_table([_("Status"), _("Clients"), _("Share")],
                            [[n, fmt_value(v), fmt_percent(float(v or 0) / total)] for n, v, _c in parts_], label)


def hbars(rows: Sequence[tuple[str, float]], label: str, *, color: str = COLORS["bar"],
          value_format: Callable[[float], str] = fmt_value, table: bool = True, head: str = "",
          key: str = "") -> Markup:
    """One bar per row, its name on the left (wrapped onto two lines when long) and its value after
    the bar; the name and value columns are as wide as their longest text needs."""
    line_h, pad, bar_h = FONT + 3, 6, FONT + 4
    values = [value_format(v) for _n, v in rows]
    value_w = max((text_width(v) for v in values), default=0) + 8
    top_value = max((float(v or 0) for _n, v in rows), default=0) or 1

    def draw(width: int) -> tuple[float, str]:
        name_w = min(max((text_width(n) for n, _v in rows), default=0), width * 0.42)
        label_w = name_w + 10
        bar_room = max(width - label_w - value_w, 20)
        out, y = [], 2.0
        for (name, value), shown in zip(rows, values, strict=True):
            lines = wrap(name, name_w)
            row_h = line_h * len(lines) + pad * 2
            first = y + row_h / 2 - line_h * (len(lines) - 1) / 2 + FONT * 0.35
            for k, text in enumerate(lines):
                out.append(_text(label_w - 8, first + k * line_h, text, anchor="end", fill=COLORS["ink"], fit=name_w))
            w = bar_room * float(value or 0) / top_value
            out.append(f'<rect x="{label_w:.1f}" y="{y + row_h / 2 - bar_h / 2:.1f}" width="{max(w, 1):.1f}" '
                       f'height="{bar_h:.1f}" fill="{color}" rx="2">'
                       f"<title>{escape(name)}: {escape(shown)}</title></rect>"
                       + _text(label_w + w + 5, y + row_h / 2 + FONT * 0.35, shown))
            y += row_h
        return y + 2, "".join(out)

    summary = f"{label}: " + "; ".join(f"{n} {v}" for (n, _v), v in zip(rows, values, strict=True))
    svg = _responsive(draw, label, summary, "hbars")
    if not table:
        return svg
    return svg + data_table([key, head or label], [[n, v] for (n, _v), v in zip(rows, values, strict=True)], label)


def heatmap(row_labels: Sequence[str], matrix: Sequence[Sequence[float | None]], col_labels: Sequence[str],
            label: str, *, cell: int = 40, table: bool = True, key: str = "") -> Markup:
    """Shares 0..1 as cells of one hue; opacity carries the value, the number is printed inside.
    Drawn at its natural size (cells stay readable) inside a box that scrolls on narrow screens."""
    label_w = max((text_width(r, 11) for r in row_labels), default=0) + 14
    head_h, ch = 22, cell * 0.7
    cols = max((len(r) for r in matrix), default=0)
    heads = [col_labels[j] if j < len(col_labels) else str(j) for j in range(cols)]
    width, height = label_w + cols * cell + 4, head_h + len(matrix) * ch + 4
    out = [_text(label_w + j * cell + cell / 2, 15, heads[j], size=11, anchor="middle") for j in range(cols)]
    shares = [v for row in matrix for v in row if v is not None]
    for i, (lab, row) in enumerate(zip(row_labels, matrix, strict=True)):
        y = head_h + i * ch
        out.append(_text(label_w - 8, y + ch / 2 + 4, lab, size=11, anchor="end", fill=COLORS["ink"]))
        for j, value in enumerate(row):
            if value is None:
                continue
            x = label_w + j * cell
            opacity = 0.08 + 0.92 * min(max(value, 0), 1)
            text_color = "#fff" if value > 0.45 else COLORS["ink"]
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell - 2}" height="{ch - 2:.1f}" '
                       f'fill="{COLORS["active"]}" fill-opacity="{opacity:.2f}" rx="3">'
                       f"<title>{escape(lab)}, {escape(heads[j])}: {escape(fmt_percent(value))}</title></rect>"
                       + _text(x + cell / 2 - 1, y + ch / 2 + 3, f"{value * 100:.0f}", size=10, anchor="middle",
                               fill=text_color))
    summary = label
    if shares:
        summary = _("%(title)s: from %(low)s to %(high)s.", title=label, low=fmt_percent(min(shares)),
                    high=fmt_percent(max(shares)))
    svg = Markup(scroll_box(_svg(width, height, label, summary, "".join(out), fluid=False, kind="heatmap"),  # noqa: S704
                            label))  # cells keep their size: the map scrolls in its box on a phone
    if not table:
        return svg
    rows = [[lab, *("" if v is None else fmt_percent(v) for v in row), *([""] * (cols - len(row)))]
            for lab, row in zip(row_labels, matrix, strict=True)]
    return svg + data_table([key, *heads], rows, label)
