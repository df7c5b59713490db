"""Size vs time and size vs memory, drawn from recorded benchmark results.

    python -m flows.bench.plot [--results flows/bench/results.jsonl] [--out flows/bench/size-vs-time.svg]

Reads the lines ``python -m flows.bench.pipeline --record FILE`` appended (one JSON result per
benchmark run, with its commit) and draws, on log-log axes against the rows read, the wall
time of the pipeline, of the native baseline (flows/bench/native.py, from issue 22 on), of the
pipeline readers without orchestration (``readers``; ``baseline`` in lines recorded before) and
of the 1% delta run, and the pipeline's peak memory. For each scale the newest result counts.
A plain SVG file, no plotting library.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERIES = (
    ("pipeline", "seconds", "#1f77b4", "pipeline (s)"),
    ("native", "seconds", "#9467bd", "native baseline (s)"),
    ("readers", "seconds", "#ff7f0e", "pipeline readers, no orchestration (s)"),
    ("delta", "seconds", "#2ca02c", "1% delta run (s)"),
    ("pipeline", "peak_mb", "#d62728", "pipeline peak memory (MB)"),
)


def newest_by_scale(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last recorded result of each scale, smallest scale first."""
    by_scale: dict[int, dict[str, Any]] = {}
    for r in lines:
        by_scale[int(r["scale"])] = r
    return [by_scale[k] for k in sorted(by_scale)]


def _run(r: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A recorded run; ``readers`` was called ``baseline`` before issue 22."""
    runs = r["runs"]
    return runs.get(name) or (runs.get("baseline") if name == "readers" else None)


def svg(results: list[dict[str, Any]], width: int = 640, height: int = 400) -> str:
    """A log-log chart of every series against the rows the pipeline read."""
    points = [
        (
            run,
            key,
            colour,
            label,
            [(r["runs"]["pipeline"]["rows"], got[key]) for r in results if (got := _run(r, run)) is not None],
        )
        for run, key, colour, label in SERIES
    ]
    points = [p for p in points if p[-1]]  # a series no result has (native before issue 22)
    xs = [x for *_, pts in points for x, _ in pts]
    ys = [y for *_, pts in points for _, y in pts]
    if not xs:
        raise SystemExit("no results to plot")
    left, right, top, bottom = 70, 20, 20, 90
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (math.log10(y) - y0) / (y1 - y0) * (height - top - bottom)

    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="11">'
        ),
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for e in range(x0, x1 + 1):
        out.append(
            f'<line x1="{px(10**e):.1f}" y1="{top}" x2="{px(10**e):.1f}" y2="{height - bottom}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{px(10**e):.1f}" y="{height - bottom + 14}" text-anchor="middle">1e{e}</text>')
    for e in range(y0, y1 + 1):
        out.append(
            f'<line x1="{left}" y1="{py(10**e):.1f}" x2="{width - right}" y2="{py(10**e):.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{left - 6}" y="{py(10**e) + 4:.1f}" text-anchor="end">{10**e:g}</text>')
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - bottom + 30}" text-anchor="middle">'
        "rows read (log)</text>"
    )
    out.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">seconds / MB (log)</text>'
    )
    for i, (_, _, colour, label, pts) in enumerate(points):
        path = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"><title>{label}: {y:,.1f} at '
            f"{x:,} rows</title></circle>"
            for x, y in pts
        ]
        lx, ly = left + (i % 2) * 260, height - bottom + 48 + (i // 2) * 16
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="3" fill="{colour}"/>')
        out.append(f'<text x="{lx + 18}" y="{ly - 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=HERE / "results.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "size-vs-time.svg")
    args = parser.parse_args(argv)
    lines = [
        json.loads(line) for line in args.results.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    results = newest_by_scale(lines)
    args.out.write_text(svg(results), encoding="utf-8")
    for r in results:
        p = r["runs"]["pipeline"]
        native, readers = _run(r, "native"), _run(r, "readers")
        print(
            f"N={r['scale']:>4} {p['rows']:>11,} rows  pipeline {p['seconds']:8.1f} s  "
            + (f"native {native['seconds']:8.1f} s  " if native else "")
            + (f"readers {readers['seconds']:8.1f} s  " if readers else "")
            + f"delta {r['runs']['delta']['seconds']:7.1f} s  peak {p['peak_mb']:8.0f} MB  ({r['commit']})"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
