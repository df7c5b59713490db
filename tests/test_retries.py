"""Retries: transient failures are retried with backoff, data errors never; a landing file
still being written is not loaded until it stops changing (a real flow run)."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from flows.dbcheck import is_transient
from flows.errors import BatchError, ConfigError, FileInFlux
from flows.nightly import nightly_load
from flows.sources import common
from tests.support import Env, free_port, mariadb_or_skip, postgres_or_skip


@pytest.mark.unit
def test_only_transient_errors_are_retried() -> None:
    assert is_transient(FileInFlux("a.csv changed while it was being read"))
    assert is_transient(sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(BatchError("a.csv", "batch.columns", "missing column"))
    assert not is_transient(ConfigError("bad URL"))
    assert not is_transient(sa.exc.ProgrammingError("SELECT x", {}, Exception("no such column")))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(None)


def connect_error(url: str) -> sa.exc.DBAPIError:
    """The error SQLAlchemy raises when connecting to ``url`` (a real server's answer)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{make_url(url).render_as_string()} accepted the connection")


@pytest.mark.mariadb
@pytest.mark.postgres
def test_refused_logins_and_unknown_databases_are_not_retried_refused_connections_are() -> None:
    """On the real servers' errors: a wrong password (MariaDB 1045), an unknown database (1049,
    PostgreSQL 3D000), an unknown role (class 28), a missing SQLite file fail at once; a closed
    port (nothing listening: connection refused) is retried. (All were OperationalErrors, all
    retried three times before issue 18.)"""
    maria, pg = make_url(mariadb_or_skip()), make_url(postgres_or_skip())
    closed = free_port()
    never = {
        "MariaDB wrong password": maria.set(password="wrong", database="test"),
        "MariaDB unknown database": maria.set(database="unionwh_no_such_db"),
        "PostgreSQL unknown database": pg.set(database="unionwh_no_such_db"),
        "PostgreSQL unknown role": pg.set(username="unionwh_no_such_role", database="test"),
        "SQLite missing file": make_url("sqlite:////nonexistent/unionwh/members.sqlite"),
    }
    for what, url in never.items():
        exc = connect_error(url.render_as_string(hide_password=False))
        assert isinstance(exc, sa.exc.OperationalError) and not is_transient(exc), what
    for what, url in {
        "MariaDB closed port": maria.set(port=closed, database="test"),
        "PostgreSQL closed port": pg.set(port=closed, database="test"),
    }.items():
        exc = connect_error(url.render_as_string(hide_password=False))
        assert is_transient(exc), what


def test_a_duckdb_file_held_by_another_process_is_retried(tmp_path: Path) -> None:
    """DuckDB allows one process per file: a load that finds it held (by a `unionwh status` of a
    monitor, say) gets an OperationalError worth retrying — not a configuration error."""
    path = tmp_path / "wh.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                "print('open', flush=True); time.sleep(60)"
            ),
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        exc = connect_error(f"duckdb:///{path}")
    finally:
        holder.kill()
        holder.wait()
    assert "lock" in str(exc).lower() and is_transient(exc)


def task_runs(flow_run_id: object) -> dict[str, int]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
    return {r.name: r.run_count for r in runs}


@pytest.mark.e2e
def test_a_file_growing_while_read_is_loaded_once_complete(tmp_path: Path, prefect_harness: None) -> None:
    folder = tmp_path / "landing" / "events" / "2022-01-05"
    folder.mkdir(parents=True)
    path = folder / "honours.csv"
    path.write_text("荣誉编号,年度,荣誉,级别,获奖对象\n", encoding="utf-8")
    trace = tmp_path / "points.txt"  # flows/faults.py: every fail point reached, one a line
    trace.touch()
    give_up = time.monotonic() + 300

    def grow() -> None:  # a delivery being copied in, row by row, until the run has read it once
        i = 0
        with path.open("a", encoding="utf-8") as fh:
            while "read.events" not in trace.read_text(encoding="utf-8") and time.monotonic() < give_up:
                for _ in range(20):
                    i += 1
                    fh.write(f"H{i},2021,优秀志愿者,区级,单位{i}\n")
                    fh.flush()
                    time.sleep(0.0005)

    writer = threading.Thread(target=grow)
    with Env(
        UNIONWH_HOME=str(tmp_path),
        UNIONWH_LANDING=str(tmp_path / "landing"),
        UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'wh.duckdb'}",
        UNIONWH_OUTPUT=str(tmp_path / "runs"),
        UNIONWH_MEMBERS_URL="",
        UNIONWH_PII_KEY="retry-test-key-0123456789abcdef",
        UNIONWH_FAULT_TRACE=str(trace),
    ):
        writer.start()
        state = nightly_load(build=False, return_state=True)
        writer.join()
    summary = state.result()
    assert summary.status == "succeeded"
    assert task_runs(state.state_details.flow_run_id)["extract-events"] >= 2  # failed while growing, retried
    rows = path.read_text(encoding="utf-8").count("\n") - 1
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            ledger = conn.exec_driver_sql(
                "SELECT file_sha256, rows_read, rows_loaded, status FROM ops.load_ledger "
                "WHERE table_name = 'honours'"
            ).all()
            loaded = conn.exec_driver_sql("SELECT count(*) FROM raw.events__honours").scalar()
    finally:
        engine.dispose()
    assert [tuple(r) for r in ledger] == [(common.sha256_file(path), rows, rows, "loaded")]
    assert loaded == rows > 100
    # a flow called from Python (no CLI umask): the warehouse and the run folder are private anyway
    assert stat.S_IMODE((tmp_path / "wh.duckdb").stat().st_mode) == 0o600
    run_dirs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert run_dirs and all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in run_dirs)
