"""Charts drawn on the server as SVG: no JavaScript, readable with scripts off, printable.

Each function takes (label, value, url) points and returns escaped SVG markup; every label
goes through `markupsafe.escape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

PALETTE = ["#6366f1", "#10b981", "#f59e0b", "#ec4899", "#0ea5e9", "#8b5cf6", "#ef4444",
           "#14b8a6", "#a3a3a3", "#f97316"]

Formatter = Callable[[Any], str]
ChartPoint = tuple[str, float, str | None]  # label, value, link


def as_number(value: Any) -> float:
    """A widget's value as a length on a chart (a value that is no number draws as 0)."""
    if isinstance(value, Decimal | int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    fraction = value / 10 ** exponent
    for step in (1, 2, 2.5, 5, 10):
        if fraction <= step:
            return step * 10 ** exponent
    return 10 * 10 ** exponent


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _wrap_link(url: str | None, inner: str, name: str = "") -> str:
    """A chart mark as a link, named for screen readers (`name`: "label: value")."""
    if not url:
        return inner
    named = f' aria-label="{escape(name)}"' if name else ""
    return f'<a href="{escape(url)}"{named}>{inner}</a>'


def _svg(kind: str, view: str, title: str, points: Sequence[ChartPoint]) -> str:
    """The opening <svg>: an image, or a group when its marks are links (an image cannot hold
    focusable links: axe's nested-interactive rule, and a screen reader would skip them)."""
    role = "group" if any(url for _, _, url in points) else "img"
    return (f'<svg class="chart {kind}" viewBox="{view}" role="{role}" '
            f'aria-label="{escape(title)}">')


def bar(points: Sequence[ChartPoint], fmt: Formatter, title: str = "") -> Markup:
    """Horizontal bars: long labels stay readable, and it fits a phone."""
    if not points:
        return Markup("")
    row, label_w, width = 30, 110, 340
    height = row * len(points) + 8
    top = _nice_max(max(max(v for _, v, _ in points), 0))
    bar_w = width - label_w - 70
    parts = [_svg("bar-chart", f"0 0 {width} {height}", title, points)]
    for i, (label, value, url) in enumerate(points):
        y = 4 + i * row
        length = max(0.0, value) / top * bar_w if top else 0
        inner = (f'<title>{escape(label)}: {escape(fmt(value))}</title>'
                 f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
                 f'{escape(_short(label, 16))}</text>'
                 f'<rect class="bar" x="{label_w}" y="{y + 5}" width="{length:.1f}" '
                 f'height="{row - 10}" rx="3"/>'
                 f'<text class="value" x="{label_w + length + 6:.1f}" y="{y + 17}">'
                 f'{escape(fmt(value))}</text>')
        parts.append(_wrap_link(url, f"<g>{inner}</g>", f"{label}: {fmt(value)}"))
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: Sequence[ChartPoint], fmt: Formatter, title: str = "") -> Markup:
    if not points:
        return Markup("")
    width, height, left, bottom, top_pad = 360, 190, 56, 26, 12
    plot_w, plot_h = width - left - 12, height - bottom - top_pad
    top = _nice_max(max(max(v for _, v, _ in points), 0))
    n = len(points)
    step = plot_w / max(n - 1, 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        x = left + (i * step if n > 1 else plot_w / 2)
        return x, top_pad + plot_h - max(0.0, value) / top * plot_h

    parts = [_svg("line-chart", f"0 0 {width} {height}", title, points)]
    for k in range(5):
        value = top * k / 4
        y = top_pad + plot_h - plot_h * k / 4
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 12}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(fmt(value))}</text>')
    coords = [xy(i, v) for i, (_, v, _) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    base = top_pad + plot_h
    if n > 1:
        parts.append(f'<polygon class="area" points="{coords[0][0]:.1f},{base} {path} '
                     f'{coords[-1][0]:.1f},{base}"/>')
        parts.append(f'<polyline class="line" points="{path}"/>')
    every = max(1, math.ceil(n / 6))
    for i, ((label, value, url), (x, y)) in enumerate(zip(points, coords, strict=True)):
        dot = (f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{escape(label)}: '
               f'{escape(fmt(value))}</title></circle>')
        parts.append(_wrap_link(url, dot, f"{label}: {fmt(value)}"))
        if i % every == 0 or i == n - 1:
            parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{escape(_short(label, 10))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def pie(points: Sequence[ChartPoint], fmt: Formatter, title: str = "") -> Markup:
    """A donut with a legend beside it (the legend carries the numbers and the links)."""
    values = [max(0.0, v) for _, v, _ in points]
    total = sum(values)
    if not points or total <= 0:
        return Markup("")
    size, r, inner = 140, 66, 40
    c = size / 2
    parts = ['<div class="pie-wrap">' + _svg("pie-chart", f"0 0 {size} {size}", title, points)]
    angle = -math.pi / 2
    for i, ((label, _, url), value) in enumerate(zip(points, values, strict=True)):
        if value <= 0:
            continue
        color = PALETTE[i % len(PALETTE)]
        sweep = value / total * 2 * math.pi
        if sweep >= 2 * math.pi - 1e-9:
            shape = (f'<circle cx="{c}" cy="{c}" r="{(r + inner) / 2}" fill="none" '
                     f'stroke="{color}" stroke-width="{r - inner}"/>')
        else:
            end = angle + sweep
            large = 1 if sweep > math.pi else 0
            x1, y1 = c + r * math.cos(angle), c + r * math.sin(angle)
            x2, y2 = c + r * math.cos(end), c + r * math.sin(end)
            x3, y3 = c + inner * math.cos(end), c + inner * math.sin(end)
            x4, y4 = c + inner * math.cos(angle), c + inner * math.sin(angle)
            shape = (f'<path fill="{color}" d="M{x1:.2f},{y1:.2f} A{r},{r} 0 {large} 1 '
                     f'{x2:.2f},{y2:.2f} L{x3:.2f},{y3:.2f} A{inner},{inner} 0 {large} 0 '
                     f'{x4:.2f},{y4:.2f} Z"/>')
            angle = end
        parts.append(_wrap_link(url, f'<g><title>{escape(label)}: {escape(fmt(value))}'
                                     f'</title>{shape}</g>', f"{label}: {fmt(value)}"))
    parts.append('</svg><ul class="legend">')
    for i, (label, value, url) in enumerate(points):
        name = f'<a href="{escape(url)}">{escape(label)}</a>' if url else escape(label)
        share = value / total * 100 if total else 0
        parts.append(f'<li><span class="sw" style="background:{PALETTE[i % len(PALETTE)]}">'
                     f'</span>{name}<span class="v">{escape(fmt(value))} '
                     f'<span class="muted small">({share:.0f}%)</span></span></li>')
    parts.append("</ul></div>")
    return Markup("".join(parts))


CHARTS = {"bar": bar, "line": line, "pie": pie}


def draw(kind: str | None, points: Sequence[ChartPoint], fmt: Formatter,
         title: str = "") -> Markup:
    return CHARTS.get(kind or "bar", bar)(points, fmt, title)
