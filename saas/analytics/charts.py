"""Server-rendered SVG charts: no external requests, no script, CSP-safe (attributes, not styles).

Each chart returns Markup with role="img", a <title> for screen readers, and the numbers as
<title> tooltips on the marks. Pages show the same numbers in a table beside or under the chart.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

from markupsafe import Markup

COLORS = {"new": "#2f9e66", "active": "#2f5bea", "at_risk": "#d99a1e", "lost": "#d14343", "retained": "#8aa6f5",
          "reactivated": "#7cc4a4", "grid": "#e4e7ef", "text": "#667085", "bar": "#2f5bea", "bar2": "#9bb4ff"}
PALETTE = ["#2f5bea", "#2f9e66", "#d99a1e", "#d14343", "#7c5cd6", "#1aa3b8", "#e0712b", "#8a94a6", "#c2417f",
           "#5a8f29", "#3d6fb6", "#b0b7c6"]


def _svg(width: int, height: int, label: str, body: str, *, fluid: bool = True) -> Markup:
    size = 'width="100%"' if fluid else f'width="{width}" height="{height}"'
    return Markup(  # noqa: S704 - the label is escaped here and every text in `body` where it is built
        f'<svg class="chart" viewBox="0 0 {width} {height}" {size} role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(v: float) -> str:
    return f"{v:,.0f}".replace(",", "\u202f")


def bars(labels: Sequence[str], series: Mapping[str, Sequence[float]], colors: Mapping[str, str], label: str,
         *, width: int = 640, height: int = 240, negative: Sequence[str] = ()) -> Markup:
    """Grouped bars per label; series named in `negative` are drawn below the axis (e.g. lost)."""
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    up = max([0.0] + [v for k, vals in series.items() if k not in negative for v in vals])
    down = max([0.0] + [v for k, vals in series.items() if k in negative for v in vals])
    scale_max = _nice_max(up + down)
    zero_y = top + plot_h * (up / (up + down) if up + down else 1)
    unit = plot_h / scale_max
    parts = []
    for i in range(5):
        value = scale_max * i / 4
        y = zero_y - value * unit
        if y >= top - 1:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS["grid"]}"/>'
                         f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                         f'fill="{COLORS["text"]}">{_fmt(value)}</text>')
    group_w = plot_w / max(len(labels), 1)
    names = list(series)
    bar_w = max(2.0, group_w * 0.8 / max(len(names), 1))
    for gi, lab in enumerate(labels):
        x0 = left + gi * group_w + group_w * 0.1
        for si, name in enumerate(names):
            v = float(series[name][gi] or 0)
            h = v * unit
            y = zero_y if name in negative else zero_y - h
            parts.append(f'<rect x="{x0 + si * bar_w:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                         f'fill="{colors.get(name, COLORS["bar"])}" rx="2"><title>{escape(lab)} · {escape(name)}: '
                         f'{_fmt(v)}</title></rect>')
        if len(labels) <= 16 or gi % max(1, len(labels) // 12) == 0:
            parts.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - 8}" font-size="11" text-anchor="middle" '
                         f'fill="{COLORS["text"]}">{escape(lab)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" stroke="#98a2b3"/>')
    return _svg(width, height, label, "".join(parts))


def line(labels: Sequence[str], values: Sequence[float], label: str, *, width: int = 640, height: int = 200,
         color: str = COLORS["active"]) -> Markup:
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(values, default=0))
    step = plot_w / max(len(values) - 1, 1)
    points = [(left + i * step, top + plot_h - (v / top_value) * plot_h) for i, v in enumerate(values)]
    parts = []
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS["grid"]}"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{COLORS["text"]}">{_fmt(value)}</text>')
    if points:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
        area = path + f" L{points[-1][0]:.1f},{top + plot_h} L{points[0][0]:.1f},{top + plot_h} Z"
        parts.append(f'<path d="{area}" fill="{color}" fill-opacity="0.08"/>'
                     f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y), lab, v in zip(points, labels, values, strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>{escape(lab)}: {_fmt(v)}'
                         f"</title></circle>")
        every = max(1, len(labels) // 8)
        for i, lab in enumerate(labels):
            if i % every == 0:
                parts.append(f'<text x="{points[i][0]:.1f}" y="{height - 8}" font-size="11" text-anchor="middle" '
                             f'fill="{COLORS["text"]}">{escape(lab)}</text>')
    return _svg(width, height, label, "".join(parts))


def stacked(parts_: Sequence[tuple[str, float, str]], label: str, *, width: int = 640, height: int = 36) -> Markup:
    """One horizontal bar split by share: (name, value, color)."""
    total = sum(v for _n, v, _c in parts_) or 1
    x = 0.0
    out = []
    for name, value, color in parts_:
        w = width * value / total
        if w > 0:
            out.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{color}">'
                       f"<title>{escape(name)}: {_fmt(value)} ({value / total:.0%})</title></rect>")
            if w > 60:
                out.append(f'<text x="{x + 8:.1f}" y="{height / 2 + 4:.1f}" font-size="12" fill="#fff">'
                           f"{escape(name)} {value / total:.0%}</text>")
        x += w
    return _svg(width, height, label, "".join(out))


def hbars(rows: Sequence[tuple[str, float]], label: str, *, width: int = 480, color: str = COLORS["bar"],
          value_format: Callable[[float], str] = _fmt) -> Markup:
    row_h, label_w = 24, 150
    height = row_h * max(len(rows), 1) + 4
    top_value = max((v for _n, v in rows), default=0) or 1
    out = []
    for i, (name, value) in enumerate(rows):
        y = i * row_h + 2
        w = (width - label_w - 130) * value / top_value
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" font-size="12" text-anchor="end" fill="#1c2233">'
                   f"{escape(name)}</text>"
                   f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
                   f'fill="{color}" rx="2">'
                   f"<title>{escape(name)}: {escape(value_format(value))}</title></rect>"
                   f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12" fill="{COLORS["text"]}">'
                   f"{escape(value_format(value))}</text>")
    return _svg(width, height, label, "".join(out))


def heatmap(row_labels: Sequence[str], matrix: Sequence[Sequence[float | None]], col_labels: Sequence[str],
            label: str, *, cell: int = 40) -> Markup:
    """Shares 0..1 as cells of one hue; opacity carries the value, the number is printed inside."""
    label_w, head_h = 84, 22
    cols = max((len(r) for r in matrix), default=0)
    width, height = label_w + cols * cell + 4, head_h + len(matrix) * (cell * 0.7) + 4
    out = []
    for j in range(cols):
        out.append(f'<text x="{label_w + j * cell + cell / 2:.1f}" y="15" font-size="11" text-anchor="middle" '
                   f'fill="{COLORS["text"]}">{escape(col_labels[j] if j < len(col_labels) else str(j))}</text>')
    ch = cell * 0.7
    for i, (lab, row) in enumerate(zip(row_labels, matrix, strict=True)):
        y = head_h + i * ch
        out.append(f'<text x="{label_w - 8}" y="{y + ch / 2 + 4:.1f}" font-size="11" text-anchor="end" '
                   f'fill="#1c2233">{escape(lab)}</text>')
        for j, value in enumerate(row):
            if value is None:
                continue
            x = label_w + j * cell
            opacity = 0.08 + 0.92 * min(max(value, 0), 1)
            text_color = "#fff" if value > 0.45 else "#1c2233"
            out.append(f'<rect x="{x}" y="{y:.1f}" width="{cell - 2}" height="{ch - 2:.1f}" fill="{COLORS["active"]}" '
                       f'fill-opacity="{opacity:.2f}" rx="3"><title>{escape(lab)} +{j}: {value:.0%}</title></rect>'
                       f'<text x="{x + cell / 2 - 1:.1f}" y="{y + ch / 2 + 3:.1f}" font-size="10" text-anchor="middle" '
                       f'fill="{text_color}">{value * 100:.0f}</text>')
    return _svg(int(width), int(height), label, "".join(out), fluid=False)  # cells keep their size
