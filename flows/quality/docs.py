"""Data Docs: Great Expectations' HTML pages of a run's validations, without row values.

The pages are rendered from the validation results the quarantine split used,
after every list of unexpected *values* is removed (they can be resident IDs or
names); counts and percentages stay.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VALUE_KEYS = ("unexpected_list", "partial_unexpected_list", "unexpected_index_list",
              "partial_unexpected_index_list", "partial_unexpected_counts", "unexpected_index_query",
              "unexpected_rows", "details")


@dataclass(frozen=True)
class DocPage:
    source: str
    table: str
    file_name: str
    rows: int
    quarantined: int
    path: Path


def scrub(result: Any) -> Any:
    """Drop the unexpected values from a GE ExpectationSuiteValidationResult, in place."""
    for res in result.results:
        for key in VALUE_KEYS:
            res.result.pop(key, None)
    return result


def render_page(result: Any) -> str:
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return str(DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result)))


def page_name(source: str, table: str, file_name: str, chunk: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", file_name).strip("_")
    return f"{source}.{table}.{slug}.{chunk}.html"


def write_index(directory: Path, run_id: str, pages: list[DocPage]) -> Path:
    rows = "\n".join(
        f"<tr><td>{html.escape(p.source)}</td><td>{html.escape(p.table)}</td>"
        f"<td><a href=\"{html.escape(p.path.name)}\">{html.escape(p.file_name)}</a></td>"
        f"<td>{p.rows}</td><td>{p.quarantined}</td></tr>"
        for p in pages
    )
    body = (
        "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\">"
        f"<title>Data Docs {html.escape(run_id)}</title></head><body>"
        f"<h1>Validation results of run {html.escape(run_id)}</h1>"
        "<table border=\"1\" cellpadding=\"4\"><tr><th>source</th><th>table</th><th>file</th>"
        f"<th>rows</th><th>quarantined</th></tr>\n{rows}\n</table></body></html>\n"
    )
    directory.mkdir(parents=True, exist_ok=True)  # (a run that validated nothing made no page)
    path = directory / "index.html"
    path.write_text(body, encoding="utf-8")
    return path
