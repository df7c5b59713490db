"""The warehouse load lock: real flock on DuckDB, real advisory locks on PostgreSQL, and two
real `unionwh run` processes against one DuckDB warehouse."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.checksums import resident_id_check_char
from flows.warehouse.lock import LockLost, WarehouseBusy, duckdb_lock, lock_path, postgres_lock
from tests.support import MEMBERS_DDL, create_database, drop_database, postgres_or_skip


@pytest.mark.unit
def test_duckdb_lock_refuses_waits_and_names_the_holder(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    waits: list[str] = []
    with (
        duckdb_lock(wh, "run-A", 0),
        pytest.raises(WarehouseBusy, match=r"being written by run run-A \(pid \d+"),
        duckdb_lock(wh, "run-B", 0),
    ):
        pass
    # free again: taken at once
    with duckdb_lock(wh, "run-B", 0):
        pass
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with duckdb_lock(wh, "run-C", 0):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    threading.Timer(1.5, release.set).start()
    started = time.monotonic()
    with duckdb_lock(wh, "run-D", 30, waits.append):
        waited = time.monotonic() - started
    t.join()
    assert waited >= 1.0
    assert len(waits) == 1 and "run-C" in waits[0]


def test_duckdb_lock_dies_with_its_holder(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom flows.warehouse.lock import duckdb_lock\n"
        "with duckdb_lock(Path(sys.argv[1]), 'killed-run', 0):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(wh)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match="killed-run"), duckdb_lock(wh, "other", 0):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with duckdb_lock(wh, "after", 0):
        assert "after" in lock_path(wh).read_text()


@pytest.mark.postgres
def test_the_busy_message_names_the_run_of_this_warehouse() -> None:
    """Two warehouses on one server: each has its own lock (advisory locks are per database),
    and a refused run is told the holder of its own warehouse's, not the other's (CI met a
    concurrent test's run named in this message)."""
    server = postgres_or_skip()
    names = [f"unionwh_lock_{secrets.token_hex(4)}" for _ in range(2)]
    for name in names:
        create_database(server, name)
    other, a, b = (sa.create_engine(f"{server}/{n}") for n in (names[0], names[1], names[1]))
    try:
        with (
            postgres_lock(other, "run-of-the-other-warehouse", 0),
            postgres_lock(a, "run-A", 0),
            pytest.raises(WarehouseBusy, match=r"unionwh run run-A \(server pid \d+"),
            postgres_lock(b, "run-B", 0),
        ):
            pass
    finally:
        for engine in (other, a, b):
            engine.dispose()
        for name in names:
            drop_database(server, name)


@pytest.mark.postgres
def test_postgres_advisory_lock() -> None:
    server = postgres_or_skip()
    name = f"unionwh_lock_{secrets.token_hex(4)}"
    create_database(server, name)
    a, b = sa.create_engine(f"{server}/{name}"), sa.create_engine(f"{server}/{name}")
    try:
        with (
            postgres_lock(a, "run-A", 0),
            pytest.raises(WarehouseBusy, match=r"unionwh run run-A \(server pid \d+"),
            postgres_lock(b, "run-B", 0),
        ):
            pass
        with postgres_lock(b, "run-B", 0):
            pass
    finally:
        a.dispose()
        b.dispose()
        drop_database(server, name)


@pytest.mark.postgres
def test_a_run_whose_lock_session_drops_stops_before_writing_more() -> None:
    """The advisory lock lives in one session: when the server drops it, another run could take
    the lock, so the holder's next connection refuses to go on (LockLost), and leaving the
    lock's block does not fail on the dead session."""
    server = postgres_or_skip()
    name = f"unionwh_lock_{secrets.token_hex(4)}"
    create_database(server, name)
    a, b = sa.create_engine(f"{server}/{name}", pool_pre_ping=True), sa.create_engine(f"{server}/{name}")
    try:
        with postgres_lock(a, "run-A", 0):
            with a.connect() as conn:  # held: connections work
                assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            with b.connect() as admin:
                dropped = admin.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            assert dropped >= 1
            with pytest.raises(LockLost, match="lost the warehouse lock"), a.connect():
                pass
            with postgres_lock(b, "run-B", 0):  # and indeed another run can take it now
                pass
        with a.connect() as conn:  # the block is over: the engine works again
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        a.dispose()
        b.dispose()
        drop_database(server, name)


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A landing zone with only a members database, and the environment of a run on it."""
    landing = tmp_path / "landing"
    landing.mkdir()
    ID = "11010119900307123" + resident_id_check_char("11010119900307123")
    con = sqlite3.connect(landing / "members.sqlite")
    con.executescript(
        MEMBERS_DDL
        + f"insert into member values (1, '{ID}', '李四', '13800138000', 'GH0000000001', 'standard',"
        " 0, 0, '2021-01-02', '2021-03-05 09:00:00', null);"
        "insert into member_card values (1, 1, 'K1', 'new', '2021-03-01', '2021-03-01 09:00:00');"
    )
    con.commit()
    con.close()
    env = dict(
        os.environ,
        UNIONWH_HOME=str(tmp_path),
        UNIONWH_LANDING=str(landing),
        UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'wh.duckdb'}",
        UNIONWH_OUTPUT=str(tmp_path / "runs"),
        UNIONWH_PII_KEY="lock-test-key-0123456789abcdef",
    )
    for k in ("UNIONWH_MEMBERS_URL", "PREFECT_API_URL"):
        env.pop(k, None)
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    yield env


def unionwh(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class Output:
    """A child's output, read as it comes (so the test can wait for a line)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
        self.thread.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)


