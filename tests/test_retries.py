"""Retries: transient failures are retried with backoff, data errors never; a landing file
still being written is not loaded until it stops changing (a real flow run)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.errors import BatchError, ConfigError, FileInFlux
from flows.nightly import is_transient, nightly_load
from flows.sources import common

from tests.support import Env


def test_only_transient_errors_are_retried() -> None:
    assert is_transient(FileInFlux("a.csv changed while it was being read"))
    assert is_transient(sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(BatchError("a.csv", "batch.columns", "missing column"))
    assert not is_transient(ConfigError("bad URL"))
    assert not is_transient(sa.exc.ProgrammingError("SELECT x", {}, Exception("no such column")))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(None)


def task_runs(flow_run_id: object) -> dict[str, int]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                     sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200)
    return {r.name: r.run_count for r in runs}


@pytest.mark.e2e
def test_a_file_growing_while_read_is_loaded_once_complete(tmp_path: Path, prefect_harness: None) -> None:
    folder = tmp_path / "landing" / "events" / "2022-01-05"
    folder.mkdir(parents=True)
    path = folder / "honours.csv"
    path.write_text("荣誉编号,年度,荣誉,级别,获奖对象\n", encoding="utf-8")
    stop = time.monotonic() + 6

    def grow() -> None:  # a delivery being copied in, row by row, for 6 s
        i = 0
        with path.open("a", encoding="utf-8") as fh:
            while time.monotonic() < stop:
                i += 1
                fh.write(f"H{i},2021,优秀志愿者,区级,单位{i}\n")
                fh.flush()
                time.sleep(0.0005)

    writer = threading.Thread(target=grow)
    with Env(UNIONWH_HOME=str(tmp_path), UNIONWH_LANDING=str(tmp_path / "landing"),
             UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'wh.duckdb'}", UNIONWH_OUTPUT=str(tmp_path / "runs"),
             UNIONWH_MEMBERS_URL="", UNIONWH_PII_KEY="retry-test-key-0123456789abcdef"):
        writer.start()
        state = nightly_load(build=False, return_state=True)
        writer.join()
    summary = state.result()
    assert summary.status == "succeeded"
    assert task_runs(state.state_details.flow_run_id)["extract_events"] >= 2  # failed while growing, retried
    rows = path.read_text(encoding="utf-8").count("\n") - 1
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            ledger = conn.exec_driver_sql("SELECT file_sha256, rows_read, rows_loaded, status FROM ops.load_ledger "
                                          "WHERE table_name = 'honours'").all()
            loaded = conn.exec_driver_sql("SELECT count(*) FROM raw.events__honours").scalar()
    finally:
        engine.dispose()
    assert [tuple(r) for r in ledger] == [(common.sha256_file(path), rows, rows, "loaded")]
    assert loaded == rows > 100
