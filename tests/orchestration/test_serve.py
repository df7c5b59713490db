"""`unionwh serve` against a real local Prefect server: the three deployments are registered
(the nightly one on its 02:00 Asia/Shanghai schedule), and a run triggered there completes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import api, clean_env, local_prefect_server, stop, wait_for

pytestmark = pytest.mark.e2e


def test_serve_registers_deployments_and_runs_them(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "events" / "2022-01-05"
    landing.mkdir(parents=True)
    (landing / "honours.csv").write_text(
        "荣誉编号,年度,荣誉,级别,获奖对象\nH1,2021,五一劳动奖状,区级,甲公司\n", encoding="utf-8"
    )
    log = tmp_path / "serve.log"
    with local_prefect_server(tmp_path / "server") as (base, server):
        env = dict(
            clean_env(),
            PREFECT_HOME=str(tmp_path / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_API_URL=base,
            UNIONWH_HOME=str(tmp_path),
            UNIONWH_LANDING=str(tmp_path / "landing"),
            UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'wh.duckdb'}",
            UNIONWH_OUTPUT=str(tmp_path / "runs"),
            UNIONWH_PII_KEY="serve-test-key-0123456789abcdef",
        )
        serving = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs = [server, serving]
        try:
            deployments = wait_for(
                lambda: (d := api(base, "/deployments/filter", {"limit": 10})) and len(d) == 3 and d,
                "three deployments",
                120,
                procs,
            )
            by_name = {d["name"]: d for d in deployments}  # type: ignore[union-attr]
            assert set(by_name) == {"nightly", "backfill", "annual-report"}
            schedule = by_name["nightly"]["schedules"][0]["schedule"]
            assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Asia/Shanghai")
            assert by_name["nightly"]["entrypoint"] == "flows.nightly.nightly_load"

            run = api(
                base,
                f"/deployments/{by_name['nightly']['id']}/create_flow_run",
                {"parameters": {"build": False}},
            )
            state = wait_for(
                lambda: (
                    (s := api(base, f"/flow_runs/{run['id']}")["state"]["type"])  # type: ignore[index]
                    in ("COMPLETED", "FAILED", "CRASHED")
                    and s
                ),
                "the triggered run",
                300,
                procs,
            )
            assert state == "COMPLETED", log.read_text()[-3000:]
        finally:
            stop(serving)
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM raw.events__honours").scalar() == 1
            assert conn.exec_driver_sql("SELECT status FROM ops.runs").all() == [("succeeded",)]
    finally:
        engine.dispose()
