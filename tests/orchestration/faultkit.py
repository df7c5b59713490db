"""What the fault tests share: a small landing zone, a real `unionwh run` process, and the
state of a warehouse to compare with a clean run's."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from flows.demo.synth import generate
from flows.schema import SOURCES
from flows.warehouse import refresh
from tests.support import clean_env

KEY = "kill-test-key-0123456789abcdef"


def small_landing(root: Path) -> Path:
    """The demo's landing zone, cut down so that dozens of runs fit in CI: its first delivery
    (plus registry's last), the first 200 lines of each CSV/JSONL file, one welfare workbook,
    300 members."""
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
    con.executescript(
        "DELETE FROM member WHERE member_id > 300; DELETE FROM member_card WHERE card_event_id > 300;"
    )
    con.commit()
    con.close()
    return root


def duckdb_url(work: Path) -> str:
    """The warehouse of a run whose home is ``work`` (unless it names another)."""
    return f"duckdb:///{work / 'wh.duckdb'}"


def run_env(
    landing: Path, api_url: str, work: Path, warehouse: str | None = None, **extra: str
) -> dict[str, str]:
    env = clean_env()
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(work / "prefect"),
        UNIONWH_HOME=str(work),
        UNIONWH_LANDING=str(landing),
        UNIONWH_WAREHOUSE=warehouse or duckdb_url(work),
        UNIONWH_OUTPUT=str(work / "runs"),
        UNIONWH_PII_KEY=KEY,
        UNIONWH_REPORT_YEAR="2021",
        **extra,
    )
    return env


def run(
    landing: Path, api_url: str, work: Path, warehouse: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """One real `unionwh run` to its end (``extra``: more environment, e.g. a fail point)."""
    work.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "run"],
        env=run_env(landing, api_url, work, warehouse, **extra),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def start(
    landing: Path, api_url: str, work: Path, warehouse: str | None = None, **extra: str
) -> subprocess.Popen[str]:
    """The same, started in the background (its output goes to ``work/run.log``)."""
    work.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run"],
        env=run_env(landing, api_url, work, warehouse, **extra),
        stdout=(work / "run.log").open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def figures_table(engine: sa.Engine) -> str:
    """marts.fig_annual_figures, every column of every row, as text: compared byte for byte."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql("SELECT * FROM marts.fig_annual_figures ORDER BY figure_year_id")
        lines = ["\t".join(result.keys())]
        lines += ["\t".join(repr(v) for v in row) for row in result]
    return "\n".join(lines)


def state(url: str) -> tuple[dict, str, set]:
    """A warehouse's content fingerprint per raw/ops table, its figures table, its watermarks."""
    engine = sa.create_engine(url)
    try:
        prints = refresh.fingerprints(engine, SOURCES)
        figures = figures_table(engine)
        with engine.connect() as conn:
            marks = {tuple(r) for r in conn.exec_driver_sql("SELECT * FROM ops.watermarks")}
    finally:
        engine.dispose()
    return prints, figures, marks


def differences(now: tuple[dict, str, set], clean: tuple[dict, str, set]) -> list[str]:
    """What differs between two states (empty: nothing)."""
    (now_prints, now_figures, now_marks), (prints, figures, marks) = now, clean
    problems = [
        f"{name}: {now_prints.get(name)} != {prints.get(name)}"
        for name in sorted(set(prints) | set(now_prints))
        if now_prints.get(name) != prints.get(name)
    ]
    if now_figures != figures:
        changed = sorted(set(now_figures.splitlines()) ^ set(figures.splitlines()))
        problems.append(f"figures table differs: {changed[:6]}")
    if now_marks != marks:
        problems.append(f"watermarks differ: {now_marks} != {marks}")
    return problems
