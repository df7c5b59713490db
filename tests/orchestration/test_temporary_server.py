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
