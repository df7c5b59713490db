"""The marts snapshot (flows/warehouse/snapshot.py): the analysts' read path on a DuckDB warehouse.

A run publishes the marts to ``<warehouse stem>-marts.duckdb`` and swaps it in atomically; readers
open that file read-only at any time, during a run too, and every answer is the old state or the
new one, never an error or a mix (issue 23, part 3)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from flows.warehouse import snapshot
from tests.support import ROOT, Demo2021, copy_demo

RUN = "20260101T000000-aaaaaa"


def warehouse(path: Path) -> sa.Engine:
    """A small DuckDB warehouse: two marts, and the node results of one build (run ``RUN``)."""
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA ops")
    con.execute("CREATE TABLE marts.fig (report_year INT, value DECIMAL(18,2))")
    con.execute("INSERT INTO marts.fig VALUES (2021, 1.50), (2022, 2.25)")
    con.execute("CREATE TABLE marts.dim (k VARCHAR)")
    con.execute("INSERT INTO marts.dim VALUES ('a'), ('b')")
    con.execute(
        "CREATE TABLE ops.dbt_node_results (run_id VARCHAR, unique_id VARCHAR, resource_type VARCHAR, "
        "status VARCHAR, failures BIGINT, project_hash VARCHAR, built_at TIMESTAMP)"
    )
    con.execute(
        f"INSERT INTO ops.dbt_node_results VALUES ('{RUN}', 'model.unionwh.fig', 'model', 'success', NULL, 'h', now())"
    )
    con.close()
    return sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)


def read(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_publish_copies_the_marts_then_only_what_changed_and_swaps_atomically(tmp_path: Path) -> None:
    engine = warehouse(tmp_path / "wh.duckdb")
    target = tmp_path / "wh-marts.duckdb"
    first = snapshot.publish(engine, target, RUN)
    assert (first.marts, first.copied, first.dropped) == (2, ["dim", "fig"], [])
    assert read(target, "SELECT * FROM marts.fig ORDER BY 1") == [(2021, 1.5), (2022, 2.25)]
    assert read(target, "SELECT run_id FROM main.snapshot_info") == [(RUN,)]
    assert read(target, "SELECT data_type FROM information_schema.columns WHERE column_name = 'value'") == [
        ("DECIMAL(18,2)",)
    ]

    # a reader that opened the first snapshot keeps it, whole, while the next one is swapped in
    reader = duckdb.connect(str(target), read_only=True)
    later = "20260102T000000-bbbbbb"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO marts.fig VALUES (2023, 3)")  # rebuilt by the next build
        conn.exec_driver_sql(
            f"INSERT INTO ops.dbt_node_results VALUES ('{later}', 'model.unionwh.fig', 'model', 'success', NULL, "
            "'h', now())"
        )
        conn.exec_driver_sql("CREATE TABLE marts.new_mart AS SELECT 1 AS x")  # new to the schema
        conn.exec_driver_sql("DROP TABLE marts.dim")  # gone
    second = snapshot.publish(engine, target, later)
    assert (second.copied, second.dropped) == (["fig", "new_mart"], ["dim"])
    assert reader.execute("SELECT count(*) FROM marts.fig").fetchone() == (2,)
    assert reader.execute("SELECT run_id FROM main.snapshot_info").fetchone() == (RUN,)
    reader.close()
    assert read(target, "SELECT count(*) FROM marts.fig") == [(3,)]
    assert read(
        target, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1"
    ) == [
        ("fig",),
        ("new_mart",),
    ]

    # a mart changed without a recorded build (its row count differs) is copied too; the others not
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO marts.new_mart VALUES (2)")
    third = snapshot.publish(engine, target, "20260103T000000-cccccc")
    assert third.copied == ["new_mart"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "wh-marts.duckdb",
        "wh.duckdb",
    ]  # no temporary file left


def test_a_killed_publication_leaves_the_old_snapshot_and_the_next_one_cleans_up(tmp_path: Path) -> None:
    engine = warehouse(tmp_path / "wh.duckdb")
    target = tmp_path / "wh-marts.duckdb"
    snapshot.publish(engine, target, RUN)
    stale = tmp_path / ".wh-marts.duckdb.20260102T000000-dddddd.tmp"
    stale.write_bytes(b"half a file")  # what a run killed while writing leaves
    assert read(target, "SELECT run_id FROM main.snapshot_info") == [(RUN,)]
    snapshot.publish(engine, target, "20260104T000000-eeeeee")
    assert not stale.exists()
    # a snapshot that is not ours (no snapshot_info) is rewritten whole
    target.unlink()
    duckdb.connect(str(target)).close()
    assert snapshot.publish(engine, target, "20260105T000000-ffffff").copied == ["dim", "fig"]


def test_a_failed_publication_is_one_line_and_the_run_stays_succeeded(tmp_path: Path) -> None:
    engine = warehouse(tmp_path / "wh.duckdb")
    lines: list[str] = []
    missing = tmp_path / "no-such-folder" / "wh-marts.duckdb"
    assert snapshot.publish_logged(engine, missing, RUN, lines.append) is None
    assert (
        len(lines) == 1
        and lines[0].startswith("marts snapshot not published (")
        and "previous one" in lines[0]
    )


READER = """
import json, os, sys, time
from tests.warehouse.test_snapshot import figures_of
path, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(stop):
    try:
        run, rows = figures_of(path)
        print(json.dumps({"run": run, "figures": rows}), flush=True)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    time.sleep(0.05)
