"""Inline SVG charts for the HTML report (pure: no I/O, no JavaScript, readable offline)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

PALETTE = ("#2f6db5", "#e08a2c", "#3a9d5d", "#c0504d", "#8064a2", "#4bacc6", "#9b7b3c")
MONTHS = [f"{m}月" for m in range(1, 13)]


def _num(x: Decimal | float | int) -> str:
    x = float(x)
    if abs(x) >= 10000:
        return f"{x / 10000:,.1f}万"
    return f"{x:,.0f}" if x == int(x) else f"{x:,.2f}"


def bars(title: str, labels: Sequence[str], series: dict[str, Sequence[Decimal | float | int]],
         chart_id: str, width: int = 640, height: int = 240) -> str:
    """Vertical grouped bars: one group per label, one bar per series."""
    top = max([float(v) for s in series.values() for v in s] + [0.0]) or 1.0
    left, bottom, pad_top = 56, 34, 28
    plot_w, plot_h = width - left - 10, height - bottom - pad_top
    group_w = plot_w / max(len(labels), 1)
    bar_w = min(48.0, max(2.0, (group_w - 6) / max(len(series), 1)))
    out = [f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f'<title>{escape(title)}</title>',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i in range(5):
        y = pad_top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_num(top * i / 4)}</text>')
    for gi, label in enumerate(labels):
        x0 = left + gi * group_w + 3
        for si, (name, values) in enumerate(series.items()):
            v = float(values[gi])
            h = plot_h * v / top
            out.append(f'<rect class="bar" x="{x0 + si * bar_w:.1f}" y="{pad_top + plot_h - h:.1f}" '
                       f'width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{PALETTE[si % len(PALETTE)]}">'
                       f'<title>{escape(name)} {escape(label)}: {_num(v)}</title></rect>')
        out.append(f'<text x="{x0 + group_w / 2 - 3:.1f}" y="{height - bottom + 14}" font-size="10" '
                   f'text-anchor="middle">{escape(label)}</text>')
    if len(series) > 1:
        out.append(_legend(list(series), left, height - 12, 150))
    out.append("</svg>")
    return "".join(out)


def _legend(names: Sequence[str], left: float, y: float, spacing: int) -> str:
    return "".join(f'<rect x="{left + i * spacing}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{left + i * spacing + 14}" y="{y + 9}" font-size="10">{escape(name)}</text>'
                   for i, name in enumerate(names))


def stacked(title: str, rows: dict[str, dict[str, int]], keys: Sequence[str], chart_id: str,
            width: int = 640) -> str:
    """Horizontal stacked bars: one row per entry, one segment per key, as shares of the row."""
    row_h, left, top_pad = 22, 220, 26
    height = top_pad + row_h * len(rows) + 24
    out = [f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f'<title>{escape(title)}</title>',
           f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    plot_w = width - left - 60
    for ri, (label, parts) in enumerate(rows.items()):
        y = top_pad + ri * row_h
        total = sum(parts.values()) or 1
        x = float(left)
        out.append(f'<text x="{left - 6}" y="{y + 14}" font-size="10" text-anchor="end">{escape(label)}</text>')
        for ki, key in enumerate(keys):
            w = plot_w * parts.get(key, 0) / total
            if w > 0:
                out.append(f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                           f'fill="{PALETTE[ki % len(PALETTE)]}"><title>{escape(label)} {escape(key)}: '
                           f'{parts.get(key, 0)}</title></rect>')
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="10">{sum(parts.values())}</text>')
    out.append(_legend(keys, left, height - 14, 90))
    out.append("</svg>")
    return "".join(out)
