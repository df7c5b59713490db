"""Everything the annual summary shows, read from the warehouse and the newest build's dbt
artifacts: each figure with its trace (definition, models, source rows, dbt tests,
expectations, quarantine, fund audit), the chart series and the years to compare."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from flows import schema
from flows.errors import UnionWHError
from flows.report.audit import Audit, fetch_audit
from flows.report.catalogue import money_projects
from flows.report.charts import UNKNOWN
from flows.warehouse import builds

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
FIGURES_MART = "fig_annual_figures"
FIGURES_META = "figures"
"""The dbt ``meta`` key of an ``int_figure_rows_<domain>`` model listing the figures whose rows it
yields (dbt_project/models/intermediate/figures/_figures__models.yml)."""

MONEY_PROJECTS: dict[str, str | None] = money_projects()
"""Money figure id -> the finance project whose postings pay it (None: no fund of ours pays it
out): ``paid_from`` in config/figures.yaml."""


@dataclass
class Check:
    name: str
    status: str
    """dbt's (pass, fail, error, warn, skipped), or ``missing`` (no result under this dbt project)
    or ``stale`` (a model it tests was rebuilt after its latest result)."""
    run_id: str | None = None
    """The run whose dbt build gave the result."""

    @property
    def verified(self) -> bool:
        return self.status not in UNVERIFIED


UNVERIFIED = frozenset({"missing", "stale", "unknown"})


@dataclass
class Suite:
    name: str
    expectations: int
    rows_loaded: int
    rows_quarantined: int
    files_rejected: int


@dataclass
class FigureTrace:
    id: str
    value: Decimal
    unit: str
    zh: str
    en: str
    definition: str
    source_rows: int
    models: list[str]
    tests: list[Check] = field(default_factory=list)
    suites: list[Suite] = field(default_factory=list)
    quarantined: int = 0
    quarantined_open: int = 0
    audit: str | None = None
    audit_clean: bool | None = None

    @property
    def tests_passed(self) -> int:
        return sum(1 for t in self.tests if t.status == "pass")

    @property
    def unverified(self) -> list[Check]:
        """Tests on the figure's lineage without a current result (missing or stale)."""
        return [t for t in self.tests if not t.verified]


@dataclass
class ReportData:
    year: int
    figures: list[FigureTrace]
    by_month: dict[str, list[Decimal]]
    by_zone: dict[str, dict[str, int]]
    audit: Audit
    history: dict[str, dict[int, Decimal]]
    run_id: str | None
    artifacts: Path | None
    distinct_ids: frozenset[str] = frozenset()
    """Figures that count distinct keys: their monthly chart counts a key in its first month."""

    @property
    def values(self) -> dict[str, Decimal]:
        return {f.id: f.value for f in self.figures}

    @property
    def years(self) -> list[int]:
        return sorted({y for by_year in self.history.values() for y in by_year})


def _q(conn: sa.Connection, sql: str, **params: Any) -> list[Any]:
    return list(conn.execute(sa.text(sql), params))


