"""A backfill of 5 deliveries equals 5 nightly runs, and a full refresh equals both: real flow
runs on the demo deliveries (welfare and members left out to keep CI short), real dbt builds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.settings import PREFECT_API_URL

from flows.backfill import backfill
from flows.demo.synth import generate
from flows.nightly import delivery_dates, in_window, nightly_load
from flows.warehouse import refresh
from tests.support import ROOT, Env, clean_env

KEY = "backfill-test-key-0123456789abcdef"


@pytest.mark.unit
def test_window() -> None:
    assert in_window(None, (None, None)) and in_window(date(2021, 1, 1), (None, None))
    assert not in_window(None, (date(2021, 1, 1), None))
    assert in_window(date(2021, 4, 1), (date(2021, 4, 1), date(2021, 4, 1)))
    assert not in_window(date(2021, 4, 2), (None, date(2021, 4, 1)))


def figures(path: Path) -> set[tuple]:
    engine = sa.create_engine(f"duckdb:///{path}")
    try:
        with engine.connect() as conn:
            return {
                tuple(r)
                for r in conn.exec_driver_sql(
                    "SELECT figure_id, report_year, value FROM marts.fig_annual_figures"
                )
            }
    finally:
        engine.dispose()


def fingerprints(path: Path) -> dict[str, tuple[int, str]]:
    engine = sa.create_engine(f"duckdb:///{path}")
    try:
        return refresh.fingerprints(engine)
    finally:
        engine.dispose()


@pytest.mark.e2e
def test_backfill_equals_nightly_runs_and_full_refresh_equals_both(
    tmp_path: Path, prefect_harness: None
) -> None:
    landing = tmp_path / "landing"
    generate(landing, year=2021, seed=2021)
    shutil.rmtree(landing / "welfare")
    (landing / "members.sqlite").unlink()
    fifth = landing / "events" / "2022-02-01"
    fifth.mkdir()
    (fifth / "honours.csv").write_text(
        "荣誉编号,年度,荣誉,级别,获奖对象\nHX1,2021,五一劳动奖状,区级,补报单位\n", encoding="utf-8"
    )
    days = delivery_dates(landing, (None, None))
    assert len(days) == 5

    base = {
        "UNIONWH_HOME": str(tmp_path),
        "UNIONWH_LANDING": str(landing),
        "UNIONWH_OUTPUT": str(tmp_path / "runs"),
        "UNIONWH_MEMBERS_URL": "",
        "UNIONWH_PII_KEY": KEY,
        "UNIONWH_REPORT_YEAR": "2021",
    }
    nightly, backfilled = tmp_path / "nightly.duckdb", tmp_path / "backfill.duckdb"
    # The nightly runs (tests/orchestration/nightly_chain.py: one run per delivery day) go on in
    # a child process, on their own warehouse, while the backfill runs here.
    chain = subprocess.Popen(
        [sys.executable, "-m", "tests.orchestration.nightly_chain", *map(str, days)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "nightly.log").open("w"),
        text=True,
        env={
            **clean_env(),
            **base,
            "UNIONWH_WAREHOUSE": f"duckdb:///{nightly}",
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_HOME": str(tmp_path / "prefect"),
        },
    )
    try:
        with Env(**base, UNIONWH_WAREHOUSE=f"duckdb:///{backfilled}"):
            runs = backfill(days[0], days[-1])
        out, _ = chain.communicate(timeout=900)
    finally:
        if chain.poll() is None:
            chain.kill()
            chain.wait()
    assert chain.returncode == 0, (tmp_path / "nightly.log").read_text()[-3000:]
    for run in json.loads(out.splitlines()[-1]):
        assert run["status"] == "succeeded" and run["ledger"], run["day"]
    assert [r.status for r in runs] == ["succeeded"] * 5
    assert [{e.delivery_date for e in r.ledger} for r in runs] == [{d} for d in days]

    assert fingerprints(nightly) == fingerprints(backfilled)
    assert figures(nightly) == figures(backfilled)
    assert ("honours.mayday_certificates", 2021) in {f[:2] for f in figures(backfilled)}

    incremental = figures(nightly)
    with Env(**base, UNIONWH_WAREHOUSE=f"duckdb:///{nightly}"):
        full = nightly_load(full_refresh=True)
    assert full.status == "succeeded"
    assert full.refresh_differences == [] and full.figure_changes == [] and full.refresh_equal
    assert figures(nightly) == incremental == figures(backfilled)
    assert fingerprints(nightly) == fingerprints(backfilled)
