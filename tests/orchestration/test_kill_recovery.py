"""Kill the load at 10 points (extract, validation, load, dbt, figures) and run again: the
warehouse and the figures equal those of a run that was never interrupted.

Each killed run is a real `unionwh run` process that dies by SIGKILL at a fail point
(flows/faults.py); the re-run is another real process. The landing zone is the demo's,
cut down (its first delivery, plus registry's last; the first 200 lines of each CSV/JSONL
file; one welfare workbook; 300 members) so that 21 runs fit in CI; the child processes
share one local Prefect server.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.demo.synth import generate
from flows.schema import SOURCES
from flows.warehouse import refresh

from tests.support import clean_env, local_prefect_server

pytestmark = pytest.mark.e2e

POINTS = ["extract.registry#2", "extract.members", "validate.rights", "load.in_transaction#1",
          "load.in_transaction#9", "load.committed#4", "load.source_done#3", "dbt.node#40", "dbt.done",
          "figures.computed"]
KEY = "kill-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill") / "landing"
    generate(root, year=2021, seed=2021)
    for folder in root.glob("*/*"):
        if folder.is_dir() and folder.name != "2021-04-01" and folder.parent.name != "registry":
            shutil.rmtree(folder)
    for folder in ("2021-07-01", "2021-10-01"):
        shutil.rmtree(root / "registry" / folder)
    for path in root.rglob("*"):
        if path.suffix in (".csv", ".jsonl"):
            path.write_bytes(b"\n".join(path.read_bytes().split(b"\n")[:200]) + b"\n")
    for path in sorted(root.glob("welfare/*/*.xlsx"))[1:]:
        path.unlink()
    con = sqlite3.connect(root / "members.sqlite")
    con.executescript("DELETE FROM member WHERE member_id > 300; DELETE FROM member_card WHERE card_event_id > 300;")
    con.commit()
    con.close()
    return root


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_prefect_server(tmp_path_factory.mktemp("prefect")) as (base, _):
        yield base


def run(landing: Path, api_url: str, work: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(work / "prefect"), UNIONWH_HOME=str(work),
               UNIONWH_LANDING=str(landing), UNIONWH_WAREHOUSE=f"duckdb:///{work / 'wh.duckdb'}",
               UNIONWH_OUTPUT=str(work / "runs"), UNIONWH_PII_KEY=KEY, UNIONWH_REPORT_YEAR="2021")
    if fault:
        env["UNIONWH_FAULT_AT"] = fault
    return subprocess.run([sys.executable, "-m", "flows.cli", "run"], env=env, capture_output=True, text=True,
                          timeout=900)


def state(work: Path) -> tuple[dict, set, set]:
    engine = sa.create_engine(f"duckdb:///{work / 'wh.duckdb'}")
    try:
        prints = refresh.fingerprints(engine, SOURCES)
        with engine.connect() as conn:
            figures = {tuple(r) for r in conn.exec_driver_sql(
                "SELECT figure_id, report_year, value FROM marts.fig_annual_figures")}
            marks = {tuple(r) for r in conn.exec_driver_sql("SELECT * FROM ops.watermarks")}
    finally:
        engine.dispose()
    return prints, figures, marks


@pytest.fixture(scope="module")
def clean(landing: Path, prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, tuple]:
    work = tmp_path_factory.mktemp("clean")
    done = run(landing, prefect_api, work)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, state(work)


def recover(point: str, landing: Path, prefect_api: str, work: Path, clean: tuple) -> str | None:
    """Kill a run at ``point``, run again; what differs from the clean run (None: nothing)."""
    work.mkdir()
    killed = run(landing, prefect_api, work, fault=point)
    if killed.returncode != -signal.SIGKILL:
        return f"{point}: never reached (exit {killed.returncode}):\n{killed.stdout[-1500:]}{killed.stderr[-1500:]}"
    again = run(landing, prefect_api, work)
    code, (prints, figures, marks) = clean
    if again.returncode != code:
        return f"{point}: re-run exited {again.returncode}, not {code}:\n{again.stdout[-1500:]}{again.stderr[-1500:]}"
    now_prints, now_figures, now_marks = state(work)
    problems = [f"{name}: {now_prints.get(name)} != {prints.get(name)}"
                for name in sorted(set(prints) | set(now_prints)) if now_prints.get(name) != prints.get(name)]
    if now_figures != figures:
        problems.append(f"figures differ: {sorted(now_figures ^ figures)[:10]}")
    if now_marks != marks:
        problems.append(f"watermarks differ: {now_marks} != {marks}")
    return f"{point}: " + "; ".join(problems) if problems else None


def test_a_killed_run_recovers_to_the_clean_state(landing: Path, prefect_api: str, clean: tuple,
                                                  tmp_path: Path) -> None:
    """All 10 fail points, two at a time (each is two real runs on its own warehouse)."""
    assert len(clean[1][1]) >= 42
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda p: recover(p, landing, prefect_api, tmp_path / p.replace("#", "_"), clean),
                                 POINTS))
    failures = [o for o in outcomes if o]
    assert not failures, "\n\n".join(failures)
