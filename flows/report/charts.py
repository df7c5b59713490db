"""Inline SVG charts for the HTML report (pure: no I/O, no JavaScript, readable offline).

A chart draws exactly the numbers it is given; the series of every chart of the summary are read
so that they add up to the figure they illustrate (flows/report/trace.py), and a count's axis is
marked in whole numbers (``nice_ticks``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from html import escape

PALETTE = ("#2f6db5", "#e08a2c", "#3a9d5d", "#c0504d", "#8064a2", "#4bacc6", "#9b7b3c")
UNKNOWN = "未知"
"""The label of what a breakdown cannot place (a key with no enterprise row, a row without a
date): shown as its own bar or segment, so the parts still add up to the whole."""
NICE_MANTISSAS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5))
WAN = Decimal(10000)

Number = Decimal | float | int


def _dec(x: Number) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def nice_ticks(top: Number, n: int = 5, *, integer: bool = False, bottom: Number = 0) -> list[Decimal]:
    """Axis ticks from 0 (or below a negative ``bottom``) to the first tick at or above ``top``,
    ``n`` steps at most (so at most ``n + 1`` ticks), a step of 1, 2, 2.5 or 5 × 10^k: the smallest
    such step that fits. With ``integer`` (counts) the step is a whole number, so no tick reads 0.50."""
    if n < 1:
        raise ValueError("nice_ticks needs at least one step")
    hi, lo = max(_dec(top), Decimal(0)), min(_dec(bottom), Decimal(0))
    if hi == lo:
        hi = lo + 1
    exponent = ((hi - lo) / n).adjusted() - 1
    while True:
        for mantissa in NICE_MANTISSAS:
            step = mantissa.scaleb(exponent)
            if integer and (step < 1 or step != step.to_integral_value()):
                continue
            first = (lo / step).to_integral_value(ROUND_FLOOR)
            last = (hi / step).to_integral_value(ROUND_CEILING)
            if last - first <= n:
                return [_plain((first + i) * step) for i in range(int(last - first) + 1)]
        exponent += 1


def _plain(x: Decimal) -> Decimal:
    """``5E+2`` as ``500``: the same number, written as people write it."""
    return x.quantize(Decimal(1)) if x == x.to_integral_value() else x.normalize()


def _decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]


def tick_labels(ticks: Sequence[Decimal], money: bool = False) -> list[str]:
    """Tick labels with the decimals the step needs and no more; money from 1万 up in 万."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else Decimal(1)
    if money and max(abs(t) for t in ticks) >= WAN:
        return ["0" if t == 0 else f"{_plain(t / WAN):,f}万" for t in ticks]
    places = _decimals(step)
    return ["0" if t == 0 else f"{t:,.{places}f}" for t in ticks]


def exact(value: Number, money: bool = False) -> str:
    """A value as the tooltips and totals state it: yuan with fen, counts whole."""
    v = _dec(value)
    if money:
        return f"{v:,.2f}"
    return f"{v:,.0f}" if v == v.to_integral_value() else f"{v.normalize():,f}"


LABELLED_GROUPS = 8
"""A bar chart of this many groups or fewer writes each bar's value over it (a month chart does not)."""


def compact(value: Number, money: bool = False) -> str:
    """A bar's value written over it: money from 1万 in 万 with one decimal (the tooltip is exact)."""
    v = _dec(value)
    if money and abs(v) >= WAN:
        return f"{v / WAN:.1f}万"
    return exact(v, money and v != v.to_integral_value())


def _svg_open(chart_id: str, title: str, width: int, height: int) -> list[str]:
    return [
        (
            f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        ),
        f"<title>{escape(title)}</title>",
    ]


