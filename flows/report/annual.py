"""The ``annual-report`` flow: the year's figures and fund audit from the warehouse as it is.

No loading and no dbt build: it reads ``marts.fig_annual_figures`` and the audit marts
and writes ``figures-<year>.json``, ``report-<year>.md`` and ``audit-<year>.xlsx`` into
``<output>/annual-<year>-<timestamp>/``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger

from flows.report.audit import fetch_audit, write_workbook
from flows.report.format import figures_json, figures_markdown
from flows.settings import load_settings
from flows.warehouse.engine import warehouse_engine
from flows.warehouse.figures import fetch_figures


@flow(name="annual-report", log_prints=True)
def annual_report(year: int | None = None) -> list[Path]:
    """Write the report files of a year (default: the configured report year) from the warehouse."""
    settings = load_settings(report_year=year)
    y = settings.report_year
    out = settings.output_dir / f"annual-{y}-{datetime.now():%Y%m%dT%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    engine = warehouse_engine(settings)
    try:
        figures = fetch_figures(engine, y)
        audit = fetch_audit(engine, y)
    finally:
        engine.dispose()
    files = [out / f"figures-{y}.json", out / f"report-{y}.md"]
    files[0].write_text(figures_json(y, figures) + "\n", encoding="utf-8")
    files[1].write_text(figures_markdown(y, figures, f"{y}年工作总结数据 / annual summary figures"), encoding="utf-8")
    files.append(write_workbook(audit, out / f"audit-{y}.xlsx"))
    get_run_logger().info("annual report %d: %d figures, %d audit exceptions, written to %s", y, len(figures),
                          len(audit.exceptions), out)
    return files
