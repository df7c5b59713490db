"""One writer per warehouse: the load lock.

A run takes the lock before it touches the warehouse and keeps it until its figures are
written (dbt included). A second run waits for it, up to ``lock_wait_seconds``, then
stops with a message naming the holder. The lock dies with its holder, so a crashed run
never leaves it behind:

- DuckDB: an exclusive ``flock`` on ``<warehouse file>.lock`` (the file also records
  the holder's run id, pid and start time, for the message);
- PostgreSQL: a session advisory lock, held on a connection whose ``application_name``
  names the run. If that session drops while the run goes on, the lock is gone: every new
  connection of the run checks first, and the run stops with :class:`LockLost`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows.errors import Exit, UnionWHError

PG_KEY = 7_720_332
POLL_SECONDS = 1.0


class WarehouseBusy(UnionWHError):
    """Another run holds the warehouse's load lock."""


class LockLost(UnionWHError):
    """The run's hold on the warehouse lock ended before the run did (PostgreSQL: its session dropped)."""

    exit_code = Exit.FAILED  # the run broke off midway (not a refusal before it began)


def lock_path(duckdb_file: Path) -> Path:
    return duckdb_file.with_name(duckdb_file.name + ".lock")


def _wait(
    try_once: Callable[[], bool],
    holder: Callable[[], str],
    wait_seconds: float,
    on_wait: Callable[[str], None] | None,
) -> None:
    deadline = time.monotonic() + wait_seconds
    told = False
    while not try_once():
        who = holder()
        if time.monotonic() >= deadline:
            raise WarehouseBusy(
                f"the warehouse is being written by {who}; gave up after waiting "
                f"{wait_seconds:g} s (lock_wait_seconds / --lock-wait)"
            )
        if not told and on_wait is not None:
            on_wait(f"waiting for the warehouse lock held by {who} (up to {wait_seconds:g} s)")
            told = True
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def duckdb_lock(
    duckdb_file: Path, run_id: str, wait_seconds: float, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    path = lock_path(duckdb_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        def holder() -> str:
            try:
                info = json.loads(path.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                info = {}
            return (
                f"run {info.get('run_id', '?')} (pid {info.get('pid', '?')}, since {info.get('since', '?')})"
                if info
                else "another process"
            )

        _wait(try_once, holder, wait_seconds, on_wait)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps(
                {"run_id": run_id, "pid": os.getpid(), "since": datetime.now().isoformat(timespec="seconds")}
            ).encode(),
            0,
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def postgres_lock(
    engine: Engine, run_id: str, wait_seconds: float, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    with engine.connect() as conn:
        conn.execute(
            sa.text("SELECT set_config('application_name', :n, false)"), {"n": f"unionwh run {run_id}"}
        )
        conn.commit()

        def try_once() -> bool:
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_KEY}).scalar())
            conn.commit()
            return got

        def holder() -> str:
            return _pg_holder(conn)

        _wait(try_once, holder, wait_seconds, on_wait)
        guard = _guard(conn)
        sa.event.listen(engine, "engine_connect", guard)
        try:
            yield
        finally:
            sa.event.remove(engine, "engine_connect", guard)
            with contextlib.suppress(sa.exc.DBAPIError):  # (a dropped session released it already)
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": PG_KEY})
                conn.commit()


def _guard(lock_conn: Connection) -> Callable[[Connection], None]:
    """A check run on every new connection the run's engine makes while it holds the lock:
    the advisory lock lives in the lock's session, so if that session's connection dropped
    (a server restart, a network cut, an administrator's ``pg_terminate_backend``), the lock
    is gone and another run may be writing. The run then stops before writing anything
    more, with :class:`LockLost`; everything it committed so far is whole (one transaction
    per file with its ledger entry), and the next run goes on from there."""
    raw = lock_conn.connection.dbapi_connection
    mutex = threading.Lock()

    def check(_: Connection) -> None:
        with mutex:
            try:
                with raw.cursor() as cur:  # (the raw connection: this session is in autocommit-free idle)
                    cur.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                        "AND pid = pg_backend_pid() AND granted",
                        (PG_KEY,),
                    )
                    held = cur.fetchone()[0] > 0
                raw.rollback()
            except Exception as exc:  # noqa: BLE001 - the lock's session is gone: that is the whole point
                raise LockLost(
                    "lost the warehouse lock: its PostgreSQL session dropped "
                    f"({type(exc).__name__}); stopped before writing more: run again"
                ) from None
            if not held:
                raise LockLost(
                    "lost the warehouse lock (its session no longer holds it); stopped before "
                    "writing more: run again"
                )

    return check


def _pg_holder(conn: Connection) -> str:
    row = conn.execute(
        sa.text(
            "SELECT a.application_name, a.pid, a.backend_start FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = :k AND l.granted "
            # (advisory locks are per database: another warehouse on the same server holds its own)
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1"
        ),
        {"k": PG_KEY},
    ).first()
    conn.commit()
    if row is None:
        return "another session"
    return f"{row[0] or 'another session'} (server pid {row[1]}, since {row[2]:%Y-%m-%d %H:%M:%S})"


def _duckdb_free(engine: Engine, seconds: float) -> None:
    """Wait until DuckDB itself lets us open the file: the run that just released the lock
    may still be closing it (DuckDB allows one process at a time)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with engine.connect():
                return
        except sa.exc.DBAPIError as exc:
            if "lock" not in str(exc.orig).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(POLL_SECONDS / 2)


@contextlib.contextmanager
def warehouse_lock(
    engine: Engine,
    duckdb_file: Path | None,
    run_id: str,
    wait_seconds: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """The load lock of the warehouse behind ``engine`` (``duckdb_file`` for DuckDB)."""
    if duckdb_file is not None:
        with duckdb_lock(duckdb_file, run_id, wait_seconds, on_wait):
            _duckdb_free(engine, max(wait_seconds, 60))
            yield
    else:
        with postgres_lock(engine, run_id, wait_seconds, on_wait):
            yield
