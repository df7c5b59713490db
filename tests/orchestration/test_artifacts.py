"""What a run leaves in the Prefect UI (flows/orchestration/artifacts.py): the builders on small
inputs, then one real flow run (a backfill of two events deliveries and a real dbt build of one
model) whose artifacts and task run names are read back from the Prefect API."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flows.orchestration import artifacts as ua
from flows.warehouse.dbt import NodeResult
from flows.warehouse.loader import LedgerEntry
from flows.warehouse.runlog import FigureChange, diff
from tests.support import Env, api

TEST_ID = (
    "test.unionwh.accepted_values_audit_exceptions_rule__budget_overrun__unapproved_payment__unknown_or_"
    "revoked_payee__duplicate_relief__relief_without_voucher__reconciliation_gap.07ff43d489"
)
MANIFEST: dict[str, Any] = {
    "nodes": {
        "model.unionwh.audit_exceptions": {"name": "audit_exceptions", "resource_type": "model"},
        TEST_ID: {
            "name": TEST_ID.split(".")[2],
            "resource_type": "test",
            "column_name": "rule",
            "attached_node": "model.unionwh.audit_exceptions",
            "test_metadata": {"name": "accepted_values"},
        },
        "test.unionwh.unique_combination_of_columns_int_figure_rows_x.860edd8e3b": {
            "name": "unique_combination_of_columns_int_figure_rows_x",
            "column_name": None,
            "attached_node": "model.unionwh.int_figure_rows",
            "test_metadata": {"name": "unique_combination_of_columns"},
        },
        "model.unionwh.int_figure_rows": {"name": "int_figure_rows"},
        "test.unionwh.assert_budget_lines_sum": {"name": "assert_budget_lines_sum", "test_metadata": None},
    },
    "unit_tests": {"unit_test.unionwh.fct_dues.dues_by_month": {"name": "dues_by_month"}},
}


# ------------------------------------------------------------------ dbt results
@pytest.mark.unit
def test_nodes_are_named_as_people_read_them() -> None:
    assert ua.node_name(TEST_ID, MANIFEST) == "accepted_values audit_exceptions.rule"
    assert (
        ua.node_name("test.unionwh.unique_combination_of_columns_int_figure_rows_x.860edd8e3b", MANIFEST)
        == "unique_combination_of_columns int_figure_rows"
    )
    assert ua.node_name("test.unionwh.assert_budget_lines_sum", MANIFEST) == "assert_budget_lines_sum"
    assert ua.node_name("model.unionwh.audit_exceptions", MANIFEST) == "audit_exceptions"
    assert ua.node_name("unit_test.unionwh.fct_dues.dues_by_month", MANIFEST) == "dues_by_month"
    # without a manifest: the id less its type, package and (a generic test's) hash, cut to NAME_LIMIT
    assert ua.node_name("model.unionwh.dim_zone", {}) == "dim_zone"
    assert ua.node_name("seed.unionwh.zones", {}) == "zones"
    bare = ua.node_name(TEST_ID, {})
    assert (
        len(bare) == ua.NAME_LIMIT
        and bare.startswith("accepted_values_audit_exceptions_rule__")
        and bare[-1] == "…"
    )
    assert (
        ua.node_name("test.unionwh.not_null_dim_zone_zone_id.5c9a1b2e3f", {}) == "not_null_dim_zone_zone_id"
    )


@pytest.mark.unit
def test_dbt_rows_have_the_same_scalar_keys_failures_first_and_no_quoted_values() -> None:
    nodes = [
        NodeResult("model.unionwh.audit_exceptions", "success", 1.25, 42, "INSERT 0 42"),
        NodeResult(TEST_ID, "pass", 0.5, None, ""),
        NodeResult(
            "model.unionwh.int_figure_rows",
            "error",
            0.1,
            None,
            "Conversion Error: Could not convert string '张三' to INT32\n  in model int_figure_rows",
        ),
        NodeResult(
            "test.unionwh.assert_budget_lines_sum",
            "fail",
            0.2,
            None,
            "Got 3 results, configured to fail if != 0",
        ),
        NodeResult("unit_test.unionwh.fct_dues.dues_by_month", "pass", 0.3, None, ""),
    ]
    rows = ua.dbt_rows(nodes, MANIFEST)
    assert [r["status"] for r in rows] == ["error", "fail", "success", "pass", "pass"]  # dbt's order after
    keys = list(rows[0])
    assert keys == ["status", "type", "name", "seconds", "rows", "message"]
    for r in rows:
        assert list(r) == keys and all(isinstance(v, ua.SCALAR) for v in r.values())
        assert isinstance(r["seconds"], float) and (r["rows"] is None or isinstance(r["rows"], int))
        assert len(r["name"]) <= ua.NAME_LIMIT and len(r["message"]) <= ua.MESSAGE_LIMIT
    assert json.loads(json.dumps(rows)) == rows
    assert (
        rows[0]["message"]
        == "Conversion Error: Could not convert string '…' to INT32 in model int_figure_rows"
    )
    assert "张三" not in json.dumps(rows, ensure_ascii=False)
    assert rows[2] == {
        "status": "success",
        "type": "model",
        "name": "audit_exceptions",
        "seconds": 1.25,
        "rows": 42,
        "message": "INSERT 0 42",
    }
    assert [r["type"] for r in rows] == ["model", "test", "model", "test", "unit_test"]
    description = ua.dbt_description(nodes, Path("/runs/r1/dbt"))
    assert description.startswith("dbt build: 5 nodes (2 pass, 1 error, 1 fail, 1 success)")
    assert "/runs/r1/dbt/run_results.json" in description


@pytest.mark.unit
def test_a_missing_or_broken_manifest_reads_as_empty(tmp_path: Path) -> None:
    assert ua.read_manifest(tmp_path) == {}
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    assert ua.read_manifest(tmp_path) == {}


# -------------------------------------------------------------- figure changes
def changes() -> list[FigureChange]:
    old = {("a.moved", 2021): Decimal("10.5"), ("b.gone", 2020): Decimal(3), ("c.same", 2021): Decimal(1)}
    new = {
        ("a.moved", 2021): Decimal("10.25"),
        ("c.same", 2021): Decimal(1),
        ("d.new", 2019): Decimal(7),
        ("e.new", 2021): Decimal("2.000"),
        ("f.zero", 2018): Decimal(0),
    }
    return diff(old, new)


@pytest.mark.unit
def test_figure_change_rows_put_moved_values_first_and_are_exact_text() -> None:
    rows = ua.figure_change_rows(changes())
    assert [(r["figure"], r["year"], r["change"]) for r in rows] == [
        ("b.gone", 2020, "gone"),
        ("a.moved", 2021, "changed"),
        ("e.new", 2021, "new"),
        ("d.new", 2019, "new"),
        ("f.zero", 2018, "new"),
    ]
    assert rows[0] == {"figure": "b.gone", "year": 2020, "previous": "3", "new": None, "change": "gone"}
    assert rows[1]["previous"] == "10.5" and rows[1]["new"] == "10.25" and rows[2]["new"] == "2"
    assert all(list(r) == list(rows[0]) for r in rows) and json.loads(json.dumps(rows)) == rows
    assert ua.figure_changes_description("r1", changes()) == (
        "Figures (any year) that run r1 changed against the previous run: 5 (1 changed, 3 new, 1 gone)"
    )


@pytest.mark.unit
def test_figure_changes_are_capped_and_the_description_says_where_the_rest_are() -> None:
    many = diff({}, {(f"f{i:03d}", 2021): Decimal(i) for i in range(250)})
    rows = ua.figure_change_rows(many)
    assert len(rows) == ua.FIGURE_CHANGES_SHOWN == 200
    assert "f000" not in {r["figure"] for r in rows}  # the zero goes last
    assert ua.figure_change_rows(many, limit=300)[-1]["figure"] == "f000"
    text = ua.figure_changes_description("r1", many)
    assert "250 (250 new)" in text and "the first 200 here" in text and "unionwh status --changes" in text
    assert ua.figure_change_rows([]) == [] and "0 (none)" in ua.figure_changes_description("r1", [])


# ------------------------------------------------------------------ run outputs
def entry(
    source: str, file: str, read: int, loaded: int, quarantined: int, status: str = "loaded"
) -> LedgerEntry:
    return LedgerEntry("r1", source, "t", file, "sha", None, read, loaded, quarantined, status)


RUN = Path("/srv/unionwh/runs/20211231T020000-abc123")
FILES = [
    RUN / "data_docs" / "index.html",
    RUN / "report-2021.md",
    RUN / "dbt" / "static_index.html",
    RUN / "summary-2021.md",
    RUN / "summary-2021.html",
    RUN / "summary-2021.docx",
    RUN / "figures-2021.json",
    RUN / "notes.txt",
]


@pytest.mark.unit
def test_outputs_are_labelled_in_reading_order() -> None:
    got = [(o.label, o.path.name) for o in ua.outputs(FILES, RUN / "data_docs")]
    assert got == [
        ("Annual summary (HTML)", "summary-2021.html"),
        ("Annual summary (Markdown)", "summary-2021.md"),
        ("Annual summary (Word)", "summary-2021.docx"),
        ("Figures with their trace (JSON)", "figures-2021.json"),
        ("Figures table", "report-2021.md"),
        ("Data Docs (validation results)", "index.html"),
        ("dbt docs (models, tests, lineage)", "static_index.html"),
        ("notes.txt", "notes.txt"),
    ]
    workbook = ua.outputs([RUN / "audit-2021.xlsx", RUN / "other" / "index.html"], RUN / "data_docs")
    assert [o.label for o in workbook] == ["Fund audit workbook", "index.html"]


@pytest.mark.unit
def test_run_outputs_link_every_file_and_count_the_ledger() -> None:
    ledger = [
        entry("events", "2021-04-01/activities.csv", 100, 98, 2),
        entry("events", "2021-04-01/honours.csv", 5, 5, 0),
        entry("rights", "2021-04-01/cases.csv", 40, 39, 1),
        entry("rights", "2021-05-01/cases.csv", 7, 0, 0, "rejected"),
    ]
    text = ua.run_outputs_markdown(
        "20211231T020000-abc123",
        "failed",
        2021,
        RUN,
        FILES,
        RUN / "data_docs",
        ledger,
        3,
        changes(),
        ["rights/2021-05-01/cases.csv: [file.encoding] not UTF-8"],
        {"extract": 1.3, "dbt": 30.0},
    )
    assert text.startswith("## Run `20211231T020000-abc123`: failed\n")
    assert (
        "report year 2021; run folder `/srv/unionwh/runs/20211231T020000-abc123`; took extract 1.3 s, dbt 30.0 s"
        in text
    )
    for path in FILES:
        assert f"(<{path.as_uri()}>)" in text and f"`{path}`" in text
    assert (
        "- **Data Docs (validation results)**: [index.html](<file:///srv/unionwh/runs/20211231T020000-abc123/"
        "data_docs/index.html>)" in text
    )
    assert (
        "- **Fund audit workbook**: not written by this flow; `unionwh audit --year 2021` writes it" in text
    )
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[1:] == [
        "| events | 2 | 0 | 105 | 103 | 2 | yes | 0 |",
        "| rights | 1 | 1 | 40 | 39 | 1 | yes | 7 |",
        "| **all** | 3 | 1 | 145 | 142 | 3 | yes | 7 |",
    ]
    assert "3 delivered files were unchanged" in text
    assert "5 figure values differ from the previous run's: the table artifact `figure-changes`" in text
    assert (
        "### Rejected files (1)\n\n```text\nrights/2021-05-01/cases.csv: [file.encoding] not UTF-8\n```"
        in text
    )


@pytest.mark.unit
def test_run_outputs_of_a_load_only_run_and_of_awkward_paths() -> None:
    run = Path("/data/my runs/a|b`c")
    broken = [entry("events", "x.csv", 10, 8, 1)]
    text = ua.run_outputs_markdown(
        "r2",
        "failed",
        2022,
        run,
        [run / "audit-2022.xlsx"],
        run / "data_docs",
        broken,
        0,
        None,
        [f"f{i}.csv: [r] ```bad" for i in range(12)],
        failure="RunFailed: dbt build failed",
    )
    assert "**Failed:** `RunFailed: dbt build failed`" in text
    assert "[audit-2022.xlsx](<file:///data/my%20runs/a%7Cb%60c/audit-2022.xlsx>)" in text
    assert "``/data/my runs/a|b`c/audit-2022.xlsx``" in text  # a backtick in the path: a longer fence
    assert "unionwh audit --year" not in text
    assert "- **Summary, figures, dbt docs**: not written, no dbt build finished in this run" in text
    assert "The figures were not computed: no dbt build finished in this run." in text
    assert "| events | 1 | 0 | 10 | 8 | 1 | **NO** | 0 |" in text  # read <> loaded + quarantined shows
    assert "### Rejected files (12)" in text and "... and 2 more: unionwh quality" in text
    assert text.count("```") == 2  # the files' own fences cannot close the block
    empty = ua.run_outputs_markdown("r3", "succeeded", 2022, None, [], None, [], 0, [], [])
    assert "No file or member rows were new in this run." in empty
    assert "No figure value changed against the previous run." in empty


# ---------------------------------------------------------- one real flow run
@dataclass
class Published:
    runs: list[Any]
    flow_runs: dict[str, Any]
    """name -> flow run (the parent and the backfill's runs)."""
    task_runs: list[Any]
    artifacts: list[Any]
    run_sources: list[tuple[Any, ...]]
    """The warehouse's ops.run_sources rows (run, source, files loaded/rejected, rows read/loaded/quarantined)."""


ACTIVITIES = "活动编号,名称,类别,日期,参与方式,参与人次\n"
DELIVERIES = {
    "2021-04-01": [
        "HD20210001,文体活动1,文体,2021/1/23,举办,50",
        "HD20210002,宣传活动2,宣传,2021-02-01,参与,53",
        "HD20210003,文体活动3,文体,2021-03-06,举办,18",
    ],
    "2021-07-01": [
        "HD20210004,宣传活动4,宣传,2021-05-12,参与,40",
        "HD20210005,文体活动5,文体,2021/6/2,举办,26",
    ],
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Published]:
    """A backfill of the first of two small events deliveries (one nightly run, load only), then
    the dbt-build task on one staging model of the warehouse it loaded, in one parent flow run
    tagged for this test."""
    from prefect import flow, tags
    from prefect.settings import PREFECT_API_URL

    from flows.backfill import backfill
    from flows.nightly import build_marts
    from flows.settings import load_settings
    from flows.warehouse import dbt

    home = tmp_path_factory.mktemp("artifacts")
    landing = home / "landing"
    for day, lines in DELIVERIES.items():
        (landing / "events" / day).mkdir(parents=True)
        (landing / "events" / day / "activities.csv").write_text(
            ACTIVITIES + "\n".join(lines) + "\n", encoding="utf-8"
        )
    env = {
        "UNIONWH_HOME": str(home),
        "UNIONWH_LANDING": str(landing),
        "UNIONWH_OUTPUT": str(home / "runs"),
        "UNIONWH_WAREHOUSE": f"duckdb:///{home / 'warehouse.duckdb'}",
        "UNIONWH_MEMBERS_URL": "",
        "UNIONWH_PII_KEY": "artifacts-test-key-0123456789abcdef",
        "UNIONWH_REPORT_YEAR": "2021",
    }
    artifacts = home / "runs" / "dbt-check"

    @flow(name="artifacts-test")
    def parent() -> list[Any]:
        settings = load_settings()
        parsing = dbt.start_parse(settings, artifacts)  # (as a nightly run does: parsed while it loads)
        try:
            runs = backfill(date(2021, 4, 1), date(2021, 4, 1), build=False)  # (one day: one nightly run)
        except BaseException:
            dbt.discard_parse(parsing)
            raise
        build_marts(settings, artifacts, select=("stg_events__activities",))
        return runs

    tag = f"artifacts-{secrets.token_hex(4)}"
    with Env(**env), tags(tag):
        runs = parent()
    base = PREFECT_API_URL.value()
    ours = {"flow_runs": {"tags": {"all_": [tag]}}}
    flow_runs = api(base, "/flow_runs/filter", {**ours, "limit": 50})
    task_runs = api(base, "/task_runs/filter", {**ours, "limit": 200})
    found = api(
        base,
        "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [r["id"] for r in flow_runs]}}, "limit": 50},
    )
    engine = sa.create_engine(env["UNIONWH_WAREHOUSE"])
    try:
        with engine.connect() as conn:
            run_sources = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM ops.run_sources")]
    finally:
        engine.dispose()
    yield Published(runs, {r["name"]: r for r in flow_runs}, task_runs, found, run_sources)


@pytest.mark.e2e
def test_task_and_flow_runs_have_readable_names(published: Published) -> None:
    names = sorted(published.flow_runs)
    assert [n for n in names if n.startswith("deliveries-")] == ["deliveries-2021-04-01"]
    # (a subflow call is a task run of its parent that Prefect names <flow>-<n>: not ours to name)
    ours = sorted(
        t["name"] for t in published.task_runs if not re.fullmatch(r"(backfill|nightly-load)-\d+", t["name"])
    )
    assert ours == ["dbt-build", "extract-events", "load-events", "prepare-events", "validate-events"]


@pytest.mark.e2e
def test_each_run_publishes_its_outputs(published: Published) -> None:
    outputs = [a for a in published.artifacts if a["key"] == ua.RUN_OUTPUTS]
    assert len(outputs) == 1 and all(a["type"] == "markdown" for a in outputs)
    for run in published.runs:
        assert run.status == "succeeded"
        text = next(a["data"] for a in outputs if run.run_id in a["data"])
        assert text.startswith(f"## Run `{run.run_id}`: succeeded")
        index = run.run_dir / "data_docs" / "index.html"
        assert index.exists() and f"(<{index.as_uri()}>)" in text and f"`{index}`" in text
        [(source, files, rejected, read, loaded, quarantined)] = [  # as the warehouse has it
            r[1:] for r in published.run_sources if r[0] == run.run_id
        ]
        assert (source, files, read) == ("events", 1, 3) and read == loaded + quarantined
        assert (
            f"| events | {files} | {rejected} | {read:,} | {loaded:,} | {quarantined:,} | yes | 0 |" in text
        )
        assert "unionwh audit --year 2021" in text and "no dbt build finished in this run" in text
    assert not [a for a in published.artifacts if a["key"] == ua.FIGURE_CHANGES]  # (no build: no figures)


@pytest.mark.e2e
def test_the_dbt_results_table_renders_every_column(published: Published) -> None:
    (table,) = [a for a in published.artifacts if a["key"] == ua.DBT_RESULTS]
    assert table["type"] == "table"
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert rows and all(list(r) == ["status", "type", "name", "seconds", "rows", "message"] for r in rows)
    assert all(isinstance(v, ua.SCALAR) for r in rows for v in r.values())
    assert {r["type"] for r in rows} == {"model", "test"}
    assert {"stg_events__activities"} == {r["name"] for r in rows if r["type"] == "model"}
    tests = {r["name"] for r in rows if r["type"] == "test"}
    assert {
        "unique stg_events__activities.activity_id",
        "not_null stg_events__activities.activity_id",
    } <= tests
    assert all(re.fullmatch(r"[a-z_]+ stg_events__activities\.[a-z_]+", name) for name in tests), tests
    assert all(r["status"] in ("success", "pass") for r in rows)
