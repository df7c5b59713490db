"""Figure values as people read them (pure: no I/O)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flows.report.cells import csv_row, csv_text
from flows.warehouse.figures import Figure


def figures_json(year: int, figures: list[Figure], as_known_on: date | None = None) -> str:
    """``as_known_on`` (figures recomputed from the deliveries up to that date) is a top-level
    field, present only then: without it the figures are the warehouse's current ones."""
    payload: dict[str, Any] = {"year": year}
    if as_known_on is not None:
        payload["as_known_on"] = as_known_on.isoformat()
    payload["figures"] = [
        {"id": f.id, "value": f.json_value(), "unit": f.unit, "zh": f.zh, "en": f.en} for f in figures
    ]
    return json.dumps(payload, ensure_ascii=False, indent=2)


CSV_BOM = "\ufeff"
"""Leads ``figures --format csv``: without it Excel reads UTF-8 as the local code page (GBK on a
Chinese Windows, cp1252 elsewhere) and shows the labels as mojibake."""


def figures_csv(year: int, figures: list[Figure], as_known_on: date | None = None) -> str:
    """One row per figure; text that a spreadsheet would run as a formula gets a leading ``'``
    (flows/report/cells.py), the value stays a number. Figures as known on a past date carry
    that date in a last column ``as_known_on`` on every row (a comment line above the header
    would be read by Excel as a data row and shift the columns)."""
    extra = [] if as_known_on is None else [as_known_on.isoformat()]
    return csv_text(
        [
            ["year", "id", "value", "unit", "zh", "en", *(["as_known_on"] if extra else [])],
            *(csv_row([year, f.id, f.json_value(), f.unit, f.zh, f.en, *extra]) for f in figures),
        ]
    )


def figures_table(year: int, figures: list[Figure], as_known_on: date | None = None) -> str:
    width = max((len(f.id) for f in figures), default=10)
    known = f" as known on {as_known_on.isoformat()}" if as_known_on is not None else ""
    lines = [f"Figures for {year}{known} ({len(figures)})", f"{'id':<{width}}  {'value':>16}  unit  label"]
    for f in figures:
        lines.append(f"{f.id:<{width}}  {f.display():>16}  {f.unit:<4}  {f.zh} / {f.en}")
    return "\n".join(lines)


def figures_markdown(year: int, figures: list[Figure], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"报告年度 / report year: {year}",
        "",
        "| 指标 | figure | 数值 | 单位 |",
        "|---|---|---:|---|",
    ]
    for f in figures:
        lines.append(f"| {f.zh} | `{f.id}` {f.en} | {f.display()} | {f.unit} |")
    return "\n".join(lines) + "\n"
