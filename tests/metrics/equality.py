"""The semantic layer's metrics at year grain against marts.fig_annual_figures (shared by the
metrics tests): every metric, every year, on the engine and manifest given."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from flows.metrics import engine as mf


def figures(engine: sa.Engine) -> dict[tuple[str, int], Decimal]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "select figure_id, report_year, value from marts.fig_annual_figures"
        ).all()
    return {(r[0], int(r[1])): Decimal(str(r[2])) for r in rows}


def metrics_by_year(engine: sa.Engine, manifest: Path, duckdb: bool) -> dict[tuple[str, int], Decimal]:
    """Every metric grouped by metric_time__year, in one MetricFlow query, keyed by figure id."""
    metrics = mf.Metrics(manifest, duckdb=duckdb)
    listed = metrics.list()
    answer = mf.query(metrics, engine, [m.name for m in listed], ["metric_time__year"])
    by_name = {m.name: m.figure_id for m in listed}
    year_col = answer.columns.index("metric_time__year")
    out: dict[tuple[str, int], Decimal] = {}
    for row in answer.rows:
        when = row[year_col]
        assert isinstance(when, date), when
        for column, value in zip(answer.columns, row):
            if column in by_name:
                out[(by_name[column], when.year)] = Decimal(str(value))
    return out


def assert_metrics_equal_figures(engine: sa.Engine, manifest: Path, duckdb: bool) -> int:
    """Every figure of every year equals its metric (a metric with no rows that year is 0); returns
    how many (figure, year) values were compared."""
    want = figures(engine)
    got = metrics_by_year(engine, manifest, duckdb)
    assert got, "the metrics query returned no rows"
    assert {fid for fid, _ in got} == {fid for fid, _ in want}, "not one metric per figure"
    differing = {
        key: (value, got.get(key, Decimal(0)))
        for key, value in want.items()
        if got.get(key, Decimal(0)) != value
    }
    assert not differing, f"figure (value, metric) differ: {sorted(differing.items())[:10]}"
    extra = {key: v for key, v in got.items() if key not in want and v != 0}
    assert not extra, f"metrics with values in years that have no figure: {sorted(extra.items())[:10]}"
    return len(want)
