"""Issue 19: a run stopped from outside — Ctrl-C in a terminal, a scheduler's SIGTERM — stops in
seconds with one line, records itself in ``ops.runs`` as ``interrupted`` with what it committed
(its completed ledger entries), lets the warehouse lock go, and the next run loads only the rest.

The stopped runs are real ``unionwh run`` / ``unionwh backfill`` processes on the small demo
landing zone (tests/orchestration/faultkit.py), DuckDB, ``--load-only``, each with its own
temporary Prefect server, as a user's runs have; the run after each is a real flow run in this
process. A run is stopped at a fixed point, not after a sleep: the fail point
``load.source_done#2`` (flows/faults.py) pauses it once two sources' loads are committed, and the
signal comes while it waits there. Ctrl-C goes to the whole process group, as a terminal sends
it: before issue 19 it stopped Prefect's temporary server too, and the run then spent a minute
or two retrying to report to it, ending in tracebacks, with the run left ``running`` (then
``crashed``, with 0 files and 0 rows). Three fast tests cover what a fixed point cannot
reach: a signal a library swallowed, a second Ctrl-C, a stop just after the run finished.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows import faults
from flows.nightly import stop_signal
from flows.orchestration import interrupt
from tests.orchestration.faultkit import KEY, small_landing
from tests.support import Env, clean_env, wait_for

pytestmark = pytest.mark.e2e

STOP_POINT = "load.source_done#2"
BOUND_SECONDS = 30
"""A stopped run exits within this (it takes 2-6 s on a 2-core machine; CI is noisy)."""


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_landing(tmp_path_factory.mktemp("interrupt") / "landing")


def env_of(landing: Path, work: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no PREFECT_API_URL (each run starts its temporary server)."""
    return dict(
        clean_env(),
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        UNIONWH_HOME=str(work),
        UNIONWH_LANDING=str(landing),
        UNIONWH_WAREHOUSE=f"duckdb:///{work / 'wh.duckdb'}",
        UNIONWH_OUTPUT=str(work / "runs"),
        UNIONWH_PII_KEY=KEY,
        UNIONWH_REPORT_YEAR="2021",
        **extra,
    )


def stopped(
    landing: Path, work: Path, args: list[str], signum: int, group: bool
) -> tuple[int, str, str, float]:
    """``unionwh <args>`` paused at STOP_POINT, then sent ``signum`` (to its process group, as a
    terminal's Ctrl-C, or to it alone, as a scheduler): exit code, stdout, stderr, and the
    seconds from the signal to its exit."""
    work.mkdir(parents=True, exist_ok=True)
    marker = work / "paused"
    out, err = work / "out.txt", work / "err.txt"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args],
            stdout=o,
            stderr=e,
            text=True,
            env=env_of(landing, work, **{faults.ENV: STOP_POINT, faults.PAUSE_ENV: str(marker)}),
            start_new_session=True,
        )
        try:
            wait_for(marker.exists, f"the run to reach {STOP_POINT}", 300, [proc])
            sent = time.monotonic()
            (os.killpg if group else os.kill)(proc.pid, signum)
            code = proc.wait(timeout=300)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"), took


def carry_on(landing: Path, work: Path, backfill: bool = False) -> list[tuple[int, int, int]]:
    """The next run (a real flow run in this process, on the session's Prefect test server: a
    second CLI process would double the test's time), at once and not waiting for any lock (a
    lock left behind fails it); (read, loaded, quarantined) of each run it made."""
    from flows.backfill import backfill as backfill_flow
    from flows.nightly import nightly_load

    env = {
        k: v
        for k, v in env_of(landing, work, UNIONWH_LOCK_WAIT_SECONDS="0").items()
        if k.startswith("UNIONWH_")
    }
    with Env(**env):
        runs = (
            backfill_flow(date(2021, 1, 1), date(2022, 12, 31), build=False)
            if backfill
            else [nightly_load(build=False)]
        )
    assert [r.status for r in runs] == ["succeeded"] * len(runs), [(r.status, r.errors) for r in runs]
    return [r.rows for r in runs]


def the_line(code: int, out: str, err: str, want_code: int) -> str:
    """The exit code, no traceback anywhere, and exactly one line of unionwh's own on stderr."""
    assert code == want_code, (code, out[-2000:], err[-4000:])
    assert "Traceback" not in out + err, err[-4000:]
    ours = [line for line in err.splitlines() if line.startswith("unionwh:")]
    assert len(ours) == 1 and ours[0].startswith("unionwh: interrupted: "), err[-4000:]
    return ours[0]


def server_gone(err: str) -> None:
    """The run's temporary Prefect server (in a session of its own since issue 19) was stopped
    with it: nothing answers on its port."""
    found = re.search(r"Stopping temporary server on http://127\.0\.0\.1:(\d+)", err)
    assert found, err[-3000:]
    port = int(found.group(1))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"the temporary server on port {port} outlived its run"


