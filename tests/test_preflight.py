"""Issue 18, class 10: a mistake a user makes in the configuration ends in one line naming what
to fix, in seconds, before Prefect starts — not in three retries and a traceback a minute later;
our own errors raised inside a flow run print no Prefect traceback (unless ``--debug``); the
files a run leaves (the DuckDB warehouse, run folders) are readable by their owner only.

Every test runs the real CLI as a child process against the real servers (MariaDB, PostgreSQL)."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from flows.errors import ConfigError
from flows.orchestration.logfilter import quiet_tracebacks

from tests.support import clean_env, free_port, mariadb_or_skip, postgres_or_skip

UNIONWH = [sys.executable, "-m", "flows.cli"]
TEMPORARY_SERVER = "Starting temporary server"


def unionwh(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``unionwh <args>`` in ``tmp_path`` (its home), with only the UNIONWH_* variables given, under
    the usual umask 022; the finished process and its wall time."""
    full = dict(clean_env(), UNIONWH_HOME=str(tmp_path), PREFECT_HOME=str(tmp_path / "prefect"),
                PREFECT_SERVER_ANALYTICS_ENABLED="false", **env)
    started = time.monotonic()
    proc = subprocess.run([*UNIONWH, *args], env=full, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, umask=0o022)
    return proc, time.monotonic() - started


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, nothing but ``unionwh: error: …`` on one line, no traceback, Prefect never started."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out and TEMPORARY_SERVER not in out, out[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unionwh: error: "), out[-3000:]
    return lines[0]


@pytest.mark.mariadb
@pytest.mark.parametrize("command", [["run", "--load-only"], ["backfill", "--from", "2021-01-01",
                                                                "--to", "2021-01-02", "--load-only"]])
def test_wrong_members_password_is_one_line_in_seconds_without_retries(tmp_path: Path,
                                                                        command: list[str]) -> None:
    server = make_url(mariadb_or_skip())
    password = f"wrong-{secrets.token_hex(6)}"
    url = server.set(password=password, database="test").render_as_string(hide_password=False)
    proc, took = unionwh(tmp_path, *command, UNIONWH_MEMBERS_URL=url)
    line = one_line_error(proc)
    assert "members database" in line and f"{server.host}:{server.port or 3306}" in line
    assert "user root" in line and "password" in line and "1045" in line
    assert password not in proc.stdout + proc.stderr
    assert took < 20, f"{took:.1f} s: retried?"  # (was about 40 s: three retries after 5, 10 and 20 s)
    assert not (tmp_path / "data" / "runs").exists()  # no run began


@pytest.mark.postgres
def test_postgres_warehouse_without_key_stops_before_prefect(tmp_path: Path) -> None:
    server = postgres_or_skip()
    proc, took = unionwh(tmp_path, "run", "--load-only", UNIONWH_WAREHOUSE=f"{server}/test")
    line = one_line_error(proc)
    assert "UNIONWH_PII_KEY" in line
    assert took < 20, f"{took:.1f} s"


@pytest.mark.postgres
def test_missing_postgres_database_is_named_without_the_password(tmp_path: Path) -> None:
    server = make_url(postgres_or_skip())
    name, password = f"unionwh_absent_{secrets.token_hex(4)}", f"pw-{secrets.token_hex(8)}"
    url = server.set(database=name, password=password).render_as_string(hide_password=False)
    proc, _ = unionwh(tmp_path, "run", "--load-only", UNIONWH_WAREHOUSE=url,
                      UNIONWH_PII_KEY=f"key-{secrets.token_hex(16)}")
    line = one_line_error(proc)
    assert f"no database '{name}'" in line and f"{server.host}:{server.port or 5432}" in line
    assert "UNIONWH_WAREHOUSE" in line and password not in proc.stdout + proc.stderr


