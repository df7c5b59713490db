"""Versioned schema migrations of the warehouse's ``raw`` and ``ops`` schemas.

Each migration has a number, a description and its DDL; ``ops.schema_migrations``
records which ones a warehouse has (version, description, applied_at). :func:`upgrade`
applies the missing ones in order, each in its own transaction together with its
record, so an existing warehouse upgrades in place and a crash mid-upgrade leaves it at
the last complete version. Every statement is idempotent (``IF NOT EXISTS``), so a
warehouse made before versioning (tables present, no ``ops.schema_migrations``) is
brought under it by the same path. A warehouse newer than this code is refused rather
than written with an older idea of its tables.

The DDL is frozen SQL, never generated: migration ``N`` is the file
``flows/warehouse/migrations/NNNN_<name>.sql`` (statements both DuckDB and PostgreSQL run)
and, where PostgreSQL needs more (triggers), ``NNNN_<name>.postgresql.sql`` run after it on
PostgreSQL only. A file is ``;``-terminated statements and ``--`` comments; a ``;`` inside
``'...'``, ``"..."`` or a ``$$``-quoted body (PL/pgSQL) does not end a statement. Its header
holds the description (``-- description:`` then ``--   `` lines, joined by spaces) that
``ops.schema_migrations`` records. Editing the contract (flows/schema.py) therefore no longer
changes any migration: it needs one of its own.

**Add a migration** by adding a file with the next number, e.g. ``0007_<name>.sql`` (its
header copied from the one before, with its own description), plus ``0007_<name>.postgresql.sql``
if PostgreSQL needs statements DuckDB has not; when it is released, append its checksum to
``migrations/CHECKSUMS`` (``cd flows/warehouse/migrations && sha256sum 0007_* >> CHECKSUMS``).
Never edit a released file: tests/warehouse/test_migrations_frozen.py checks them against
``CHECKSUMS``, and that applying every migration gives the raw tables the contract describes
(so a contract change without its migration fails there). The dbt models (staging and up)
are not versioned here: every build recreates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows.errors import ConfigError

from .ddl import OPS_SCHEMA

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""The frozen migration files (package data) and their ``CHECKSUMS``."""

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DOLLAR = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def split_sql(text: str, name: str = "<sql>") -> list[str]:
    """The statements of a migration file, each stripped and without its ``;``. ``--`` comments
    are dropped; a ``;`` inside ``'...'``, ``"..."`` or ``$tag$...$tag$`` does not end a statement."""
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "'\"":
            end = i + 1
            while True:
                end = text.find(ch, end)
                if end < 0:
                    raise ConfigError(f"{name}: unterminated {ch} quote")
                if text.startswith(ch * 2, end):
                    end += 2
                    continue
                break
            buf.append(text[i : end + 1])
            i = end + 1
            continue
        if ch == "$" and (m := _DOLLAR.match(text, i)):
            end = text.find(m.group(0), m.end())
            if end < 0:
                raise ConfigError(f"{name}: unterminated {m.group(0)} body")
            end += len(m.group(0))
            buf.append(text[i:end])
            i = end
            continue
        if ch == ";":
            statement = "".join(buf).strip()
            if statement:
                statements.append(statement)
            buf = []
        else:
            buf.append(ch)
        i += 1
    if "".join(buf).strip():
        raise ConfigError(f"{name}: its last statement has no closing ';'")
    return statements


def _description(text: str, name: str) -> str:
    lines = text.splitlines()
    try:
        start = lines.index("-- description:") + 1
    except ValueError:
        raise ConfigError(f"{name}: no '-- description:' header") from None
    words: list[str] = []
    for line in lines[start:]:
        if not line.startswith("--   "):
            break
        words.append(line[5:].strip())
    if not words:
        raise ConfigError(f"{name}: empty description")
    return " ".join(words)


