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
TEMPORARY_SERVER = "temporary server"  # Prefect's "Starting …" and "Stopping temporary server on …"
FLOW_RUN = "Beginning flow run"


def unionwh(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``unionwh <args>`` in ``tmp_path`` (its home), with only the UNIONWH_* variables given, under
    the usual umask 022; the finished process and its wall time."""
    full = dict(
        clean_env(),
        UNIONWH_HOME=str(tmp_path),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        **env,
    )
    started = time.monotonic()
    proc = subprocess.run(
        [*UNIONWH, *args],
        env=full,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        umask=0o022,
        check=False,
    )
    return proc, time.monotonic() - started


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, nothing but ``unionwh: error: …`` on one line, no traceback, Prefect never started."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out and TEMPORARY_SERVER not in out and FLOW_RUN not in out, out[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unionwh: error: "), out[-3000:]
    return lines[0]


@pytest.mark.mariadb
@pytest.mark.parametrize(
    "command",
    [["run", "--load-only"], ["backfill", "--from", "2021-01-01", "--to", "2021-01-02", "--load-only"]],
)
def test_wrong_members_password_is_one_line_in_seconds_without_retries(
    tmp_path: Path, command: list[str]
) -> None:
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
    proc, _ = unionwh(
        tmp_path, "run", "--load-only", UNIONWH_WAREHOUSE=url, UNIONWH_PII_KEY=f"key-{secrets.token_hex(16)}"
    )
    line = one_line_error(proc)
    assert f"no database '{name}'" in line and f"{server.host}:{server.port or 5432}" in line
    assert "UNIONWH_WAREHOUSE" in line and password not in proc.stdout + proc.stderr


def test_unreachable_members_server_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: connection refused
    proc, _ = unionwh(
        tmp_path,
        "run",
        "--load-only",
        UNIONWH_MEMBERS_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/members",
    )
    line = one_line_error(proc)
    assert f"cannot reach the members database at 127.0.0.1:{port}" in line


def test_missing_sqlite_members_file_is_one_line(tmp_path: Path) -> None:
    proc, _ = unionwh(tmp_path, "run", "--load-only", UNIONWH_MEMBERS_URL="sqlite:///nowhere/members.sqlite")
    line = one_line_error(proc)
    assert f"{tmp_path / 'nowhere' / 'members.sqlite'} does not exist" in line
    assert not (tmp_path / "nowhere").exists()  # not created empty by the check


@pytest.mark.unit
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
                logger.error("Encountered exception during execution: %r", caught, exc_info=True)  # noqa: G201 - as Prefect logs it
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


@pytest.mark.unit
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

    env = {
        "UNIONWH_WAREHOUSE": "duckdb:///wh.duckdb",
        "UNIONWH_MEMBERS_URL": "",
        "UNIONWH_PII_KEY": f"key-{secrets.token_hex(16)}",
    }
    init, _ = unionwh(tmp_path, "warehouse", "init", **env)
    assert init.returncode == 0, init.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:  # loaded once under another key
        con.execute("INSERT INTO ops.settings VALUES ('pii_key_fingerprint', '0123456789abcdef')")
    delivered(tmp_path / "data" / "landing")  # a delivery: the checks before the run pass
    proc, _ = unionwh(tmp_path, "run", "--load-only", **env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert FLOW_RUN in out and TEMPORARY_SERVER in out  # Prefect ran, and logged the error's line:
    assert "Encountered exception during execution: ConfigError" in out
    assert "Traceback" not in out, out[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("unionwh: error: ")]
    assert len(errors) == 1 and "the pseudonymisation key differs" in errors[0]
    runs = list((tmp_path / "data" / "runs").iterdir())
    assert len(runs) == 1 and stat.S_IMODE(runs[0].stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "wh.duckdb").stat().st_mode) == 0o600


# ------------------------------------------------------------------ issue 19
# Each row of issue 19's table that belongs to the checks before a run: the real CLI, its exit
# code (flows/errors.py Exit), one line without a traceback, nothing created or changed
# (the whole tmp tree, the landing zone included, compared before and after).
def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
        for p in [root, *root.rglob("*")]
    }


def delivered(landing: Path) -> Path:
    """A landing zone with one delivery (a file in a dated folder of a source); the run would
    read it, but every case below is refused before that."""
    (landing / "registry" / "2021-04-01").mkdir(parents=True)
    (landing / "registry" / "2021-04-01" / "unions.csv").write_bytes(b"\xb9\xa4\xbb\xe1\n")
    return landing


def refused(tmp_path: Path, *args: str, **env: str) -> tuple[str, float]:
    """``unionwh <args>`` is refused (exit 2) in one line before Prefect starts and leaves the
    tmp tree as it was; the line and the wall time."""
    before = tree(tmp_path)
    proc, took = unionwh(tmp_path, *args, **env)
    line = one_line_error(proc)
    assert proc.stdout == "", proc.stdout[-2000:]
    assert tree(tmp_path) == before, sorted(set(tree(tmp_path)) - set(before))
    return line, took


@pytest.mark.parametrize("command", [["run"], ["backfill", "--from", "2021-01-01", "--to", "2021-12-31"]])
@pytest.mark.parametrize(
    "make,said",
    [
        (None, "does not exist"),
        ([], "holds no delivery (it is empty)"),
        (
            ["Events/2021-04-01/activities.csv", "notes.txt"],
            "holds no delivery (it holds only Events/, notes.txt)",
        ),
        (
            ["registry/unions.csv", "welfare/spring/HG01.xlsx"],
            "holds no delivery (it holds only registry/, welfare/)",
        ),
        (["registry/2021-04-01/"], "holds no delivery"),  # a dated folder without a file
    ],
)
def test_landing_zone_without_a_delivery_is_one_line_before_anything_starts(
    tmp_path: Path, command: list[str], make: list[str] | None, said: str
) -> None:
    landing = tmp_path / "zone"
    if make is not None:
        landing.mkdir()
    for name in make or ():
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            (landing / name).mkdir()
        else:
            (landing / name).write_bytes(b"x\n")
    line, took = refused(tmp_path, *command, "--landing", "zone")
    assert f"landing zone {landing}" in line or f"under {landing}" in line
    if command[0] == "run":
        assert said in line, line
    else:  # a backfill needs a delivery folder dated within --from..--to
        window = "no delivery folders dated 2021-01-01..2021-12-31"
        assert ("does not exist" if make is None else window) in line, line
    assert took < 15, f"{took:.1f} s"  # (was 45-58 s and a traceback)


def test_backfill_window_without_deliveries_names_the_dates_there_are(tmp_path: Path) -> None:
    delivered(tmp_path / "zone")
    line, _ = refused(tmp_path, "backfill", "--landing", "zone", "--from", "2030-01-01", "--to", "2030-02-01")
    assert "no delivery folders dated 2030-01-01..2030-02-01" in line
    assert "its deliveries are dated 2021-04-01..2021-04-01" in line
    line, _ = refused(tmp_path, "backfill", "--landing", "zone", "--from", "2021-05-01", "--to", "2021-04-01")
    assert "--from 2021-05-01 is after --to 2021-04-01" in line


@pytest.mark.unit
def test_what_counts_as_a_delivery(tmp_path: Path) -> None:
    """A landing zone with only the members database, or only some sources, is valid; with a
    members URL configured an empty (existing) landing zone is too: the run pulls the members."""
    from flows.preflight import check_landing
    from flows.settings import load_settings

    with_members = tmp_path / "members-only"
    with_members.mkdir()
    (with_members / "members.sqlite").write_bytes(b"")
    check_landing(load_settings(landing=str(with_members)))
    check_landing(load_settings(landing=str(delivered(tmp_path / "one-source"))))
    (tmp_path / "empty").mkdir()
    check_landing(load_settings(landing=str(tmp_path / "empty"), members_url="mysql+pymysql://u@db/members"))
    with pytest.raises(ConfigError, match="holds no delivery"):
        check_landing(load_settings(landing=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match="does not exist.*create it empty"):  # a typo, even so
        check_landing(load_settings(landing=str(tmp_path / "typo"), members_url="mysql+pymysql://u@h/m"))


def test_members_sqlite_url_to_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    """Refused before the run; and the members reader itself opens SQLite read-only, so nothing
    later can create the file either (it once left an empty members.sqlite in the landing zone)."""
    import sqlalchemy as sa

    from flows.settings import load_settings
    from flows.warehouse.engine import members_engine

    landing = delivered(tmp_path / "zone")
    line, _ = refused(tmp_path, "run", "--landing", "zone", "--members-url", "sqlite:///zone/members.sqlite")
    assert f"the members database file {landing / 'members.sqlite'} does not exist" in line
    url = load_settings(members_url=f"sqlite:///{landing / 'members.sqlite'}").members_database_url
    engine = members_engine(url)
    try:
        with pytest.raises(sa.exc.OperationalError, match="unable to open database file"), engine.connect():
            pass
    finally:
        engine.dispose()
    assert not (landing / "members.sqlite").exists()


@pytest.mark.parametrize("members", ["sqlite:///no-such-folder/members.sqlite", "sqlite:///zone"])
def test_members_url_to_a_missing_or_wrong_folder_is_one_line_never_retried(
    tmp_path: Path, members: str
) -> None:
    delivered(tmp_path / "zone")
    line, took = refused(tmp_path, "run", "--landing", "zone", "--members-url", members)
    assert "members database file" in line and ("does not exist" in line or "is a folder" in line)
    assert took < 15, f"{took:.1f} s: retried?"  # (was three retries, about 45 s, and 6 tracebacks)


@pytest.mark.parametrize("how", [["--year", "2050"], ["--year", "1999"], []])
def test_report_year_out_of_range_is_refused_before_the_load(tmp_path: Path, how: list[str]) -> None:
    delivered(tmp_path / "zone")
    env = {} if how else {"UNIONWH_REPORT_YEAR": "2050"}  # from the configuration, the same
    line, took = refused(tmp_path, "run", "--landing", "zone", *how, **env)
    assert "report_year" in line and "report year must be between 2000 and" in line
    assert took < 15, f"{took:.1f} s"  # (was the whole load and dbt, then a traceback)


def test_postgres_warehouse_without_key_fails_before_any_connection_in_seconds(tmp_path: Path) -> None:
    """No server is needed: the key is checked before the warehouse is connected to."""
    delivered(tmp_path / "zone")
    line, took = refused(
        tmp_path, "run", "--landing", "zone", UNIONWH_WAREHOUSE="postgresql+psycopg://postgres@127.0.0.1:1/x"
    )
    assert "UNIONWH_PII_KEY" in line
    assert took < 5, f"{took:.1f} s"  # (was about 26 s and a Prefect traceback; about 0.7 s now)


@pytest.mark.postgres
@pytest.mark.parametrize("action", ["init", "upgrade", "rotate-key"])
def test_warehouse_commands_name_a_missing_postgres_database(tmp_path: Path, action: str) -> None:
    server = make_url(postgres_or_skip())
    name = f"unionwh_absent_{secrets.token_hex(4)}"
    url = server.set(database=name).render_as_string()
    keys = {
        "UNIONWH_PII_KEY": f"key-{secrets.token_hex(16)}",
        "UNIONWH_NEW_PII_KEY": f"new-{secrets.token_hex(16)}",
    }
    line, _ = refused(tmp_path, "warehouse", action, UNIONWH_WAREHOUSE=url, **keys)
    assert f"no database '{name}'" in line  # (was 119 lines and two tracebacks)
    assert f"{server.host}:{server.port or 5432}" in line


@pytest.mark.parametrize("action", ["upgrade", "rotate-key"])
def test_upgrade_and_rotate_key_never_create_a_warehouse(tmp_path: Path, action: str) -> None:
    line, _ = refused(
        tmp_path,
        "warehouse",
        action,
        UNIONWH_WAREHOUSE="duckdb:///data/wh.duckdb",
        UNIONWH_NEW_PII_KEY=f"new-{secrets.token_hex(16)}",
    )
    assert f"no DuckDB warehouse at {tmp_path / 'data' / 'wh.duckdb'}" in line


@pytest.mark.parametrize("command", [["run", "--landing", "zone"], ["warehouse", "upgrade"]])
def test_a_file_that_is_not_duckdb_is_refused_not_opened(tmp_path: Path, command: list[str]) -> None:
    delivered(tmp_path / "zone")
    (tmp_path / "wh.duckdb").write_text("my notes\n", encoding="utf-8")
    line, _ = refused(tmp_path, *command, UNIONWH_WAREHOUSE="duckdb:///wh.duckdb")
    assert f"{tmp_path / 'wh.duckdb'} is not a DuckDB database" in line


def test_a_bad_argument_is_one_line(tmp_path: Path) -> None:
    line, _ = refused(tmp_path, "run", "--year", "abc")
    assert line == "unionwh: error: argument --year: invalid int value: 'abc' (see `unionwh run --help`)"


BUG = (
    "import sys\nimport flows.cli as cli\n\n"
    "def bug(args):\n    raise KeyError('11010519491231002X 张三丰')  # a value a library might quote\n\n"
    "cli.COMMANDS['status'] = bug\nsys.exit(cli.main(sys.argv[1:]))\n"
)


def test_an_unexpected_exception_is_one_line_exit_3_and_debug_keeps_the_traceback(tmp_path: Path) -> None:
    """A bug (here a command that raises KeyError, in a real CLI process): one line naming the
    type, scrubbed of values (flows.errors.safe_error_text), exit 3; ``--debug`` adds the traceback."""
    env = dict(clean_env(), UNIONWH_HOME=str(tmp_path), PREFECT_HOME=str(tmp_path / "prefect"))
    plain = subprocess.run(
        [sys.executable, "-c", BUG, "status"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert plain.returncode == 3, plain.stderr[-3000:]
    said = "unionwh: error: unexpected KeyError: '…' (rerun with --debug for the traceback)"
    assert plain.stderr.splitlines() == [said], plain.stderr[-3000:]
    debug = subprocess.run(
        [sys.executable, "-c", BUG, "--debug", "status"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert debug.returncode == 3 and "Traceback" in debug.stderr and "in bug" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("unionwh: error: unexpected KeyError")


@pytest.mark.unit
def test_the_exit_code_table() -> None:
    """One table (flows/errors.py Exit): refusals 2, failures of a run that had begun 3."""
    from flows.cli import _run_exit
    from flows.errors import BatchError, Exit, FileInFlux, RunFailed, UnionWHError, WarehouseWriteError
    from flows.warehouse.lock import LockLost, WarehouseBusy

    assert [int(e) for e in Exit] == [0, 1, 2, 3, 130]
    assert ConfigError.exit_code == UnionWHError.exit_code == WarehouseBusy.exit_code == Exit.USAGE
    failures = (RunFailed, WarehouseWriteError, FileInFlux, BatchError, LockLost)
    assert all(c.exit_code == Exit.FAILED for c in failures)
    assert _run_exit("succeeded") == Exit.OK and _run_exit("succeeded", refresh_equal=False) == Exit.ATTENTION
    assert _run_exit("failed") == Exit.ATTENTION  # files rejected: the run itself completed