def runs_and_ledger(work: Path) -> tuple[dict[str, dict], dict[str, tuple[int, int, int, int]], list[tuple]]:
    """ops.runs by run id; per run, from its completed ledger entries: (files, rows read, loaded,
    quarantined); and every loaded (source, table, file hash) with its rows loaded."""
    engine = sa.create_engine(f"duckdb:///{work / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            runs = {
                r.run_id: r._asdict()
                for r in conn.execute(
                    sa.text(
                        "SELECT run_id, status, finished_at, message, files_loaded, rows_read, rows_loaded, rows_quarantined "
                        "FROM ops.runs"
                    )
                )
            }
            ledger = {
                r[0]: tuple(int(v) for v in r[1:])
                for r in conn.execute(
                    sa.text(
                        "SELECT run_id, count(DISTINCT source || '/' || file_name), sum(rows_read), sum(rows_loaded), "
                        "sum(rows_quarantined) FROM ops.load_ledger WHERE status = 'loaded' GROUP BY run_id"
                    )
                )
            }
            loaded = [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT source, table_name, file_sha256, rows_loaded FROM ops.load_ledger WHERE status = 'loaded'"
                    )
                )
            ]
    finally:
        engine.dispose()
    return runs, ledger, loaded


def raw_rows(work: Path) -> int:
    from flows.schema import TABLES

    engine = sa.create_engine(f"duckdb:///{work / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            return sum(
                conn.execute(sa.text(f"SELECT count(*) FROM raw.{t.raw_table}")).scalar_one() for t in TABLES
            )
    finally:
        engine.dispose()


def check_recorded(work: Path, line: str, how: str) -> str:
    """The stopped run's ops.runs row: interrupted, finished, its counts those of its completed
    ledger entries, which the line states too. Returns its run id."""
    m = re.search(
        rf"run (\S+) stopped by {re.escape(how)}; (\d+) files \((\d+) rows\) it committed stay loaded", line
    )
    assert m, line
    run_id, files, rows = m.group(1), int(m.group(2)), int(m.group(3))
    runs, ledger, _ = runs_and_ledger(work)
    run = runs[run_id]
    assert run["status"] == "interrupted" and run["finished_at"] is not None, run
    assert f"interrupted by {how}" in run["message"], run
    assert (run["files_loaded"], run["rows_read"], run["rows_loaded"], run["rows_quarantined"]) == ledger[
        run_id
    ]
    assert (files, rows) == ledger[run_id][:2] and files >= 2 and rows > 0, (line, ledger)
    return run_id


def check_rest_loaded(work: Path, landing: Path, first: str, summaries: list[tuple[int, int, int]]) -> None:
    """After the next run: the stopped run is still ``interrupted`` (not ``crashed``), the next
    run(s) loaded only the rest — the rows their summaries state are the remainder, no file
    loaded twice, every raw row has its ledger entry — and every delivered file was loaded."""
    runs, ledger, loaded = runs_and_ledger(work)
    assert runs[first]["status"] == "interrupted", runs[first]
    others = [r for r in runs if r != first]
    assert others and all(runs[r]["status"] == "succeeded" for r in others), runs
    read, done, quarantined = (sum(s[i] for s in summaries) for i in range(3))
    theirs = [ledger.get(r, (0, 0, 0, 0)) for r in others]
    assert (read, done, quarantined) == tuple(sum(t[i] for t in theirs) for i in (1, 2, 3)), (
        summaries,
        theirs,
    )
    assert read > 0 and done + quarantined == read
    keys = [(s, t, h) for s, t, h, _ in loaded]
    assert len(keys) == len(set(keys)), "a file's table loaded twice"
    assert raw_rows(work) == sum(n for *_, n in loaded), "raw rows without (or beyond) their ledger entries"
    delivered = {p.name for p in landing.rglob("*") if p.is_file() and p.name != "members.sqlite"}
    engine = sa.create_engine(f"duckdb:///{work / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            files = {
                r[0].rsplit("/", 1)[-1]
                for r in conn.execute(
                    sa.text("SELECT file_name FROM ops.load_ledger WHERE source <> 'members'")
                )
            }
    finally:
        engine.dispose()
    assert delivered <= files, delivered - files


