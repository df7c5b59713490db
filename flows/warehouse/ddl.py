"""Table definitions of the warehouse's ``raw`` and ``ops`` schemas.

Raw tables mirror the contract (flows/schema.py) column for column, typed, plus
the lineage columns. The DDL is plain ANSI SQL that DuckDB and PostgreSQL share.
"""

from __future__ import annotations

from flows.schema import TABLES, Table

SQL_TYPES: dict[str, str] = {
    "text": "VARCHAR",
    "code": "VARCHAR",
    "uscc": "VARCHAR",
    "resident_id": "VARCHAR",
    "union_code": "VARCHAR",
    "payee_code": "VARCHAR",
    "phone": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "int": "BIGINT",
    "amount": "DECIMAL(18, 2)",
    "bool": "BOOLEAN",
}

META_DDL: tuple[tuple[str, str], ...] = (
    ("_load_id", "VARCHAR NOT NULL"),
    ("_source", "VARCHAR NOT NULL"),
    ("_file_name", "VARCHAR NOT NULL"),
    ("_file_sha256", "VARCHAR NOT NULL"),
    ("_delivery_date", "DATE NOT NULL"),
    ("_row_number", "BIGINT NOT NULL"),
)

RAW_SCHEMA = "raw"
OPS_SCHEMA = "ops"


PERSONAL_KINDS = frozenset({"resident_id", "phone"})
PERSONAL_NAMES = frozenset({"name", "recipient"})
"""Personal columns (flows/warehouse/pii.py): resident IDs, phones, and names (获奖对象 may be a person)."""


def personal_columns(t: Table) -> tuple[str, ...]:
    return tuple(c.name for c in t.all_columns if c.kind in PERSONAL_KINDS or c.name in PERSONAL_NAMES)


def pseudonym_columns(t: Table) -> list[tuple[str, str]]:
    return [(f"{name}_pseudonym", "VARCHAR") for name in personal_columns(t)]


def upgrade_ddl(t: Table) -> list[str]:
    """Schema version 2: the pseudonyms of a raw table's personal columns, appended after the
    lineage columns (idempotent)."""
    return [f"ALTER TABLE {RAW_SCHEMA}.{t.raw_table} ADD COLUMN IF NOT EXISTS {name} {typ}"
            for name, typ in pseudonym_columns(t)]


def raw_table_ddl(t: Table) -> str:
    """A raw table as schema version 1 created it: contract columns and lineage."""
    cols = ",\n  ".join(f"{name} {typ}" for name, typ in [(c.name, SQL_TYPES[c.kind]) for c in t.all_columns]
                        + list(META_DDL))
    return f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{t.raw_table} (\n  {cols}\n)"


WORKBOOKS_DDL = f"""CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.welfare__workbooks (
  station_code VARCHAR NOT NULL,
  ledger_month VARCHAR NOT NULL,
  _load_id VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL
)"""
"""One row per welfare workbook that loaded: the newest (station, month) workbook
replaces every earlier one, even for sheets where it now has no rows."""

LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {OPS_SCHEMA}.load_ledger (
  load_id VARCHAR NOT NULL,
  run_id VARCHAR NOT NULL,
  source VARCHAR NOT NULL,
  table_name VARCHAR NOT NULL,
  file_name VARCHAR NOT NULL,
  file_sha256 VARCHAR NOT NULL,
  delivery_date DATE,
  rows_read BIGINT NOT NULL,
  rows_loaded BIGINT NOT NULL,
  rows_quarantined BIGINT NOT NULL,
  status VARCHAR NOT NULL,
  error_rule VARCHAR,
  error_message VARCHAR,
  loaded_at TIMESTAMP NOT NULL
)"""
"""One row per (file, table) a run looked at. status: loaded | rejected."""

QUARANTINE_DDL = f"""CREATE TABLE IF NOT EXISTS {OPS_SCHEMA}.quarantine (
  load_id VARCHAR NOT NULL,
  source VARCHAR NOT NULL,
  table_name VARCHAR NOT NULL,
  file_name VARCHAR NOT NULL,
  file_sha256 VARCHAR NOT NULL,
  delivery_date DATE,
  row_number BIGINT NOT NULL,
  row_key VARCHAR,
  rules VARCHAR NOT NULL,
  reasons VARCHAR NOT NULL,
  original_values VARCHAR NOT NULL,
  quarantined_at TIMESTAMP NOT NULL
)"""
"""One row per rejected source row: its key as the contract defines it (``|``-joined
canonical values; station|month for a welfare ledger row), every rule it broke
(``;``-joined ids), the reasons in English and Chinese, and its values as JSON."""

RUNS_DDL = f"""CREATE TABLE IF NOT EXISTS {OPS_SCHEMA}.runs (
  run_id VARCHAR NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  status VARCHAR NOT NULL,
  message VARCHAR
)"""

WATERMARKS_DDL = f"""CREATE TABLE IF NOT EXISTS {OPS_SCHEMA}.watermarks (
  source VARCHAR NOT NULL,
  table_name VARCHAR NOT NULL,
  watermark TIMESTAMP NOT NULL,
  load_id VARCHAR NOT NULL
)"""


SETTINGS_DDL = f"""CREATE TABLE IF NOT EXISTS {OPS_SCHEMA}.settings (
  name VARCHAR NOT NULL,
  value VARCHAR NOT NULL
)"""
"""Facts about the warehouse itself, e.g. the fingerprint of its pseudonymisation key."""


def all_ddl() -> list[str]:
    """Every migration's statements in order (flows/warehouse/migrations.py applies and records them)."""
    from .migrations import MIGRATIONS

    return [s for m in MIGRATIONS for s in m.statements()]
