"""`unionwh serve` against a real local Prefect server: the three deployments are registered
(the nightly one on its 02:00 Asia/Shanghai schedule), and a run triggered there completes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, path: str, body: dict | None = None) -> object:
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body or {}).encode(), method="POST" if body is not None
                                 else "GET", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def wait_for(check, what: str, seconds: float, procs: list[subprocess.Popen]) -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        for p in procs:
            assert p.poll() is None, f"{p.args} exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_serve_registers_deployments_and_runs_them(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "UNIONWH_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    landing = tmp_path / "landing" / "events" / "2022-01-05"
    landing.mkdir(parents=True)
    (landing / "honours.csv").write_text("荣誉编号,年度,荣誉,级别,获奖对象\nH1,2021,五一劳动奖状,区级,甲公司\n", encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                               str(port), "--no-ui"], env=env, stdout=(logs / "server.log").open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    procs = [server]
    try:
        wait_for(lambda: api(base, "/health") is True, "the Prefect server", 120, procs)
        client_env = dict(env, PREFECT_API_URL=base, UNIONWH_HOME=str(tmp_path),
                          UNIONWH_LANDING=str(tmp_path / "landing"), UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'wh.duckdb'}",
                          UNIONWH_OUTPUT=str(tmp_path / "runs"), UNIONWH_PII_KEY="serve-test-key-0123456789abcdef")
        serving = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve"], env=client_env, cwd=tmp_path,
                                   stdout=(logs / "serve.log").open("w"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        procs.append(serving)
        deployments = wait_for(lambda: (d := api(base, "/deployments/filter", {"limit": 10})) and len(d) == 3 and d,
                               "three deployments", 120, procs)
        by_name = {(d["name"]): d for d in deployments}  # type: ignore[union-attr]
        assert set(by_name) == {"nightly", "backfill", "annual-report"}
        schedule = by_name["nightly"]["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Asia/Shanghai")
        assert by_name["nightly"]["entrypoint"] == "flows.nightly.nightly_load"

        run = api(base, f"/deployments/{by_name['nightly']['id']}/create_flow_run",
                  {"parameters": {"build": False}})
        state = wait_for(lambda: (s := api(base, f"/flow_runs/{run['id']}")["state"]["type"])  # type: ignore[index]
                         in ("COMPLETED", "FAILED", "CRASHED") and s, "the triggered run", 300, procs)
        assert state == "COMPLETED", (logs / "serve.log").read_text()[-3000:]
    finally:
        for p in reversed(procs):
            stop(p)
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM raw.events__honours").scalar() == 1
            assert conn.exec_driver_sql("SELECT status FROM ops.runs").all() == [("succeeded",)]
    finally:
        engine.dispose()