def _read(name: str) -> list[str]:
    return split_sql((MIGRATIONS_DIR / name).read_text(encoding="utf-8"), name)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    file: str
    """The file of statements both dialects run (in :data:`MIGRATIONS_DIR`)."""
    postgresql_file: str | None = None
    """Statements run after ``file`` on PostgreSQL only (DuckDB has no triggers)."""

    def statements(self) -> list[str]:
        return _read(self.file)

    def postgresql_statements(self) -> list[str]:
        return [] if self.postgresql_file is None else _read(self.postgresql_file)

    def statements_for(self, dialect: str) -> list[str]:
        """What this migration runs on ``dialect`` (``duckdb``, ``postgresql``), in order."""
        return self.statements() + (self.postgresql_statements() if dialect == "postgresql" else [])


def discover(folder: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """The migrations in ``folder``, numbered 1, 2, … without gaps."""
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        if path.name.endswith(".postgresql.sql"):
            continue
        m = _FILE.match(path.name)
        if m is None:
            raise ConfigError(f"{path}: a migration file is named NNNN_<lower_case_name>.sql")
        version = int(m.group(1))
        if version in found:
            raise ConfigError(f"{path}: two migration files have number {version}")
        pg = path.with_name(f"{path.name[:-4]}.postgresql.sql")
        description = _description(path.read_text(encoding="utf-8"), path.name)
        found[version] = Migration(version, description, path.name, pg.name if pg.is_file() else None)
    for path in folder.glob("*.postgresql.sql"):
        if not path.with_name(path.name.replace(".postgresql.sql", ".sql")).is_file():
            raise ConfigError(f"{path}: PostgreSQL statements without their migration's .sql file")
    if sorted(found) != list(range(1, len(found) + 1)):
        raise ConfigError(f"{folder}: migration numbers {sorted(found)} are not 1, 2, … without gaps")
    return tuple(found[v] for v in sorted(found))


MIGRATIONS: tuple[Migration, ...] = discover()
LATEST = MIGRATIONS[-1].version

VERSIONS_DDL = f"""CREATE TABLE IF NOT EXISTS {OPS_SCHEMA}.schema_migrations (
  version INTEGER NOT NULL,
  description VARCHAR NOT NULL,
  applied_at TIMESTAMP NOT NULL
)"""

_PG_LOCK = 7_720_331  # pg_advisory_xact_lock key: one upgrade at a time per server database


def current_version(conn: Connection) -> int:
    """The warehouse's schema version (0: not versioned yet)."""
    exists = conn.execute(
        sa.text(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s "
            "AND table_name = 'schema_migrations'"
        ),
        {"s": OPS_SCHEMA},
    ).scalar()
    if not exists:
        return 0
    value = conn.execute(sa.text(f"SELECT max(version) FROM {OPS_SCHEMA}.schema_migrations")).scalar()
    return int(value or 0)


def pending(conn: Connection) -> list[Migration]:
    version = current_version(conn)
    if version > LATEST:
        raise ConfigError(
            f"the warehouse's schema is version {version}, newer than this unionwh knows "
            f"({LATEST}); upgrade unionwh before running it against this warehouse"
        )
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
            for stmt in m.statements_for(conn.dialect.name):
                conn.exec_driver_sql(stmt)
            conn.execute(
                sa.text(f"INSERT INTO {OPS_SCHEMA}.schema_migrations VALUES (:v, :d, :t)"),
                {"v": m.version, "d": m.description, "t": datetime.now().replace(microsecond=0)},
            )
        applied.append(m)
    return applied


def history(engine: Engine) -> list[tuple[int, str, datetime]]:
    with engine.connect() as conn:
        if current_version(conn) == 0:
            return []
        rows = conn.execute(
            sa.text(
                f"SELECT version, description, applied_at FROM {OPS_SCHEMA}.schema_migrations "
                "ORDER BY version"
            )
        ).all()
    return [(int(r[0]), r[1], r[2]) for r in rows]


def all_ddl() -> list[str]:
    """Every migration's statements in order (what :func:`upgrade` applies, without its records)."""
    return [s for m in MIGRATIONS for s in m.statements()]
