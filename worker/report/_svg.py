"""Small inline SVG charts drawn in Python: no JavaScript, no fonts or files to fetch.

Every chart is a string of `<svg>` markup with its own `viewBox`, so it scales with the page; every label
goes through `html.escape`. Values carry `<title>` elements, which browsers show as tooltips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_AXIS = "#9aa3af"
_GRID = "#e5e7eb"
_TEXT = "#374151"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[int, float | None, str]]  # (x index, value or gap, tooltip)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _nice_max(value: float) -> float:
    """A round upper bound for a percentage axis (0..1), never below 4%."""
    for top in (0.04, 0.08, 0.2, 0.4, 0.6, 0.8, 1.0):  # quarters of these are round percentages
        if value <= top:
            return top
    return 1.0


def line_chart(title: str, x_labels: Sequence[str], series: Sequence[Series], width: int = 560,
               height: int = 240) -> str:
    """Rates (0..1) over the x labels (weeks), one line per series, with a legend under the plot."""
    left, right, top, bottom = 44, 12, 14, 34
    legend_rows = math.ceil(len(series) / 4)
    full_height = height + 18 * legend_rows
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for _, v, _ in s.points if v is not None]
    y_max = _nice_max(max(values, default=0.0))
    n = max(len(x_labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [f'<svg viewBox="0 0 {width} {full_height}" role="img" aria-label="{escape(title)}" '
             f'class="chart"><title>{escape(title)}</title>']
    for k in range(5):
        v = y_max * k / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="{_GRID if k else _AXIS}" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="{_TEXT}">{v * 100:.0f}%</text>')
    step = max(1, math.ceil(len(x_labels) / 8))
    for i, label in enumerate(x_labels):
        if i % step == 0 or i == len(x_labels) - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'font-size="11" fill="{_TEXT}">{escape(_short_week(label))}</text>')
    for si, s in enumerate(series):
        c = color(si)
        segment: list[str] = []
        runs: list[list[str]] = [segment]
        for i, value, _ in s.points:
            if value is None:
                segment = []
                runs.append(segment)
            else:
                segment.append(f"{x(i):.1f},{y(value):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{c}" '
                             'stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"/>')
        for i, value, tip in s.points:
            if value is not None:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3.2" fill="{c}" stroke="#fff" '
                             f'stroke-width="1"><title>{escape(tip)}</title></circle>')
    for si, s in enumerate(series):
        lx = left + (si % 4) * (plot_w / 4)
        ly = height + 4 + 18 * (si // 4)
        parts.append(f'<rect x="{lx:.1f}" y="{ly}" width="12" height="12" rx="2" fill="{color(si)}"/>'
                     f'<text x="{lx + 17:.1f}" y="{ly + 10}" font-size="12" fill="{_TEXT}">'
                     f'{escape(_clip(s.name, 28))}</text>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Interval:
    label: str
    mean: float | None
    low: float | None
    high: float | None
    note: str  # shown right of the row, e.g. "n=41"
    tooltip: str
    color: str


def interval_chart(title: str, rows: Sequence[Interval], span: float, width: int = 560) -> str:
    """Means with 95% intervals on a symmetric axis around zero (negative: calmer), one row each."""
    left, right, top, row_h = 150, 64, 24, 26
    height = top + row_h * len(rows) + 26
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + plot_w * (v + span) / (2 * span)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'class="chart"><title>{escape(title)}</title>']
    parts.append(f'<rect x="{left}" y="{top - 6}" width="{plot_w / 2:.1f}" height="{row_h * len(rows) + 6}" '
                 'fill="#ecfdf5"/>')
    parts.append(f'<rect x="{x(0):.1f}" y="{top - 6}" width="{plot_w / 2:.1f}" '
                 f'height="{row_h * len(rows) + 6}" fill="#fef2f2"/>')
    parts.append(f'<text x="{left + 4}" y="{top - 10}" font-size="11" fill="#047857">◀ calmer</text>')
    parts.append(f'<text x="{width - right - 4}" y="{top - 10}" font-size="11" text-anchor="end" '
                 'fill="#b91c1c">more frustrated ▶</text>')
    for k in (-1, -0.5, 0, 0.5, 1):
        v = span * k
        parts.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{top - 6}" y2="{top + row_h * len(rows)}" '
                     f'stroke="{_AXIS if k == 0 else _GRID}" stroke-width="{1.5 if k == 0 else 1}"/>')
        parts.append(f'<text x="{x(v):.1f}" y="{top + row_h * len(rows) + 16}" text-anchor="middle" '
                     f'font-size="11" fill="{_TEXT}">{v:+.2f}</text>')
    for r, row in enumerate(rows):
        cy = top + row_h * r + row_h / 2
        parts.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end" font-size="12" '
                     f'fill="{_TEXT}">{escape(row.label)}</text>')
        parts.append(f'<text x="{width - right + 6}" y="{cy + 4:.1f}" font-size="11" fill="#6b7280">'
                     f'{escape(row.note)}</text>')
        if row.mean is None:
            continue
        c = row.color
        if row.low is not None and row.high is not None:
            lo, hi = x(max(-span, row.low)), x(min(span, row.high))
            parts.append(f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{c}" '
                         'stroke-width="3" stroke-linecap="round" opacity="0.55"/>')
        parts.append(f'<circle cx="{x(max(-span, min(span, row.mean))):.1f}" cy="{cy:.1f}" r="5.5" '
                     f'fill="{c}" stroke="#fff" stroke-width="1.5">'
                     f'<title>{escape(row.tooltip)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def bar_list(rows: Sequence[tuple[str, int]], width: int = 560, fill: str = "#D55E00") -> str:
    """Horizontal bars of counts with their labels, largest first as given."""
    left, right, row_h = 210, 50, 22
    height = row_h * len(rows) + 4
    top = max((n for _, n in rows), default=1) or 1
    plot_w = width - left - right
    parts = [f'<svg viewBox="0 0 {width} {height}" class="chart" role="img" aria-label="counts">']
    for r, (label, n) in enumerate(rows):
        y = r * row_h + 2
        w = max(2.0, plot_w * n / top)
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12" fill="{_TEXT}">'
                     f'{escape(_clip(label, 32))}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="14" rx="3" fill="{fill}"/>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 14}" font-size="12" fill="{_TEXT}">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short_week(label: str) -> str:
    return label.split("-", 1)[1] if label.count("-") == 1 and "-W" in label else label


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
