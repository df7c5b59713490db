"""Liveness: a `unionwh run` whose process dies is marked Crashed in Prefect within a bounded
time, and the warehouse lock it held is free at once; a healthy run in a long synchronous
step is not marked crashed.

Everything is real: a local `prefect server start` (its triggers and actions services
evaluate the automation), the automation installed by `unionwh liveness`, `unionwh run`
processes sending Prefect's own flow-run heartbeats every 30 s (unionwh's default, Prefect's
minimum), SIGKILL of the whole process group. Only the bound is shortened (45 s of silence
instead of the default 90) to keep the test near two minutes.

- run B (healthy) starts on its own warehouse, whose lock the test holds: its flow run is
  Running and waits for the lock (synchronous work in the flow's thread, no state change)
  for longer than the bound, then completes: it is never marked Crashed, because its
  heartbeats go on (Prefect sends them from a thread of their own);
- run A (the demo's landing zone, cut down (faultkit.small_landing)) starts; once its flow
  run is Running, has sent a heartbeat and holds its warehouse lock, its process group is
  SIGKILLed: the test takes that lock at once (wait 0), and the automation marks the flow
  run CRASHED about 45 s after its last heartbeat (measured and printed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.orchestration import liveness
from flows.warehouse.lock import lock_path, warehouse_lock
from tests.orchestration.faultkit import small_landing
from tests.support import api, clean_env, local_prefect_server, stop, wait_for

pytestmark = pytest.mark.e2e

HEARTBEAT = 30  # unionwh's default heartbeat_seconds (Prefect's minimum)
CRASHED_AFTER = 45  # the bound under test (default 90)
KEY = "liveness-test-key-0123456789abcdef"


def flow_runs(base: str) -> list[dict[str, Any]]:
    return api(
        base,
        "/flow_runs/filter",
        {
            "flows": {"name": {"any_": ["nightly-load"]}},  # type: ignore[return-value]
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 10,
        },
    )


def heartbeats(base: str, flow_run_id: str) -> list[datetime]:
    """When the flow run's heartbeats occurred (as the server has stored them so far)."""
    page = api(
        base,
        "/events/filter",
        {
            "filter": {
                "event": {"name": [liveness.HEARTBEAT_EVENT]},
                "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            },
            "limit": 50,
        },
    )
    return sorted(datetime.fromisoformat(e["occurred"]) for e in page["events"])  # type: ignore[index]


def states(base: str, flow_run_id: str) -> list[dict[str, Any]]:
    return api(base, f"/flow_run_states/?flow_run_id={flow_run_id}")  # type: ignore[return-value]


def run(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", *args],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_killed_run_is_crashed_in_bounded_time_and_a_healthy_one_is_not(tmp_path: Path) -> None:
    landing: list[Path] = []
    making = threading.Thread(target=lambda: landing.append(small_landing(tmp_path / "landing")))
    making.start()  # (25 s on a busy machine: while the server starts)
    tiny = tmp_path / "tiny" / "events" / "2022-01-05"
    tiny.mkdir(parents=True)
    (tiny / "honours.csv").write_text(
        "荣誉编号,年度,荣誉,级别,获奖对象\nH1,2021,五一劳动奖状,区级,甲公司\n", encoding="utf-8"
    )
    wh_a, wh_b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    with local_prefect_server(tmp_path / "server") as (base, server), contextlib.ExitStack() as held:
        env = clean_env()
        env.update(
            PREFECT_API_URL=base,
            PREFECT_HOME=str(tmp_path / "prefect"),
            UNIONWH_HOME=str(tmp_path),
            UNIONWH_OUTPUT=str(tmp_path / "runs"),
            UNIONWH_PII_KEY=KEY,
            UNIONWH_REPORT_YEAR="2021",
            UNIONWH_HEARTBEAT_SECONDS=str(HEARTBEAT),
            UNIONWH_CRASHED_AFTER_SECONDS=str(CRASHED_AFTER),
        )
        installed = subprocess.run(
            [sys.executable, "-m", "flows.cli", "liveness"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert installed.returncode == 0 and " created:" in installed.stdout, (
            installed.stdout + installed.stderr
        )
        with temporary_settings(updates={PREFECT_API_URL: base}):
            assert liveness.install(CRASHED_AFTER) == "unchanged"  # idempotent
        [automation] = api(base, "/automations/filter", {})  # type: ignore[misc]
        assert (
            automation["trigger"]["within"] == CRASHED_AFTER
            and automation["trigger"]["posture"] == "Proactive"
        )

        # run B (healthy): its flow waits for B's warehouse lock, held here, longer than the bound
        engine_b = sa.create_engine(f"duckdb:///{wh_b}")
        held.enter_context(warehouse_lock(engine_b, wh_b, "liveness-test", 0))
        engine_b.dispose()
        b_log, a_log = tmp_path / "b.log", tmp_path / "a.log"
        b = run(
            dict(env, UNIONWH_LANDING=str(tmp_path / "tiny"), UNIONWH_WAREHOUSE=f"duckdb:///{wh_b}"),
            b_log,
            "--load-only",
            "--lock-wait",
            "600",
        )
        a: subprocess.Popen[bytes] | None = None
        procs = [server, b]
        try:
            # run A: Running, a heartbeat sent, its warehouse lock held: kill it all
            making.join()
            a = run(dict(env, UNIONWH_LANDING=str(landing[0]), UNIONWH_WAREHOUSE=f"duckdb:///{wh_a}"), a_log)

            def running(build: bool) -> str | None:
                """The Running, heartbeating flow run of A (build) or B (load only)."""
                return next(
                    (
                        r["id"]
                        for r in flow_runs(base)
                        if r["state_type"] == "RUNNING"
                        and r["parameters"].get("build", True) is build
                        and heartbeats(base, r["id"])
                    ),
                    None,
                )

            def a_ready() -> str | None:
                assert a is not None
                held_by_a = lock_path(wh_a).exists() and f'"pid": {a.pid}' in lock_path(wh_a).read_text()
                return running(True) if held_by_a else None

            try:
                a_id = wait_for(a_ready, "run A running, heartbeating and holding its lock", 240, [*procs, a])
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{a_log.read_text()[-3000:]}") from None
            os.killpg(a.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            assert a.wait() == -signal.SIGKILL

            # the lock died with A: taken at once
            engine_a = sa.create_engine(f"duckdb:///{wh_a}")
            with warehouse_lock(engine_a, wh_a, "after-the-kill", 0):
                took_lock = time.monotonic() - killed_at
            engine_a.dispose()

            # A is marked Crashed by the automation
            crashed = wait_for(
                lambda: (r := api(base, f"/flow_runs/{a_id}"))["state_type"] == "CRASHED" and r,
                "run A marked Crashed",
                CRASHED_AFTER + 60,
                procs,
            )
            seconds_to_crashed = time.monotonic() - killed_at
            last_beat = heartbeats(base, a_id)[-1]
            crashed_at = datetime.fromisoformat(crashed["state"]["timestamp"])  # type: ignore[index]
            silence = (crashed_at - last_beat).total_seconds()

            # B has been in its lock wait for longer than the bound since its first heartbeat
            b_id = wait_for(lambda: running(False), "run B running with a heartbeat", 120, procs)
            first_beat = heartbeats(base, b_id)[0]
            wait_for(
                lambda: (datetime.now(first_beat.tzinfo) - first_beat).total_seconds() > CRASHED_AFTER + 10,
                "B in its flow for longer than the bound",
                300,
                procs,
            )
            assert api(base, f"/flow_runs/{b_id}")["state_type"] == "RUNNING"  # type: ignore[index]
            b_beats = heartbeats(base, b_id)
            assert "waiting for the warehouse lock held by run liveness-test" in b_log.read_text()
            held.close()  # B gets its lock and completes
            assert b.wait(timeout=300) == 0, b_log.read_text()[-3000:]
        finally:
            for p in (a, b):
                if p is not None and p.poll() is None:
                    stop(p)
        b_states = [s["type"] for s in states(base, b_id)]
        a_states = [s["type"] for s in states(base, a_id)]

    print(
        f"\nliveness: heartbeat every {HEARTBEAT} s, crashed after {CRASHED_AFTER} s of silence; "
        f"lock taken {took_lock:.1f} s after the kill; run A Crashed {seconds_to_crashed:.1f} s after the "
        f"kill, {silence:.1f} s after its last heartbeat; run B sent {len(b_beats)} heartbeats in "
        f"{CRASHED_AFTER + 10} s+ of waiting for its lock"
    )
    assert took_lock < 5
    assert crashed["state"]["message"] == liveness.crash_message(CRASHED_AFTER)  # type: ignore[index]
    assert CRASHED_AFTER - 1 <= silence <= CRASHED_AFTER + 20, (
        silence
    )  # the bound, plus the 5 s evaluation step
    assert seconds_to_crashed <= CRASHED_AFTER + 20
    assert a_states[-2:] == ["RUNNING", "CRASHED"], a_states
    assert len(b_beats) >= 2, b_beats  # the heartbeats went on while the flow's thread waited
    assert "CRASHED" not in b_states and b_states[-1] == "COMPLETED", b_states
