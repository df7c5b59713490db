"""The ``annual-report`` flow: the year's summary and fund audit from the warehouse as it is.

No loading and no dbt build: it reads the marts and the newest build's dbt results, and writes
the summary in Chinese (``summary-<year>.md/.html/.docx``), ``figures-<year>.json`` and
``audit-<year>.xlsx`` into ``<output>/annual-<year>-<timestamp>/``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger

from flows.report.audit import fetch_audit, write_workbook
from flows.report.summary import write_report
from flows.report.trace import collect
from flows.settings import settings_for_run
from flows.warehouse.engine import warehouse_engine


@flow(name="annual-report", log_prints=True)
def annual_report(year: int | None = None) -> list[Path]:
    """Write the report files of a year (default: the configured report year) from the warehouse."""
    settings = settings_for_run(report_year=year)  # those bound by the caller, else resolved here
    y = settings.report_year
    out = settings.output_dir / f"annual-{y}-{datetime.now():%Y%m%dT%H%M%S}"
    template = settings.template_path.read_text(encoding="utf-8")
    engine = warehouse_engine(settings)
    try:
        data = collect(engine, y, settings.output_dir)
        # the workbook's cover states the publication and the federation's name (the summary's audit need not)
        audit = fetch_audit(engine, y, published_dir=settings.published_dir, template=template)
    finally:
        engine.dispose()
    files = write_report(data, template, out)
    files.append(write_workbook(audit, out / f"audit-{y}.xlsx"))
    get_run_logger().info(
        "annual report %d: %d figures, %d audit exceptions, written to %s",
        y,
        len(data.figures),
        len(data.audit.exceptions),
        out,
    )
    return files
