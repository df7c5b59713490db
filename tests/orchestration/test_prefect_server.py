"""`unionwh prefect-server` on the real PostgreSQL server: the API and UI answer, and a flow
run made against it is stored in the PostgreSQL database."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.errors import ConfigError
from flows.orchestration import server
from tests.support import drop_database, free_port, postgres_or_skip, stop

pytestmark = pytest.mark.postgres


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode("utf-8", errors="replace")


def test_database_url_rules() -> None:
    assert server.database_url("postgresql://u:pw@db:5433/prefect").drivername == "postgresql+asyncpg"
    with pytest.raises(ConfigError, match="must be PostgreSQL"):
        server.database_url("sqlite:///prefect.db")
    with pytest.raises(ConfigError, match="names no database"):
        server.database_url("postgresql://u@db:5432")


def test_server_on_postgres_serves_api_ui_and_stores_runs(tmp_path: Path) -> None:
    pg = postgres_or_skip()
    name = f"unionwh_prefect_{secrets.token_hex(4)}"
    url = sa.engine.make_url(f"{pg}/{name}").set(drivername="postgresql+asyncpg")
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"))
    env.pop("PREFECT_API_URL", None)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "prefect-server",
            "--port",
            str(port),
            "--database-url",
            url.render_as_string(hide_password=False),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(f"{base}/api/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not answer within 120 s"
            time.sleep(1)
        status, page = get(f"{base}/")
        assert status == 200 and "<html" in page.lower()
        script = (
            "from prefect import flow\n"
            "@flow(name='unionwh-server-probe')\n"
            "def probe() -> int:\n    return 42\n"
            "assert probe() == 42\n"
        )
        client_env = dict(env, PREFECT_API_URL=f"{base}/api")
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=client_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        engine = sa.create_engine(f"{pg}/{name}")
        try:
            with engine.connect() as conn:
                states = conn.exec_driver_sql(
                    "SELECT fr.state_type FROM flow_run fr JOIN flow f ON f.id = fr.flow_id "
                    "WHERE f.name = 'unionwh-server-probe'"
                ).all()
        finally:
            engine.dispose()
        assert [s[0] for s in states] == ["COMPLETED"]
        assert "(created)" in (tmp_path / "server.log").read_text()
    finally:
        stop(proc)
        log.close()
        drop_database(pg, name)