def runs(tmp_path: Path) -> list[tuple[str, int]]:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        with engine.connect() as conn:
            status = conn.exec_driver_sql("SELECT status FROM ops.runs ORDER BY started_at").all()
            members = conn.exec_driver_sql("SELECT count(*) FROM raw.members__member").scalar()
        return [(s[0], int(members or 0)) for s in status]
    finally:
        engine.dispose()


@pytest.mark.e2e
def test_a_run_waits_for_the_lock_or_gives_up(tiny: dict[str, str], tmp_path: Path) -> None:
    wh = tmp_path / "wh.duckdb"
    with duckdb_lock(wh, "holder-run", 0):
        refused = unionwh(tiny, "run", "--load-only", "--lock-wait", "0")
        out, _ = refused.communicate(timeout=300)
        assert refused.returncode == 2, out
        assert "unionwh: error: the warehouse is being written by run holder-run" in out
        assert not list((tmp_path / "runs").glob("*")), "a refused run leaves no run folder"
        waiting = unionwh(tiny, "run", "--load-only", "--lock-wait", "300")
        out = Output(waiting)
        deadline = time.monotonic() + 240
        while "waiting for the warehouse lock held by run holder-run" not in out.text:
            assert waiting.poll() is None and time.monotonic() < deadline, out.text
            time.sleep(1)
        time.sleep(2)
        assert waiting.poll() is None  # still waiting while the lock is held
    assert waiting.wait(timeout=300) == 0, out.text
    out.thread.join()
    assert runs(tmp_path) == [("succeeded", 1)]


@pytest.mark.e2e
def test_two_concurrent_runs_leave_the_warehouse_intact(tiny: dict[str, str], tmp_path: Path) -> None:
    first, second = unionwh(tiny, "run", "--load-only"), unionwh(tiny, "run", "--load-only")
    outs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert runs(tmp_path) == [("succeeded", 1), ("succeeded", 1)]  # both in the run log, one member row


def test_a_read_command_on_a_busy_duckdb_file_says_so(tmp_path: Path) -> None:
    wh = tmp_path / "busy.duckdb"
    code = (
        "import sys, time, duckdb\ncon = duckdb.connect(sys.argv[1])\nprint('open', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(wh)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        env = dict(os.environ, UNIONWH_WAREHOUSE=f"duckdb:///{wh}", UNIONWH_HOME=str(tmp_path))
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr
    assert "unionwh: error: the DuckDB warehouse is open in another process" in done.stderr
    assert "Traceback" not in done.stderr
