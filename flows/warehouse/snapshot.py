"""The marts snapshot: the analysts' read path on the embedded DuckDB warehouse (issue 23).

A DuckDB file has one writer, and while a run holds it nobody else can even read it ("the
DuckDB warehouse is open in another process"). So at the end of every successful run that
built the marts, the run publishes them to a second DuckDB file beside the warehouse,
``<warehouse stem>-marts.duckdb`` (``Settings.marts_snapshot_path``), which nothing but this function ever
writes: every table of the ``marts`` schema under the same name, plus ``main.snapshot_info``
(the run that published it, when, how many marts). Any number of readers open it read-only at
any time, a run in progress or not: ``duckdb -readonly data/warehouse-marts.duckdb``, or
``duckdb.connect(path, read_only=True)``; ``unionwh figures`` and ``unionwh audit`` read it when
the warehouse is busy (flows/warehouse/readonly.py).

Publishing never changes the file a reader has open. The new snapshot is written to a
temporary file in the same folder, checkpointed, flushed to disk, then renamed over the old one
(``os.replace``, atomic on POSIX): a reader that opened the old file keeps reading the old
state until it closes it; one that opens the file after the rename sees the new state; none
sees a mix, and none waits.

To stay cheap on large warehouses (a 1% nightly delta must not copy every mart), the new file
starts as a copy of the previous snapshot, and only the marts that may differ are copied from
the warehouse: those a dbt build rebuilt since the snapshot's run (``ops.dbt_node_results``),
those whose row count differs, those new to the schema; marts that are gone are dropped.
Without a previous snapshot (or one that cannot be read), every mart is copied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows.errors import safe_error_text

from .ddl import OPS_SCHEMA

MARTS_SCHEMA = "marts"
INFO_TABLE = "main.snapshot_info"
ALIAS = "unionwh_snapshot"
"""The name the warehouse's connection attaches the new snapshot under while writing it."""


@dataclass(frozen=True)
class Published:
    path: Path
    marts: int
    copied: list[str]
    """The marts copied from the warehouse (the others came from the previous snapshot)."""
    dropped: list[str]
    seconds: float


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(conn: Connection, catalog: str) -> dict[str, int]:
    """The ``marts`` relations of ``catalog`` with their row counts (views included)."""
    names = [
        r[0]
        for r in conn.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = :c "
                "AND table_schema = :s ORDER BY table_name"
            ),
            {"c": catalog, "s": MARTS_SCHEMA},
        )
    ]
    return {
        n: int(
            conn.exec_driver_sql(f"SELECT count(*) FROM {catalog}.{MARTS_SCHEMA}.{_quote(n)}").scalar() or 0
        )
        for n in names
    }


def _published_run(conn: Connection) -> str | None:
    """The run id recorded in the attached previous snapshot, None when it has none."""
    found = conn.execute(
        sa.text(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = :c "
            "AND table_schema = 'main' AND table_name = 'snapshot_info'"
        ),
        {"c": ALIAS},
    ).scalar()
    if not found:
        return None
    return conn.exec_driver_sql(f"SELECT max(run_id) FROM {ALIAS}.{INFO_TABLE}").scalar()


