"""Versioned schema migrations of the warehouse's ``raw`` and ``ops`` schemas.

Each migration has a number, a description and its DDL; ``ops.schema_migrations``
records which ones a warehouse has (version, description, applied_at). :func:`upgrade`
applies the missing ones in order, each in its own transaction together with its
record, so an existing warehouse upgrades in place and a crash mid-upgrade leaves it at
the last complete version. Every statement is idempotent (``IF NOT EXISTS``), so a
warehouse made before versioning (tables present, no ``ops.schema_migrations``) is
brought under it by the same path. A warehouse newer than this code is refused rather
than written with an older idea of its tables.

Add a migration by appending to :data:`MIGRATIONS`; never edit a released one. The dbt
models (staging and up) are not versioned here: every build recreates them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows.errors import ConfigError
from flows.schema import TABLES

from .ddl import (
    LEDGER_DDL,
    OPS_SCHEMA,
    QUARANTINE_DDL,
    RAW_SCHEMA,
    RUNS_DDL,
    SETTINGS_DDL,
    WATERMARKS_DDL,
    WORKBOOKS_DDL,
    raw_table_ddl,
    upgrade_ddl,
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Callable[[], list[str]]
    postgresql: Callable[[], list[str]] | None = None
    """Statements run after ``statements`` on PostgreSQL only (DuckDB has no triggers)."""


def _v1() -> list[str]:
    return ([f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}", f"CREATE SCHEMA IF NOT EXISTS {OPS_SCHEMA}"]
            + [raw_table_ddl(t) for t in TABLES]
            + [WORKBOOKS_DDL, LEDGER_DDL, QUARANTINE_DDL, RUNS_DDL, WATERMARKS_DDL])


def _v2() -> list[str]:
    return [s for t in TABLES for s in upgrade_ddl(t)] + [SETTINGS_DDL]


def _v3() -> list[str]:
    from . import runlog

    return runlog.ddl()


def _v4() -> list[str]:
    from . import builds

    return builds.ddl()


def _v5() -> list[str]:
    return []  # DuckDB: nothing to create (no triggers); the code only appends, tests prove it


def _v5_postgresql() -> list[str]:
    from . import appendonly

    return appendonly.postgresql_ddl()


def _v6() -> list[str]:
    from . import builds

    return builds.node_results_ddl()


def _v6_postgresql() -> list[str]:
    from . import appendonly

    return appendonly.table_trigger_ddl(f"{OPS_SCHEMA}.dbt_node_results")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "raw tables of the contract with lineage; ops load_ledger, quarantine, runs, watermarks", _v1),
    Migration(2, "pseudonym columns for personal data in raw; ops.settings (key fingerprint)", _v2),
    Migration(3, "run ledger: counts and dbt results on ops.runs; ops.run_sources, figure_values, figure_changes",
              _v3),
    Migration(4, "ops.dbt_builds: what each dbt build selected, so a run rebuilds only what its new rows change",
              _v4),
    Migration(5, "append-only raw and ledger tables: PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE "
                 "unless the transaction names a documented rewrite (full-refresh, rotate-key, pseudonym-backfill)",
              _v5, _v5_postgresql),
    Migration(6, "ops.dbt_node_results: every dbt node's result per build, so the summary states each test's "
                 "latest result whichever build ran it (append-only)", _v6, _v6_postgresql),
)
LATEST = MIGRATIONS[-1].version

VERSIONS_DDL = f"""CREATE TABLE IF NOT EXISTS {OPS_SCHEMA}.schema_migrations (
  version INTEGER NOT NULL,
  description VARCHAR NOT NULL,
  applied_at TIMESTAMP NOT NULL
)"""

_PG_LOCK = 7_720_331  # pg_advisory_xact_lock key: one upgrade at a time per server database


def current_version(conn: Connection) -> int:
    """The warehouse's schema version (0: not versioned yet)."""
    exists = conn.execute(sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s "
                                  "AND table_name = 'schema_migrations'"), {"s": OPS_SCHEMA}).scalar()
    if not exists:
        return 0
    value = conn.execute(sa.text(f"SELECT max(version) FROM {OPS_SCHEMA}.schema_migrations")).scalar()
    return int(value or 0)


def pending(conn: Connection) -> list[Migration]:
    version = current_version(conn)
    if version > LATEST:
        raise ConfigError(f"the warehouse's schema is version {version}, newer than this unionwh knows "
                          f"({LATEST}); upgrade unionwh before running it against this warehouse")
    return [m for m in MIGRATIONS if m.version > version]


def upgrade(engine: Engine, to: int | None = None) -> list[Migration]:
    """Apply the missing migrations (up to ``to``, default the latest); returns those applied."""
    target = LATEST if to is None else to
    applied: list[Migration] = []
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {OPS_SCHEMA}")
        conn.exec_driver_sql(VERSIONS_DDL)
    for m in MIGRATIONS:
        if m.version > target:
            break
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            if m not in pending(conn):
                continue
            for stmt in m.statements():
                conn.exec_driver_sql(stmt)
            if m.postgresql is not None and conn.dialect.name == "postgresql":
                for stmt in m.postgresql():
                    conn.exec_driver_sql(stmt)
            conn.execute(sa.text(f"INSERT INTO {OPS_SCHEMA}.schema_migrations VALUES (:v, :d, :t)"),
                         {"v": m.version, "d": m.description, "t": datetime.now().replace(microsecond=0)})
        applied.append(m)
    return applied


def history(engine: Engine) -> list[tuple[int, str, datetime]]:
    with engine.connect() as conn:
        if current_version(conn) == 0:
            return []
        rows = conn.execute(sa.text(f"SELECT version, description, applied_at FROM {OPS_SCHEMA}.schema_migrations "
                                    "ORDER BY version")).all()
    return [(int(r[0]), r[1], r[2]) for r in rows]
