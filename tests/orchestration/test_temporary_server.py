"""`unionwh run` without ``PREFECT_API_URL`` starts Prefect's temporary server itself
(flows/orchestration/server.py ``TemporaryServer``): the flow run reports to it, the run's own
process never imports Prefect's server package (FastAPI and its database layer: ~4 CPU-s that
Prefect's starter spends only to spawn the server process, issue 22), every log line reaches the
server before it stops, and nothing answers on its port once the run is over."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.orchestration.faultkit import small_landing
from tests.support import ROOT, clean_env

pytestmark = pytest.mark.e2e


def run_cli(tmp_path: Path, prefect_home: Path, *python_flags: str) -> subprocess.CompletedProcess[str]:
    """``unionwh run --load-only`` on a small landing zone, as a user runs it: no PREFECT_API_URL."""
    env = dict(
        clean_env(),
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        UNIONWH_HOME=str(tmp_path),
        UNIONWH_LANDING=str(small_landing(tmp_path / "landing")),
        UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'wh.duckdb'}",
        UNIONWH_OUTPUT=str(tmp_path / "runs"),
        UNIONWH_PII_KEY="temporary-server-test-key-0123456789",
    )
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "flows.cli", "run", "--load-only"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_run_starts_its_own_server_without_importing_prefects_server(tmp_path: Path) -> None:
    done = run_cli(tmp_path, tmp_path / "prefect", "-X", "importtime")
    err = done.stderr
    lines = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 0, "\n".join(lines[-40:]) + done.stdout[-2000:]
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")
    }
    assert "prefect" in imported and "flows.nightly" in imported  # (the check sees the run's imports)
    assert not {m for m in imported if m.startswith("prefect.server.api")}, (
        "the run imported Prefect's server"
    )
    # the flow ran on the server (its database under PREFECT_HOME), and the server was stopped
    assert list((tmp_path / "prefect").rglob("*.db")), "no Prefect database: where did the flow run report?"
    found = re.search(r"Stopping temporary server on http://127\.0\.0\.1:(\d+)", err)
    assert found, "\n".join(lines[-40:])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", int(found.group(1)))) != 0, "the temporary server outlived its run"
    # what the run logged reached the server before it stopped (Prefect sends logs in the background)
    assert "Error logging to API" not in err, "\n".join(lines[-40:])
    assert re.search(r"^run \S+: succeeded$", done.stdout, re.MULTILINE), done.stdout[-2000:]


def test_a_server_that_cannot_start_is_one_line_naming_what_to_fix(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "prefect-home"
    not_a_folder.write_text("a file where PREFECT_HOME should be a folder\n", encoding="utf-8")
    done = run_cli(tmp_path, not_a_folder)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("unionwh: error: Prefect's temporary server did not start (it exited with code 3;")
    assert "unable to open database file" in last and "PREFECT_HOME is a writable folder" in last, last
    assert not (tmp_path / "wh.duckdb").exists()  # nothing was loaded without a server to report to


LOST_PORT = """
import socket, sys, urllib.request
from prefect.settings import PREFECT_API_URL
from flows.orchestration import server as srv

taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen()
port = taken.getsockname()[1]
real, ports = srv._free_port, [port]
srv._free_port = lambda: ports.pop() if ports else real()  # the race: another run's server took it
server = srv.TemporaryServer()
server.start()
try:
    with server.configured():
        before = PREFECT_API_URL.value()
        server.join()
        after = PREFECT_API_URL.value()
        answers = urllib.request.urlopen(after + "/health", timeout=10).status
    print(port, before, server.port, after, answers, PREFECT_API_URL.value())
finally:
    server.stop()
"""


def test_a_server_that_lost_its_port_moves_and_the_client_follows(tmp_path: Path) -> None:
    """Two runs started together can be given the same free port; the one whose server loses the
    bind starts it on another port, and its Prefect client must follow (before, it reported to
    the other run's server and failed when that one stopped: CI, two concurrent runs)."""
    env = dict(clean_env(), PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", LOST_PORT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    port, before, moved, after, answers, restored = done.stdout.split()
    assert before == f"http://127.0.0.1:{port}/api"  # first pointed at the port it was given
    assert moved != port and after == f"http://127.0.0.1:{moved}/api", done.stdout
    assert answers == "200"
    assert restored == "None"  # the block's end restores the settings