def _parents(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """unique id -> the nodes it depends on (the manifest's ``parent_map``, else each node's
    ``depends_on.nodes``)."""
    parents = manifest.get("parent_map")
    if parents:
        return parents
    return {uid: node.get("depends_on", {}).get("nodes", []) for uid, node in manifest["nodes"].items()}


def _path(parents: dict[str, list[str]], start: str, end: str) -> list[str] | None:
    """The shortest chain of nodes from ``start`` down to ``end`` (``end`` depends on it through
    them), or None when ``end`` does not depend on ``start``."""
    came_from: dict[str, str | None] = {end: None}
    todo = deque([end])
    while todo:
        node = todo.popleft()
        if node == start:
            chain = [node]
            while (after := came_from[chain[-1]]) is not None:
                chain.append(after)
            return chain
        for parent in parents.get(node, []):
            if parent not in came_from:
                came_from[parent] = node
                todo.append(parent)
    return None


def figure_models(manifest: dict[str, Any] | None) -> dict[str, list[str]]:
    """figure id -> the dbt models its value passes through, from the model that lists its rows
    (the ``int_figure_rows_<domain>`` whose ``meta.figures`` names it) to the figures mart, read
    from dbt's manifest (the models' meta and the dependencies between them). Empty without a
    manifest."""
    if manifest is None:
        return {}
    nodes = manifest["nodes"]
    mart = next(
        (u for u, n in nodes.items() if n["resource_type"] == "model" and n["name"] == FIGURES_MART), None
    )
    if mart is None:
        return {}
    parents = _parents(manifest)
    out: dict[str, list[str]] = {}
    for uid, node in sorted(nodes.items()):
        if node["resource_type"] != "model":
            continue
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        chain = _path(parents, uid, mart) if meta.get(FIGURES_META) else None
        for fid in meta.get(FIGURES_META, []) if chain else []:
            out.setdefault(fid, [nodes[u]["name"] for u in chain])
    return out


def read_manifest(artifacts: Path | None) -> dict[str, Any] | None:
    """The dbt manifest of an artifacts folder (None: no folder)."""
    if artifacts is None:
        return None
    return json.loads((artifacts / "manifest.json").read_text(encoding="utf-8"))


def latest_artifacts(engine: Engine, output_dir: Path) -> tuple[str | None, Path | None]:
    """The newest succeeded run whose dbt artifacts are still on disk."""
    with engine.connect() as conn:
        runs = [
            r[0]
            for r in _q(
                conn, "SELECT run_id FROM ops.runs WHERE status = 'succeeded' ORDER BY started_at DESC"
            )
        ]
    for run_id in runs:
        folder = output_dir / run_id / "dbt"
        if (folder / "run_results.json").exists() and (folder / "manifest.json").exists():
            return run_id, folder
    return (runs[0] if runs else None), None


def _dbt_tests(
    engine: Engine, run_id: str | None, artifacts: Path | None
) -> tuple[dict[str, list[Check]], dict[str, list[str]]]:
    """model name -> its tests with their latest result; staging model -> its raw tables.

    The tests are the run's manifest's (every test of the project, whatever the build selected).
    Their results come from ``ops.dbt_node_results`` under the project of the run's build: each
    test's newest result, whichever build ran it (flows/warehouse/builds.py). A run whose build is
    not in that ledger (an artifacts folder of a ``dbt build`` outside a run) falls back to its
    own ``run_results.json``."""
    if artifacts is None:
        return {}, {}
    manifest = json.loads((artifacts / "manifest.json").read_text(encoding="utf-8"))
    project = (
        builds.build_of(engine, run_id) if run_id is not None and builds.has_results(engine, run_id) else None
    )
    if project is not None:
        ledger = builds.latest_results(engine, project)
        status = {uid: (r.status, r.run_id, r.built_at) for uid, r in ledger.items()}
    else:
        results = json.loads((artifacts / "run_results.json").read_text(encoding="utf-8"))
        status = {r["unique_id"]: (r["status"], run_id, None) for r in results.get("results", [])}
    tests: dict[str, list[Check]] = defaultdict(list)
    sources: dict[str, list[str]] = defaultdict(list)
    for uid, node in manifest["nodes"].items():
        deps = node.get("depends_on", {}).get("nodes", [])
        if node["resource_type"] == "test":
            models = [d for d in deps if d.startswith("model.")]
            result, by, at = status.get(uid, ("missing", None, None))
            built = [
                status[m][2]
                for m in models
                if m in status and status[m][0] == "success" and status[m][2] is not None
            ]
            if at is not None and built and max(built) > at:
                result = "stale"  # a model it tests was rebuilt after this result
            for dep in models:
                tests[dep.split(".")[-1]].append(Check(node["name"], str(result), by))
        elif node["resource_type"] == "model":
            sources[node["name"]] = [d.split(".")[-1] for d in deps if d.startswith("source.")]
    return tests, sources


def _raw_sources(models: list[str], sources: dict[str, list[str]]) -> list[str]:
    """The raw tables the models read directly (the manifest's sources of each; none without one)."""
    out: list[str] = []
    for model in models:
        out += [s for s in sources.get(model, []) if s not in out]
    return out


def _suite_size(source: str, table: str) -> int:
    path = EXPECTATIONS_DIR / f"{source}.{table}.json"
    if not path.exists():
        return 0
    return len(json.loads(path.read_text(encoding="utf-8")).get("expectations", []))


def _audit_status(fid: str, audit: Audit) -> tuple[str | None, bool | None]:
    if fid not in MONEY_PROJECTS:
        return None, None
    code = MONEY_PROJECTS[fid]
    if code is None:
        return "不涉及本会经费（为职工追回的款项）/ not a disbursement of union funds", None
    exceptions = [e for e in audit.exceptions if e["project_code"] == code]
    recon = [r for r in audit.reconciliation if r["project_code"] == code]
    budget = [r for r in audit.budget if r["project_code"] == code]
    parts = [
        f"{code}: {len(exceptions)} 项审计异常 / exceptions"
        + (" (" + ", ".join(sorted({e["rule"] for e in exceptions})) + ")" if exceptions else "")
    ]
    gap = any(r["is_gap"] for r in recon)
    if recon:
        parts.append("台账对账" + ("有差异 / reconciliation gap" if gap else "一致 / reconciled"))
    over = any(r["is_over_budget"] for r in budget)
    if budget:
        last = max(budget, key=lambda r: r["report_month"])
        b = last["budget_yuan"]
        parts.append(
            f"预算 {b:,.2f} 元, 实际 {last['actual_to_date_yuan']:,.2f} 元"
            if b is not None
            else f"无预算, 实际 {last['actual_to_date_yuan']:,.2f} 元 / no budget"
        )
        if over:
            parts.append("超预算 / over budget")
    return "; ".join(parts), not exceptions and not gap and not over


def trace_gaps(data: ReportData) -> str | None:
    """Why ``data``'s trace cannot be stated as verified (None: every test on every figure's
    lineage has a current result). ``unionwh report publish`` refuses a summary with gaps."""
    if data.artifacts is None:
        return (
            "no dbt artifacts of a successful run are on disk, so no figure's tests can be stated: "
            "run `unionwh run`"
        )
    untested = [f.id for f in data.figures if not f.tests]
    gaps = sorted({(t.status, t.name) for f in data.figures for t in f.unverified})
    if not gaps and not untested:
        return None
    parts = []
    for status in ("missing", "stale", "unknown"):
        names = [n for st, n in gaps if st == status]
        if names:
            parts.append(f"{len(names)} {status} (e.g. {names[0]})")
    if untested:
        parts.append(f"{len(untested)} figure(s) with no test at all (e.g. {untested[0]})")
    return (
        "the trace is incomplete: dbt tests on the figures' lineage without a current result: "
        + ", ".join(parts)
        + "; run `UNIONWH_DBT_BUILD=all unionwh run` to run every test"
    )


# The chart series are read so that each adds up to the figure it illustrates (fig_annual_figures
# aggregates the same fig_figure_rows): nothing is dropped by a join or for want of a date.
MONTHLY_SQL = """
SELECT figure_id, measure, CAST(extract(month FROM event_on) AS INTEGER) AS month, count(*) AS n,
       sum(amount) AS amount
FROM marts.fig_figure_rows WHERE report_year = :y AND measure <> 'distinct' GROUP BY 1, 2, 3
UNION ALL
SELECT figure_id, measure, CAST(extract(month FROM first_on) AS INTEGER) AS month, count(*) AS n, NULL AS amount
FROM (SELECT figure_id, measure, count_key, min(event_on) AS first_on FROM marts.fig_figure_rows
      WHERE report_year = :y AND measure = 'distinct' AND count_key IS NOT NULL GROUP BY 1, 2, 3) AS keyed
GROUP BY 1, 2, 3"""
"""Per figure and month: rows counted, amounts summed, and a distinct key counted once, in the month
it is first seen (a key seen in March and May is one of March's, so the months add up to the
year's distinct count); month NULL for rows without a date."""

ENTERPRISE_UNIT = "家"
"""Distinct counts in 家 count enterprises (USCC or payee codes): these are broken down by zone.
A distinct count of people (名: 身份证号) is not."""

ZONES_SQL = """
SELECT r.figure_id, coalesce(e.zone, :unknown) AS zone, count(DISTINCT r.count_key) AS n
FROM marts.fig_figure_rows AS r
JOIN marts.fig_annual_figures AS f ON f.figure_id = r.figure_id AND f.report_year = r.report_year
LEFT JOIN marts.dim_enterprise AS e ON e.uscc = r.count_key
WHERE r.report_year = :y AND r.measure = 'distinct' AND r.count_key IS NOT NULL AND f.unit = :unit
GROUP BY 1, 2"""

HISTORY_SQL = """
SELECT figure_id, report_year, value, source_rows FROM marts.fig_annual_figures
WHERE report_year <= :y AND (report_year = :y OR report_year IN (
    SELECT CAST(extract(year FROM delivery_date) AS INTEGER) FROM ops.load_ledger WHERE status = 'loaded'))"""
"""The years to compare the report year with: those in which the warehouse received deliveries.
A year before the first delivery only has what later deliveries carried of it (last December's
visits in January's workbook): its figures are not that year's, and the summary shows "—" for
them, as for a figure whose sources had no row that year, instead of a growth of +97930%."""


def _months(rows: list[Any]) -> dict[str, list[Decimal]]:
    """figure id -> its twelve monthly values, and a thirteenth (UNKNOWN) when some rows have no
    date; only figures with dated rows (a status at year end has no months)."""
    dated: dict[str, list[Decimal]] = {}
    undated: dict[str, Decimal] = defaultdict(Decimal)
    for fid, measure, month, n, amount in rows:
        value = Decimal(str(amount or 0)) if measure == "sum" else Decimal(int(n))
        if month is None:
            undated[fid] += value
        else:
            dated.setdefault(fid, [Decimal(0)] * 12)[int(month) - 1] += value
    return {fid: series + ([undated[fid]] if undated.get(fid) else []) for fid, series in dated.items()}


@dataclass
class ChartSeries:
    by_month: dict[str, list[Decimal]]
    by_zone: dict[str, dict[str, int]]
    history: dict[str, dict[int, Decimal]]
    distinct_ids: frozenset[str]


def chart_series(conn: sa.Connection, year: int) -> ChartSeries:
    """The numbers the summary's charts and year-over-year table draw, read from the figures marts
    (MONTHLY_SQL, ZONES_SQL, HISTORY_SQL): each chart's parts add up to its figure."""
    monthly = _q(conn, MONTHLY_SQL, y=year)
    by_zone: dict[str, dict[str, int]] = defaultdict(dict)
    for fid, zone, n in _q(conn, ZONES_SQL, y=year, unit=ENTERPRISE_UNIT, unknown=UNKNOWN):
        by_zone[fid][zone] = int(n)
    history: dict[str, dict[int, Decimal]] = defaultdict(dict)
    for fid, y, value, source_rows in _q(conn, HISTORY_SQL, y=year):
        if int(y) == year or int(source_rows or 0) > 0:
            history[fid][int(y)] = Decimal(str(value))
    return ChartSeries(
        _months(monthly), dict(by_zone), dict(history), frozenset(r[0] for r in monthly if r[1] == "distinct")
    )


def collect(engine: Engine, year: int, output_dir: Path, run: tuple[str, Path] | None = None) -> ReportData:
    """Read the report's data for ``year``, with the dbt results of ``run`` (run id, artifacts
    folder; default: the newest succeeded run's). Raises UnionWHError if the marts are missing."""
    try:
        return _collect(engine, year, output_dir, run)
    except DBAPIError as exc:
        raise UnionWHError(
            f"cannot read the figures marts (has `unionwh run` built them?): {type(exc.orig).__name__}"
        ) from None


def _collect(engine: Engine, year: int, output_dir: Path, run: tuple[str, Path] | None) -> ReportData:
    run_id, artifacts = run if run is not None else latest_artifacts(engine, output_dir)
    tests, sources = _dbt_tests(engine, run_id, artifacts)
    lineage = figure_models(read_manifest(artifacts))
    audit = fetch_audit(engine, year)
    with engine.connect() as conn:
        rows = _q(
            conn,
            "SELECT figure_id, value, unit, label_zh, label_en, definition, source_rows, models_read "
            "FROM marts.fig_annual_figures WHERE report_year = :y ORDER BY sort_order",
            y=year,
        )
        if not rows:
            raise UnionWHError(f"no figures for {year} in the warehouse")
        ledger = {
            (r[0], r[1]): r[2:]
            for r in _q(
                conn,
                "SELECT source, table_name, sum(rows_loaded), sum(rows_quarantined), "
                "sum(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END) FROM ops.load_ledger GROUP BY 1, 2",
            )
        }
        quarantine = {
            (r[0], r[1]): (int(r[2]), int(r[3]))
            for r in _q(
                conn,
                "SELECT source_system, table_name, count(*), "
                "sum(CASE WHEN is_resolved THEN 0 ELSE 1 END) FROM marts.audit_quarantine GROUP BY 1, 2",
            )
        }
        series = chart_series(conn, year)
    by_table = {t.raw_table: t for t in schema.TABLES}
    figures = []
    for fid, value, unit, zh, en, definition, source_rows, models_read in rows:
        staging = [m.strip() for m in (models_read or "").split(",") if m.strip()]
        chain = staging + lineage.get(fid, [])
        trace = FigureTrace(fid, Decimal(str(value)), unit, zh, en, definition, int(source_rows), chain)
        trace.tests = [t for m in chain for t in tests.get(m, [])]
        for raw in _raw_sources(staging, sources):
            t = by_table.get(raw)
            if t is None:
                continue
            loaded, quarantined, rejected = ledger.get((t.source, t.name), (0, 0, 0))
            trace.suites.append(
                Suite(
                    f"{t.source}.{t.name}",
                    _suite_size(t.source, t.name),
                    int(loaded or 0),
                    int(quarantined or 0),
                    int(rejected or 0),
                )
            )
            q_all, q_open = quarantine.get((t.source, t.name), (0, 0))
            trace.quarantined += q_all
            trace.quarantined_open += q_open
        trace.audit, trace.audit_clean = _audit_status(fid, audit)
        figures.append(trace)
    return ReportData(
        year,
        figures,
        series.by_month,
        series.by_zone,
        audit,
        series.history,
        run_id,
        artifacts,
        series.distinct_ids,
    )