"""
"""A process reading the snapshot in a loop (what :func:`figures_of` reads) until ``stop`` exists."""


def figures_of(path: Path | str) -> tuple[str, list[list[str]]]:
    """The snapshot's run and its 2021 figures (id, value as text)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        run = con.execute("SELECT run_id FROM main.snapshot_info").fetchone()[0]
        rows = con.execute(
            "SELECT figure_id, CAST(value AS VARCHAR) FROM marts.fig_annual_figures WHERE report_year = 2021 "
            "ORDER BY figure_id"
        ).fetchall()
    finally:
        con.close()
    return run, [list(r) for r in rows]


@pytest.mark.e2e
def test_a_reader_during_a_run_gets_the_old_or_the_new_marts_never_an_error(
    demo_2021: Demo2021, tmp_path: Path
) -> None:
    demo = copy_demo(demo_2021, tmp_path / "demo")
    snap = demo.home / "warehouse-marts.duckdb"
    assert snap.is_file(), "the demo's run published no marts snapshot"
    old = figures_of(snap)
    started = time.monotonic()
    assert old[0] == demo.first.run_id and len(old[1]) == 42
    # a new delivery: one more cultural activity in 2021, so the figures change
    late = demo.home / "landing" / "events" / "2022-01-20"
    late.mkdir(parents=True)
    (late / "activities.csv").write_text(
        "活动编号,名称,类别,日期,参与方式,参与人次\nHD20219999,文体活动补报,文体,2021-12-20,举办,40\n",
        encoding="utf-8",
    )
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(snap), str(stop)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    lines: list[str] = []
    collect = threading.Thread(target=lambda: lines.extend(reader.stdout or []), daemon=True)
    collect.start()
    env = {**os.environ, **demo.env, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    try:
        while not lines:  # the reader reads before the run starts
            assert reader.poll() is None and time.monotonic() < started + 60
            time.sleep(0.1)
        run = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", "--year", "2021"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        published = figures_of(snap)[0]
        deadline = time.monotonic() + 60
        while not any(published in line for line in lines[-3:]):  # until it reads the new snapshot
            assert reader.poll() is None and time.monotonic() < deadline, lines[-3:]
            time.sleep(0.1)
    finally:
        stop.touch()
        reader.wait(timeout=60)
        collect.join(timeout=60)
    new = figures_of(snap)
    assert new[0] != old[0] and new[1] != old[1]
    changed = {a[0] for a, b in zip(old[1], new[1], strict=True) if a != b}
    assert changed == {"events.culture_activities"}
    answers = [json.loads(line) for line in lines]
    errors = [a["error"] for a in answers if "error" in a]
    assert not errors, errors[:5]
    states = [(a["run"], a["figures"]) for a in answers]
    assert all(s in (old, new) for s in states), (
        "a reader saw a state that is neither the old nor the new one"
    )
    assert states[0] == old and states[-1] == new
    assert len(states) > 20  # it read all along the run
    assert "marts snapshot: " in run.stderr  # the run said where it published


HOLDER = "import sys, time, duckdb\ncon = duckdb.connect(sys.argv[1])\nprint('open', flush=True)\ntime.sleep(120)\n"


def test_figures_while_a_run_holds_the_warehouse_come_from_the_snapshot(
    demo_2021: Demo2021, tmp_path: Path
) -> None:
    demo = copy_demo(demo_2021, tmp_path / "demo")
    env = {**os.environ, **demo.env}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def figures() -> subprocess.CompletedProcess[str]:
        return cli("figures", "--year", "2021", "--format", "json")

    def metrics() -> subprocess.CompletedProcess[str]:  # the semantic layer reads the same way
        return cli(
            "metrics", "query", "--metrics", "rights_consultations,funds_project_subsidy_yuan",
            "--group-by", "metric_time__quarter", "--format", "json",
        )  # fmt: skip

    free, free_metrics = figures(), metrics()
    assert free.returncode == 0 and free.stderr == "", free.stderr
    assert free_metrics.returncode == 0 and free_metrics.stderr == "", free_metrics.stderr
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(demo.home / "warehouse.duckdb")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        busy, busy_metrics = figures(), metrics()
        (demo.home / "warehouse-marts.duckdb").rename(tmp_path / "aside.duckdb")
        without = figures()
    finally:
        holder.kill()
        holder.wait()
    assert busy.returncode == 0, busy.stderr
    assert busy.stdout == free.stdout  # the same 42 figures
    assert busy.stderr.startswith("note: the warehouse is in use by a run; reading the marts snapshot ")
    assert f"(run {demo.first.run_id}, published " in busy.stderr and len(busy.stderr.splitlines()) == 1
    assert busy_metrics.returncode == 0 and busy_metrics.stdout == free_metrics.stdout, busy_metrics.stderr
    assert busy_metrics.stderr.startswith(
        "note: the warehouse is in use by a run; reading the marts snapshot "
    )
    # no snapshot: the one line it always said
    assert without.returncode == 2 and without.stdout == ""
    assert without.stderr.strip().startswith(
        "unionwh: error: the DuckDB warehouse is open in another process"
    )


PG_READER = """
import json, os, sys, time, psycopg
conninfo, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(stop):
    try:
        with psycopg.connect(conninfo, connect_timeout=5) as con:
            rows = con.execute(
                "SELECT figure_id, CAST(value AS VARCHAR) FROM marts.fig_annual_figures WHERE report_year = 2021 "
                "ORDER BY figure_id"
            ).fetchall()
        print(json.dumps({"figures": [list(r) for r in rows]}), flush=True)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    time.sleep(0.05)
"""


@pytest.mark.postgres
def test_an_analyst_reading_postgresql_during_a_build_gets_the_old_or_the_new_marts(
    demo_2021: Demo2021, tmp_path: Path
) -> None:
    """On PostgreSQL the analyst role reads the marts themselves: while a run rebuilds them, every
    answer is the old state or the new one, never an error (a missing grant, a dropped table)."""
    from sqlalchemy.engine import make_url

    from flows.nightly import nightly_load
    from flows.warehouse.roles import ANALYST
    from tests.support import Env, create_database, drop_database, postgres_or_skip

    server = postgres_or_skip()
    demo = copy_demo(demo_2021, tmp_path / "demo")
    name, login = f"unionwh_read_{secrets.token_hex(4)}", f"unionwh_test_reader_{secrets.token_hex(4)}"
    create_database(server, name)
    url = make_url(f"{server}/{name}")
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    env = {
        **demo.env,
        "UNIONWH_WAREHOUSE": str(url.render_as_string(hide_password=False)),
        "UNIONWH_OUTPUT": str(demo.home / "pg-runs"),
        "UNIONWH_PII_KEY": (demo.home / "pii.key").read_text(encoding="ascii").strip(),
    }
    try:
        with Env(**env):
            first = nightly_load(year=2021)
        assert first.status == "succeeded"
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {login} LOGIN IN ROLE {ANALYST}")
        late = demo.home / "landing" / "events" / "2022-01-20"
        late.mkdir(parents=True)
        (late / "activities.csv").write_text(
            "活动编号,名称,类别,日期,参与方式,参与人次\nHD20219999,文体活动补报,文体,2021-12-20,举办,40\n",
            encoding="utf-8",
        )
        conninfo = f"host={url.host} port={url.port or 5432} dbname={name} user={login}"
        stop = tmp_path / "stop"
        reader = subprocess.Popen(
            [sys.executable, "-c", PG_READER, conninfo, str(stop)], stdout=subprocess.PIPE, text=True
        )
        lines: list[str] = []
        collect = threading.Thread(target=lambda: lines.extend(reader.stdout or []), daemon=True)
        collect.start()
        try:
            deadline = time.monotonic() + 60
            while not lines:
                assert reader.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            with Env(**env):
                second = nightly_load(year=2021)
            assert second.status == "succeeded"
            seen = len(lines)
            deadline = time.monotonic() + 60
            while len(lines) < seen + 3:  # a few answers after the run
                assert reader.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        finally:
            stop.touch()
            reader.wait(timeout=60)
            collect.join(timeout=60)
        old = {f.id: Decimal(str(f.value)) for f in first.figures}
        new = {f.id: Decimal(str(f.value)) for f in second.figures}
        assert {k for k in old if old[k] != new[k]} == {"events.culture_activities"}
        answers = [json.loads(line) for line in lines]
        errors = [a["error"] for a in answers if "error" in a]
        assert not errors, errors[:5]
        states = [{k: Decimal(v) for k, v in a["figures"]} for a in answers]
        assert all(s in (old, new) for s in states), "the analyst saw neither the old nor the new marts"
        assert states[0] == old and states[-1] == new and len(states) > 20
        # the demo on PostgreSQL: every metric of the semantic layer at year grain equals its figure
        from flows.metrics.engine import manifest_path
        from tests.metrics.equality import assert_metrics_equal_figures

        assert (
            assert_metrics_equal_figures(admin, manifest_path(demo.home / "pg-runs"), duckdb=False) >= 42 * 11
        )
    finally:
        admin.dispose()
        drop_database(server, name)
        with sa.create_engine(f"{server}/test", poolclass=sa.pool.NullPool).begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {login}")