def bars(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[Number]],
    chart_id: str,
    width: int = 640,
    height: int = 240,
    *,
    money: bool = False,
    note: str = "",
) -> str:
    """Vertical grouped bars: one group per label, one bar per series, on a nice axis (whole
    numbers for counts; ``money``: yuan, in 万 from 1万). ``note`` (e.g. the total) is written
    under the title."""
    values = [_dec(v) for s in series.values() for v in s]
    ticks = nice_ticks(
        max(values, default=Decimal(0)),
        4 if height < 200 else 5,
        integer=not money,
        bottom=min(values, default=Decimal(0)),
    )
    labels_y = tick_labels(ticks, money)
    left = 14 + 6 * max(len(t) for t in labels_y) + (6 if any("万" in t for t in labels_y) else 0)
    bottom, pad_top, right = 18 + (14 if len(series) > 1 else 0), 42 if note else 26, 8
    plot_w, plot_h = width - left - right, height - bottom - pad_top
    lo, span = ticks[0], ticks[-1] - ticks[0]

    def y_of(v: Decimal) -> float:
        return pad_top + plot_h - plot_h * float((v - lo) / span)

    out = _svg_open(chart_id, title, width, height)
    out.append(f'<text x="4" y="15" font-size="12" font-weight="bold">{escape(title)}</text>')
    if note:
        out.append(f'<text x="4" y="28" font-size="10" fill="#555" class="note">{escape(note)}</text>')
    for t, text in zip(ticks, labels_y):
        y = y_of(t)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#999" if t == 0 else "#e3e3e3"}"/>'
            f'<text class="tick" x="{left - 4}" y="{y + 3.5:.1f}" font-size="10" fill="#444" '
            f'text-anchor="end">'
            f"{escape(text)}</text>"
        )
    group_w = plot_w / max(len(labels), 1)
    bar_w = min(40.0, max(2.0, (group_w * 0.8) / max(len(series), 1)))
    zero = y_of(Decimal(0))
    for gi, label in enumerate(labels):
        x0 = left + gi * group_w + (group_w - bar_w * len(series)) / 2
        for si, (name, vals) in enumerate(series.items()):
            v = _dec(vals[gi])
            y = min(y_of(v), zero)
            out.append(
                f'<rect class="bar" x="{x0 + si * bar_w:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{abs(zero - y_of(v)):.1f}" fill="{PALETTE[si % len(PALETTE)]}" '
                f'data-series="{escape(name)}" data-label="{escape(label)}" data-value="{v}">'
                f"<title>{escape(name)} {escape(label)}: {exact(v, money)}</title></rect>"
            )
            if len(labels) <= LABELLED_GROUPS:
                out.append(
                    f'<text class="value" x="{x0 + (si + 0.5) * bar_w:.1f}" y="{y - 3:.1f}" font-size="8" '
                    f'fill="#333" text-anchor="middle">{escape(compact(v, money))}</text>'
                )
        out.append(
            f'<text x="{left + (gi + 0.5) * group_w:.1f}" y="{pad_top + plot_h + 13:.1f}" font-size="10" '
            f'fill="#444" text-anchor="middle">{escape(_fit(label, group_w + 4))}</text>'
        )
    if len(series) > 1:
        out.append(_legend(list(series), left, height - 11, 150))
    out.append("</svg>")
    return "".join(out)


def _text_width(text: str, size: int = 10) -> float:
    """About how wide ``text`` is drawn: a CJK character a full em, a digit or letter 0.6 em."""
    return sum(size * (1.0 if ord(ch) > 0x2E7F else 0.6) for ch in text)


def _fit(label: str, room: float) -> str:
    """A category label cut to the room under its bar group (the whole label stays in its tooltip)."""
    if _text_width(label) <= room:
        return label
    while len(label) > 1 and _text_width(label + "…") > room:
        label = label[:-1]
    return label + "…"


def _colour(name: str, i: int) -> str:
    return "#9e9e9e" if name == UNKNOWN else PALETTE[i % len(PALETTE)]


def _legend(names: Sequence[str], left: float, y: float, spacing: int) -> str:
    return "".join(
        f'<rect x="{left + i * spacing}" y="{y}" width="10" height="10" fill="{_colour(name, i)}"/>'
        f'<text x="{left + i * spacing + 14}" y="{y + 9}" font-size="10">{escape(name)}</text>'
        for i, name in enumerate(names)
    )


def stacked(
    title: str, rows: dict[str, dict[str, int]], keys: Sequence[str], chart_id: str, width: int = 760
) -> str:
    """Horizontal stacked bars: one row per entry, one segment per key, as shares of the row; the
    row's total (the sum of its segments) is written after it."""
    row_h, left, top_pad = 24, 250, 26
    height = top_pad + row_h * len(rows) + 26
    out = _svg_open(chart_id, title, width, height)
    out.append(f'<text x="4" y="15" font-size="12" font-weight="bold">{escape(title)}</text>')
    plot_w = width - left - 140
    for ri, (label, parts) in enumerate(rows.items()):
        y = top_pad + ri * row_h
        total = sum(parts.values())
        x = float(left)
        out.append(
            f'<text x="{left - 6}" y="{y + 15}" font-size="10" text-anchor="end">{escape(label)}</text>'
        )
        for ki, key in enumerate(keys):
            n = parts.get(key, 0)
            w = max(plot_w * n / (total or 1), 2.0) if n > 0 else 0.0  # one key of hundreds stays visible
            if w > 0:
                out.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                    f'fill="{_colour(key, ki)}" data-series="{escape(label)}" data-label="{escape(key)}" '
                    f'data-value="{n}"><title>{escape(label)} '
                    f"{escape(key)}: {n:,}</title></rect>"
                )
                if w >= 8 * len(f"{n:,}") + 4:
                    out.append(
                        f'<text x="{x + w / 2:.1f}" y="{y + 15}" font-size="9" fill="#fff" '
                        f'text-anchor="middle">{n:,}</text>'
                    )
            x += w
        unknown = parts.get(UNKNOWN, 0)
        out.append(
            f'<text x="{x + 4:.1f}" y="{y + 15}" font-size="10" class="total">{total:,}'
            + (f'<tspan fill="#777">（含{UNKNOWN} {unknown:,}）</tspan>' if unknown else "")
            + "</text>"
        )
    out.append(_legend(keys, left, height - 16, 70))
    out.append("</svg>")
    return "".join(out)