def test_the_line_and_exit_code_of_a_stop() -> None:
    """128 + the signal; the line is what the stopped run said, also when a second Ctrl-C came
    while Prefect reported the first one (the second is raised with the first as its context)."""
    said = "run R stopped by SIGTERM; 3 files (10 rows) it committed stay loaded; the next run carries on"
    assert (
        interrupt.exit_code(interrupt.Interrupted(signal.SIGTERM, said)),
        interrupt.describe(interrupt.Interrupted(signal.SIGTERM, said)),
    ) == (143, said)
    assert (interrupt.exit_code(KeyboardInterrupt()), interrupt.describe(KeyboardInterrupt())) == (
        130,
        "stopped by SIGINT (Ctrl-C)",
    )
    assert interrupt.exit_code(interrupt.Interrupted(signal.SIGHUP)) == 129
    try:
        try:
            raise interrupt.Interrupted(signal.SIGINT, said)
        except KeyboardInterrupt:
            raise interrupt.Interrupted(signal.SIGINT) from None  # (the context stays)
    except KeyboardInterrupt as second:
        assert interrupt.describe(second) == said
    assert stop_signal(RuntimeError("Query interrupted")) == signal.SIGINT  # DuckDB's, for an unseen signal
    assert stop_signal(ValueError("bad value")) is None


def test_a_signal_another_handler_took_is_still_seen() -> None:
    """Prefect's SIGTERM handler raises its own exception, which a library may swallow (DuckDB
    makes it an error of its own): during a run the signal is seen all the same, so the run
    records itself interrupted rather than failed, and no task retries."""

    class Swallowed(BaseException):
        pass

    def prefects(signum: int, frame: object) -> None:
        raise Swallowed

    interrupt.reset()
    previous = signal.signal(signal.SIGTERM, prefects)
    try:
        with interrupt.watch():
            assert not interrupt.requested()
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # (the handler runs at once in this thread)
            except Swallowed:
                pass
            assert interrupt.requested() and interrupt.received() == signal.SIGTERM
            assert stop_signal(RuntimeError("any error now")) == signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        interrupt.reset()


def test_a_finished_run_stays_finished(tmp_path: Path) -> None:
    """A stop that comes as a run has just finished does not relabel it (DuckDB has no trigger to
    refuse that, PostgreSQL's refuses it)."""
    from datetime import datetime

    from flows.warehouse import runlog
    from flows.warehouse.engine import init_warehouse

    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        init_warehouse(engine)
        runlog.start(engine, "R1", datetime.now())
        assert runlog.finish(engine, "R1", "succeeded", None, [], 0, {}, None, {})
        assert not runlog.finish(engine, "R1", "interrupted", "stopped", [], 0, {}, None, {})
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT status, message FROM ops.runs")).all() == [
                ("succeeded", None)
            ]
    finally:
        engine.dispose()


def ctrl_c_on_a_run(landing: Path, work: Path) -> tuple[str, str]:
    """Ctrl-C: SIGINT to the run's whole process group (its temporary Prefect server included)."""
    code, out, err, took = stopped(landing, work, ["run", "--load-only"], signal.SIGINT, group=True)
    line = the_line(code, out, err, 130)
    assert took < BOUND_SECONDS, f"{took:.1f} s from Ctrl-C to exit"
    server_gone(err)
    assert line.endswith("; the next run carries on"), line
    return check_recorded(work, line, "SIGINT (Ctrl-C)"), f"run, Ctrl-C to exit {took:.1f} s: {line}"


def sigterm_on_a_backfill(landing: Path, work: Path) -> tuple[str, str]:
    """A scheduler's SIGTERM, to the process alone, in a backfill's first run: exit 143 (128 +
    SIGTERM), the same record."""
    args = ["backfill", "--from", "2021-01-01", "--to", "2022-12-31", "--load-only"]
    code, out, err, took = stopped(landing, work, args, signal.SIGTERM, group=False)
    line = the_line(code, out, err, 143)
    assert took < BOUND_SECONDS, f"{took:.1f} s from SIGTERM to exit"
    server_gone(err)
    assert line.startswith(
        "unionwh: interrupted: backfill stopped at delivery date 2021-04-01 (0 of 2 dates done "
        "before it): run "
    ), line
    assert line.endswith("; the same backfill again carries on"), line
    return check_recorded(work, line, "SIGTERM"), f"backfill, SIGTERM to exit {took:.1f} s: {line}"


def test_a_stopped_run_ends_in_seconds_in_one_line_recorded_interrupted_and_the_next_run_loads_the_rest(
    landing: Path, tmp_path: Path, prefect_harness: None
) -> None:
    """Ctrl-C on `unionwh run` and SIGTERM on `unionwh backfill`, side by side (each on its own
    warehouse, to keep CI short); then the next run of each carries on."""
    work = {"run": tmp_path / "run", "backfill": tmp_path / "backfill"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        run = pool.submit(ctrl_c_on_a_run, landing, work["run"])
        back = pool.submit(sigterm_on_a_backfill, landing, work["backfill"])
        (run_id, said), (back_id, back_said) = run.result(), back.result()
    print(said, back_said, sep="\n")
    check_rest_loaded(work["run"], landing, run_id, carry_on(landing, work["run"]))
    check_rest_loaded(work["backfill"], landing, back_id, carry_on(landing, work["backfill"], backfill=True))