def test_unreachable_members_server_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: connection refused
    proc, _ = unionwh(tmp_path, "run", "--load-only",
                      UNIONWH_MEMBERS_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/members")
    line = one_line_error(proc)
    assert f"cannot reach the members database at 127.0.0.1:{port}" in line


def test_missing_sqlite_members_file_is_one_line(tmp_path: Path) -> None:
    proc, _ = unionwh(tmp_path, "run", "--load-only", UNIONWH_MEMBERS_URL="sqlite:///nowhere/members.sqlite")
    line = one_line_error(proc)
    assert f"{tmp_path / 'nowhere' / 'members.sqlite'} does not exist" in line
    assert not (tmp_path / "nowhere").exists()  # not created empty by the check


def test_own_errors_lose_their_prefect_traceback_bugs_keep_it() -> None:
    """The filter on Prefect's run loggers, on real log records (the CLI installs it)."""
    loud = quiet_tracebacks()
    logger = logging.getLogger("prefect.flow_runs")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logging.Formatter("%(message)s").format(record))

    saved = logger.handlers[:], logger.propagate  # (Prefect's own handlers, if set up here: aside)
    logger.handlers, logger.propagate = [Collect()], False
    try:
        for exc in (ConfigError("set UNIONWH_PII_KEY"), ValueError("a bug")):
            try:
                raise exc
            except Exception as caught:
                logger.error("Encountered exception during execution: %r", caught, exc_info=True)
    finally:
        logger.handlers, logger.propagate = saved
        loud()
    own, bug = lines
    assert own == "Encountered exception during execution: ConfigError('set UNIONWH_PII_KEY')"
    assert "Traceback" in bug and "ValueError: a bug" in bug


def test_warehouse_init_creates_a_private_duckdb_file(tmp_path: Path) -> None:
    """``warehouse init`` (no Prefect): the file 0600 and the folder it made 0700, under umask 022."""
    proc, _ = unionwh(tmp_path, "warehouse", "init", UNIONWH_WAREHOUSE="duckdb:///private/wh.duckdb")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert stat.S_IMODE((tmp_path / "private" / "wh.duckdb").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "private").iterdir()] == ["wh.duckdb"]  # no scratch left


def test_library_use_creates_a_private_duckdb_file(tmp_path: Path) -> None:
    """Without the CLI's umask (a flow called from Python): the engine still makes the file 0600."""
    from flows.settings import load_settings
    from flows.warehouse.engine import init_warehouse, warehouse_engine

    old = os.umask(0o022)
    try:
        engine = warehouse_engine(load_settings(warehouse=f"duckdb:///{tmp_path / 'lib.duckdb'}"))
        try:
            init_warehouse(engine)
        finally:
            engine.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "lib.duckdb").stat().st_mode) == 0o600


@pytest.mark.e2e
def test_own_error_inside_a_run_prints_no_traceback_and_run_folder_is_private(tmp_path: Path) -> None:
    """A ConfigError raised inside the flow (a key that is not the warehouse's — only the
    warehouse can tell): Prefect's log lines keep their message but not the traceback, the CLI
    ends in its one line; the run folder the run made is 0700 (one real run)."""
    import duckdb

    env = {"UNIONWH_WAREHOUSE": "duckdb:///wh.duckdb", "UNIONWH_MEMBERS_URL": "",
           "UNIONWH_PII_KEY": f"key-{secrets.token_hex(16)}"}
    init, _ = unionwh(tmp_path, "warehouse", "init", **env)
    assert init.returncode == 0, init.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:  # loaded once under another key
        con.execute("INSERT INTO ops.settings VALUES ('pii_key_fingerprint', '0123456789abcdef')")
    proc, _ = unionwh(tmp_path, "run", "--load-only", **env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert TEMPORARY_SERVER in out  # Prefect ran, and logged the error's line:
    assert "Encountered exception during execution: ConfigError" in out
    assert "Traceback" not in out, out[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("unionwh: error: ")]
    assert len(errors) == 1 and "the pseudonymisation key differs" in errors[0]
    runs = list((tmp_path / "data" / "runs").iterdir())
    assert len(runs) == 1 and stat.S_IMODE(runs[0].stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "wh.duckdb").stat().st_mode) == 0o600
