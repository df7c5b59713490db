"""The figures as metrics: MetricFlow plans the SQL, the warehouse's read-only engine runs it.

MetricFlow (``dbt-metricflow``) reads the semantic manifest that the run's dbt parse wrote
(``<output>/<run>/dbt/semantic_manifest.json``: the definitions the marts were built with) and
compiles a query (metrics, group-by, where, order) to the warehouse's SQL dialect. The SQL runs
through the same read path as ``unionwh figures`` (flows/warehouse/readonly.py): read-only,
and, while a run holds a DuckDB warehouse, against its marts snapshot. Values come back as
the database gives them (exact decimals for amounts), not through MetricFlow's float table.
Imported by the ``metrics`` command only (MetricFlow takes ~1 s to import).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
from metricflow.protocols.sql_client import SqlEngine
from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
from metricflow.sql.render.postgres import PostgresSQLSqlPlanRenderer
from metricflow_semantics.errors.error_classes import MetricFlowException
from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest
from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from flows.dbcheck import classify
from flows.errors import UnionWHError
from flows.report.cells import csv_row, csv_text

MANIFEST = "semantic_manifest.json"
RUN_FOLDER = re.compile(r"\d{8}T\d{6}-[0-9a-f]+")
"""A run's folder under the output directory: its run id (flows/pipeline/state.py new_run_id)."""


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    description: str
    figure_id: str | None
    unit: str | None
    dimensions: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    sql: str


def manifest_path(output_dir: Path, run_id: str | None = None) -> Path:
    """The semantic manifest of ``run_id``'s dbt, or of the newest run that has one."""
    if run_id is not None:
        path = output_dir / run_id / "dbt" / MANIFEST
        if path.is_file():
            return path
    # run folders only (their ids sort by time); not `figures --as-known-on`'s asof_* builds,
    # whose models are other schemas
    found = sorted(
        p for p in output_dir.glob(f"*/dbt/{MANIFEST}") if RUN_FOLDER.fullmatch(p.parent.parent.name)
    )
    if not found:
        raise UnionWHError(
            f"no semantic manifest under {output_dir}: run `unionwh run` first (its dbt writes one per run)"
        )
    return found[-1]


class _Client:
    """MetricFlow's ``SqlClient`` for planning only: the dialect and its renderer. The SQL it plans
    is run by :func:`query` through SQLAlchemy, so nothing here touches the database."""

    def __init__(self, duckdb: bool) -> None:
        self.sql_engine_type = SqlEngine.DUCKDB if duckdb else SqlEngine.POSTGRES
        self.sql_plan_renderer = DuckDbSqlPlanRenderer() if duckdb else PostgresSQLSqlPlanRenderer()

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise NotImplementedError("the metrics engine only plans SQL; flows.metrics.engine.query runs it")

    query = execute = dry_run = render_bind_parameter_key = _refuse

    def close(self) -> None:
        return None


class Metrics:
    """A MetricFlow engine over one semantic manifest, for a DuckDB or a PostgreSQL warehouse."""

    def __init__(self, manifest: Path, duckdb: bool) -> None:
        try:
            text = manifest.read_text(encoding="utf-8")
            semantic = parse_manifest_from_dbt_generated_manifest(text)
            self._raw = json.loads(text)
        except (OSError, ValueError) as exc:
            raise UnionWHError(f"cannot read the semantic manifest {manifest}: {exc}") from None
        self.manifest = manifest
        # "warehouse"."marts"."fig_figure_rows" -> "marts"."fig_figure_rows": the SQL then reads the
        # database it is run on, the warehouse or its marts snapshot (another file, another catalog)
        self._relations = {
            r["relation_name"]: f'"{r["schema_name"]}"."{r["alias"]}"'
            for r in (m.get("node_relation") or {} for m in self._raw.get("semantic_models", []))
            if r.get("relation_name") and r.get("schema_name") and r.get("alias")
        }
        self._engine = MetricFlowEngine(
            semantic_manifest_lookup=SemanticManifestLookup(semantic), sql_client=_Client(duckdb)
        )

    def list(self) -> list[MetricInfo]:
        """Every metric with its figure id, unit and the group-by names it takes, in the catalogue's order."""
        metas = {m["name"]: (m.get("config") or {}).get("meta") or {} for m in self._raw.get("metrics", [])}
        order = {m["name"]: i for i, m in enumerate(self._raw.get("metrics", []))}
        out = []
        for metric in self._engine.list_metrics(include_dimensions=True):
            meta = metas.get(metric.name, {})
            out.append(
                MetricInfo(
                    name=metric.name,
                    label=metric.label or "",
                    description=metric.description or "",
                    figure_id=meta.get("figure_id"),
                    unit=meta.get("unit"),
                    dimensions=tuple(sorted({d.dunder_name for d in metric.dimensions})),
                )
            )
        return sorted(out, key=lambda m: order.get(m.name, len(order)))

    def sql(
        self,
        metrics: Sequence[str],
        group_by: Sequence[str] = (),
        where: Sequence[str] = (),
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> str:
        """The SQL MetricFlow plans for the query, ordered by ``order_by`` or else by the group-bys;
        a bad metric or dimension name is one line."""
        request = MetricFlowQueryRequest.create(
            metric_names=list(metrics),
            group_by_names=list(group_by) or None,
            where_constraints=list(where) or None,
            order_by_names=list(order_by or group_by) or None,
            limit=limit,
        )
        try:
            sql = self._engine.explain(request).sql_statement.sql
        except MetricFlowException as exc:  # unknown names, bad filters: MetricFlow says which
            raise UnionWHError(f"metrics query: {_first_line(exc)}") from None
        for qualified, local in self._relations.items():
            sql = sql.replace(qualified, local)
        return sql


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()).replace("Got error(s) during query resolution. Error #1: Message: ", "")
    return text[:400] + ("…" if len(text) > 400 else "")