def _rebuilt_since(conn: Connection, run_id: str) -> set[str]:
    """The models some dbt build after ``run_id`` ran (by name): their marts may have changed."""
    rows = conn.execute(
        sa.text(
            f"SELECT DISTINCT unique_id FROM {OPS_SCHEMA}.dbt_node_results "
            "WHERE resource_type = 'model' AND run_id > :r"
        ),
        {"r": run_id},
    )
    return {r[0].rsplit(".", 1)[-1] for r in rows}


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(engine: Engine, target: Path, run_id: str) -> Published:
    """Write the snapshot of the marts of the DuckDB warehouse ``engine`` opens, as of ``run_id``,
    and swap it into place at ``target`` (the caller holds the warehouse lock: no other run
    writes the marts meanwhile)."""
    t0 = time.perf_counter()
    temp = target.with_name(f".{target.name}.{run_id}.tmp")
    for leftover in target.parent.glob(f".{target.name}.*.tmp*"):  # a killed run's (we hold the lock)
        leftover.unlink(missing_ok=True)
    previous = target.is_file()
    if previous:
        shutil.copyfile(target, temp)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"ATTACH '{_literal(temp)}' AS {ALIAS}")
            conn.commit()
            try:
                copied, dropped, count = _write(conn, run_id, previous)
                conn.commit()  # (one transaction: a CHECKPOINT needs it committed)
                conn.exec_driver_sql(f"CHECKPOINT {ALIAS}")
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                conn.exec_driver_sql(f"DETACH {ALIAS}")
                conn.commit()
        _sync_file(temp)
        os.replace(temp, target)
        with contextlib.suppress(OSError):  # (the rename made durable; not every file system can)
            _sync_file(target.parent)
    finally:
        for leftover in (temp, temp.with_name(temp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return Published(target, count, copied, dropped, time.perf_counter() - t0)


def _write(conn: Connection, run_id: str, previous: bool) -> tuple[list[str], list[str], int]:
    """Bring the attached snapshot to the warehouse's marts; (copied, dropped, how many marts)."""
    current = _tables(conn, _catalog(conn))
    since = _published_run(conn) if previous else None
    if since is None:  # no previous snapshot, or not one of ours: start from nothing
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {ALIAS}.{MARTS_SCHEMA} CASCADE")
        held: dict[str, int] = {}
        rebuilt: set[str] = set(current)
    else:
        held = _tables(conn, ALIAS)
        rebuilt = _rebuilt_since(conn, since)
    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{MARTS_SCHEMA}")
    dropped = sorted(set(held) - set(current))
    for name in dropped:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {ALIAS}.{MARTS_SCHEMA}.{_quote(name)}")
    copied = sorted(n for n, rows in current.items() if n in rebuilt or held.get(n) != rows)
    for name in copied:
        conn.exec_driver_sql(
            f"CREATE OR REPLACE TABLE {ALIAS}.{MARTS_SCHEMA}.{_quote(name)} AS "
            f"SELECT * FROM {MARTS_SCHEMA}.{_quote(name)}"
        )
    conn.exec_driver_sql(
        f"CREATE OR REPLACE TABLE {ALIAS}.{INFO_TABLE} AS SELECT CAST(? AS VARCHAR) AS run_id, "
        "CAST(now() AS TIMESTAMP) AS published_at, CAST(? AS INTEGER) AS marts",
        (run_id, len(current)),
    )
    return copied, dropped, len(current)


def _literal(path: Path) -> str:
    return path.as_posix().replace("'", "''")


def _catalog(conn: Connection) -> str:
    return str(conn.exec_driver_sql("SELECT current_database()").scalar())


def publish_logged(engine: Engine, target: Path, run_id: str, log: Callable[[str], None]) -> Published | None:
    """:func:`publish`, one log line; a failure is logged, not raised (the run's own work is
    done and recorded; the previous snapshot stays in place, whole)."""
    try:
        done = publish(engine, target, run_id)
    except Exception as exc:  # noqa: BLE001 - (disk full, a permission): the run stays succeeded
        log(f"marts snapshot not published ({safe_error_text(exc)}): readers keep the previous one")
        return None
    log(
        f"marts snapshot: {done.path} ({done.marts} marts, {len(done.copied)} copied from the warehouse"
        f"{', ' + str(len(done.dropped)) + ' dropped' if done.dropped else ''}, {done.seconds:.1f} s)"
    )
    return done


@dataclass(frozen=True)
class SnapshotInfo:
    run_id: str
    published_at: datetime


def info(engine: Engine) -> SnapshotInfo | None:
    """What ``main.snapshot_info`` of a snapshot opened by ``engine`` says."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql(f"SELECT run_id, published_at FROM {INFO_TABLE}").first()
    return None if row is None else SnapshotInfo(str(row[0]), row[1])
