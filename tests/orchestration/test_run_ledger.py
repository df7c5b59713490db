"""The run ledger (ops.runs, run_sources, figure_changes), `unionwh status`, crashed runs and
failure notifications, through real flow runs, a real dbt build and a real HTTP endpoint."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.cli import main
from flows.nightly import nightly_load
from flows.orchestration import notify
from flows.warehouse import runlog
from tests.support import MEMBERS_DDL, Env, Hook, hook_fixture

HEADER = "荣誉编号,年度,荣誉,级别,获奖对象\n"


@pytest.mark.unit
def test_diff_lists_changed_new_and_gone_figure_years() -> None:
    old = {("a", 2021): Decimal(1), ("b", 2021): Decimal(2), ("c", 2020): Decimal(5)}
    new = {("a", 2021): Decimal(1), ("b", 2021): Decimal(3), ("d", 2021): Decimal(0)}
    assert runlog.diff(old, new) == [
        runlog.FigureChange("c", 2020, Decimal(5), None),
        runlog.FigureChange("b", 2021, Decimal(2), Decimal(3)),
        runlog.FigureChange("d", 2021, None, Decimal(0)),
    ]


@pytest.mark.unit
def test_notification_message_names_errors_without_row_values() -> None:
    title, body = notify.message(
        "R1", "failed", [f"f{i}.csv: [batch.columns] missing" for i in range(12)], "duckdb"
    )
    assert title == "unionwh run R1 failed"
    assert "12 error(s)" in body and "f9.csv" in body and "f10.csv" not in body and "2 more" in body


hook = pytest.fixture(hook_fixture)


def dbt_in_prefect(flow_run_id: object) -> tuple[list[dict], list[str]]:
    """The flow run's dbt-results artifact rows and its log lines about dbt, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort, LogSort
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs reach the API in batches: send the run's last ones before reading
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["dbt-results"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=5,
            offset=0,
        )
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
            sort=LogSort.TIMESTAMP_DESC,
            limit=200,
            offset=0,
        )
    data = artifacts[0].data
    return (json.loads(data) if isinstance(data, str) else data), [
        log.message for log in logs if "dbt" in log.message
    ]


def rows(path: Path, sql: str) -> list[tuple]:
    engine = sa.create_engine(f"duckdb:///{path}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql).all()]
    finally:
        engine.dispose()


@pytest.mark.e2e
def test_run_ledger_status_crashes_and_notifications(
    tmp_path: Path, prefect_harness: None, hook: Hook, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing"
    first = landing / "events" / "2022-01-05"
    first.mkdir(parents=True)
    (first / "honours.csv").write_text(
        HEADER + "H1,2021,五一劳动奖状,区级,甲公司\nH2,2021,五一劳动奖状,区级,乙公司\n", encoding="utf-8"
    )
    sqlite3.connect(landing / "members.sqlite").executescript(MEMBERS_DDL)
    wh = tmp_path / "wh.duckdb"
    env = Env(
        UNIONWH_HOME=str(tmp_path),
        UNIONWH_LANDING=str(landing),
        UNIONWH_WAREHOUSE=f"duckdb:///{wh}",
        UNIONWH_OUTPUT=str(tmp_path / "runs"),
        UNIONWH_MEMBERS_URL="",
        UNIONWH_PII_KEY="ledger-test-key-0123456789",
        UNIONWH_NOTIFY_URL=f"json://127.0.0.1:{hook.port}/unionwh",
    )
    with env:
        state = nightly_load(year=2021, return_state=True)
        one = state.result()
        assert one.status == "succeeded"
        artifact, dbt_lines = dbt_in_prefect(state.state_details.flow_run_id)
        # a run killed mid-way leaves its row 'running'; the next run (holding the lock) marks it crashed
        engine = sa.create_engine(f"duckdb:///{wh}")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO ops.runs (run_id, started_at, status) VALUES ('killed-run', :t, 'running')"
                ),
                {"t": datetime.now()},
            )
        engine.dispose()
        second = landing / "events" / "2022-02-05"
        second.mkdir(parents=True)
        (second / "honours.csv").write_text(HEADER + "H3,2021,五一劳动奖状,区级,丙公司\n", encoding="utf-8")
        two = nightly_load(year=2021)
        assert two.status == "succeeded" and hook.received == []
        changes = runlog.changes_of(sa.create_engine(f"duckdb:///{wh}"), two.run_id)
        assert [(c.figure_id, c.report_year, c.old, c.new) for c in changes] == [
            ("honours.mayday_certificates", 2021, Decimal(2), Decimal(3))
        ]

        assert main(["status"]) == 0
        out = capsys.readouterr().out
        assert one.run_id in out and two.run_id in out and "killed-run" in out and "crashed" in out
        assert "2021 honours.mayday_certificates: 2 -> 3" in out

        bad = landing / "events" / "2022-03-05"
        bad.mkdir(parents=True)
        (bad / "honours.csv").write_text("荣誉编号,年度,荣誉\nH4,2021,五一劳动奖状\n", encoding="utf-8")
        three = nightly_load(build=False)
        assert three.status == "failed"
        assert main(["status", "--last", "1"]) == 1
    runs = rows(
        wh,
        "SELECT run_id, status, files_loaded, files_rejected, rows_read, figures_changed FROM ops.runs "
        "ORDER BY started_at",
    )
    assert runs == [
        (one.run_id, "succeeded", 1, 0, 2, len(one.figure_changes or [])),
        ("killed-run", "crashed", None, None, None, None),
        (two.run_id, "succeeded", 1, 0, 1, 1),
        (three.run_id, "failed", 0, 1, 0, None),
    ]
    assert rows(
        wh, f"SELECT source, files_loaded, rows_loaded FROM ops.run_sources WHERE run_id = '{two.run_id}'"
    ) == [("events", 1, 1)]
    # dbt in Prefect: a digest of its output (start, summary; not a line per node: the whole output
    # is in dbt-output.log), and the run's dbt-results table artifact
    assert any(m.startswith("dbt: Running with dbt=") for m in dbt_lines)
    assert any(m.startswith("dbt: Done. PASS=") for m in dbt_lines)
    assert not any("OK created sql table model" in m for m in dbt_lines)
    assert "OK created sql table model marts.fig_annual_figures" in (
        one.run_dir / "dbt" / "dbt-output.log"
    ).read_text(encoding="utf-8")
    assert {"type": "model", "name": "fig_annual_figures", "status": "success"}.items() <= next(
        r for r in artifact if r["name"] == "fig_annual_figures"
    ).items()
    assert {r["status"] for r in artifact} <= {"success", "pass", "warn"} and len(artifact) > 100
    assert (one.run_dir / "dbt" / "manifest.json").exists() and (
        one.run_dir / "dbt" / "run_results.json"
    ).exists()
    assert len(hook.received) == 1
    sent = hook.json()[0]
    assert sent["title"] == f"unionwh run {three.run_id} failed"
    assert "events/2022-03-05/honours.csv" in sent["message"] and "batch.columns" in sent["message"]