def query(
    metrics: Metrics,
    engine: Engine,
    names: Sequence[str],
    group_by: Sequence[str] = (),
    where: Sequence[str] = (),
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> Answer:
    """Run a metrics query on ``engine`` (read-only): the columns and rows as the database gives them."""
    sql = metrics.sql(names, group_by, where, order_by, limit)
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(sql)
            columns = tuple(result.keys())
            rows = [tuple(r) for r in result.fetchall()]
    except DBAPIError as exc:
        if classify(exc) != "other":  # the connection, not the query: the read path says which
            raise
        # MetricFlow checked the names; what the database refuses is a filter's own SQL
        detail = " ".join(str(getattr(exc, "orig", exc)).split())[:300]
        hint = "; check --where (see --explain for the SQL)" if where else " (see --explain for the SQL)"
        raise UnionWHError(f"metrics query: the warehouse refused the query: {detail}{hint}") from None
    return Answer(columns, rows, sql)


def _cell(value: Any) -> Any:
    """A value as JSON and CSV give it: dates ISO, decimals as numbers (integers when whole)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (date, datetime)):
        return (
            value.date().isoformat()
            if isinstance(value, datetime) and value.time() == time()
            else value.isoformat()
        )
    return value


def answer_json(answer: Answer) -> str:
    return json.dumps(
        {
            "columns": list(answer.columns),
            "rows": [dict(zip(answer.columns, map(_cell, r))) for r in answer.rows],
        },
        ensure_ascii=False,
        indent=2,
    )


def answer_csv(answer: Answer) -> str:
    return csv_text([list(answer.columns), *(csv_row(map(_cell, r)) for r in answer.rows)])


def answer_table(answer: Answer) -> str:
    def show(v: Any) -> str:
        v = _cell(v)
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:,.2f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    cells = [[show(v) for v in r] for r in answer.rows]
    widths = [max([_width(c), *(_width(r[i]) for r in cells)]) for i, c in enumerate(answer.columns)]
    numeric = [
        all(isinstance(_cell(r[i]), (int, float)) or r[i] is None for r in answer.rows)
        for i in range(len(widths))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w + len(v) - _width(v)) if num else v.ljust(w + len(v) - _width(v))
            for v, w, num in zip(values, widths, numeric)
        ).rstrip()

    return "\n".join(
        [
            line(answer.columns),
            *(line(r) for r in cells),
            f"({len(answer.rows)} row{'' if len(answer.rows) == 1 else 's'})",
        ]
    )


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def metrics_table(metrics: Sequence[MetricInfo]) -> str:
    width = max((len(m.name) for m in metrics), default=10)
    lines = [
        f"{len(metrics)} metrics (query: unionwh metrics query --metrics NAME[,NAME] --group-by metric_time__year)"
    ]
    lines += [f"{m.name:<{width}}  {m.unit or '':<4}  {m.label}" for m in metrics]
    if metrics:
        lines.append("")
        lines.append("group by (each metric takes these): " + ", ".join(_group_bys(metrics)))
    return "\n".join(lines)


def _group_bys(metrics: Sequence[MetricInfo]) -> list[str]:
    common = set(metrics[0].dimensions).intersection(*(m.dimensions for m in metrics[1:]))
    grains = [
        "metric_time__day",
        "metric_time__week",
        "metric_time__month",
        "metric_time__quarter",
        "metric_time__year",
    ]
    return grains + sorted(d for d in common if not d.startswith("metric_time__"))


def metrics_json(metrics: Sequence[MetricInfo]) -> str:
    return json.dumps(
        [
            {
                "name": m.name,
                "figure_id": m.figure_id,
                "unit": m.unit,
                "label": m.label,
                "description": m.description,
                "group_by": [*_group_bys([m])],
            }
            for m in metrics
        ],
        ensure_ascii=False,
        indent=2,
    )


def metrics_csv(metrics: Sequence[MetricInfo]) -> str:
    return csv_text(
        [
            ["name", "figure_id", "unit", "label", "description"],
            *(csv_row([m.name, m.figure_id, m.unit, m.label, m.description]) for m in metrics),
        ]
    )
