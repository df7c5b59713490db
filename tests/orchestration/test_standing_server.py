"""`unionwh run` against a standing Prefect server (``PREFECT_API_URL`` set) reports there and
starts no temporary server of its own: neither the CLI's early start
(flows/orchestration/server.py ``start_temporary_server_early``) nor Prefect's ephemeral one.
A temporary server would log "Starting temporary server" and keep its SQLite database under the
run's own ``PREFECT_HOME``; the flow run must be on the standing server instead (issue 22)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, api, clean_env, local_prefect_server

pytestmark = pytest.mark.e2e


def test_a_run_against_a_standing_server_starts_no_temporary_one(tmp_path: Path) -> None:
    delivery = tmp_path / "landing" / "events" / "2022-01-05"
    delivery.mkdir(parents=True)
    (delivery / "honours.csv").write_text(
        "荣誉编号,年度,荣誉,级别,获奖对象\nH1,2021,五一劳动奖状,区级,甲公司\n", encoding="utf-8"
    )
    client_home = tmp_path / "prefect-client"  # where a temporary server would keep its database
    with local_prefect_server(tmp_path / "server") as (base, _server):
        env = dict(
            clean_env(),
            PREFECT_HOME=str(client_home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_API_URL=base,
            PREFECT_LOGGING_LEVEL="INFO",  # Prefect's "Starting temporary server" is an INFO line
            UNIONWH_HOME=str(tmp_path),
            UNIONWH_LANDING=str(tmp_path / "landing"),
            UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'wh.duckdb'}",
            UNIONWH_OUTPUT=str(tmp_path / "runs"),
            UNIONWH_PII_KEY="standing-server-test-key-0123456789",
        )
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", "--load-only"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-3000:]
        runs = api(base, "/flow_runs/filter", {"flows": {"name": {"any_": ["nightly-load"]}}, "limit": 5})
        assert isinstance(runs, list)
        assert [r["state"]["type"] for r in runs] == ["COMPLETED"], runs
        logs = api(base, "/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[0]["id"]]}}, "limit": 200})
    assert "Starting temporary server" not in output
    assert "temporary server" not in output.lower()
    assert not list(client_home.rglob("*.db")), "a temporary server kept its database in the run's home"
    # the run's own log lines went to the standing server
    assert any("events" in entry["message"] for entry in logs), [e["message"] for e in logs][:20]  # type: ignore[union-attr]
