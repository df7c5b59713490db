"""Names and column rules of the warehouse's ``raw`` and ``ops`` schemas.

Raw tables mirror the contract (flows/schema.py) column for column, typed by
:data:`SQL_TYPES`, plus the lineage columns (:data:`META_DDL`) and the pseudonym
columns (:func:`pseudonym_columns`). The tables themselves are created by the frozen
migrations (flows/warehouse/migrations/*.sql, applied by flows/warehouse/migrations.py);
tests/warehouse/test_migrations_frozen.py checks that they still match these rules.
"""

from __future__ import annotations

from flows import schema
from flows.schema import Table

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


def personal_columns(t: Table) -> tuple[str, ...]:
    """A table's personal columns, as its source's contract entry says (:func:`schema.personal_columns`)."""
    return schema.personal_columns(t)


def pseudonym_columns(t: Table) -> list[tuple[str, str]]:
    return [(f"{name}_pseudonym", "VARCHAR") for name in personal_columns(t)]


def upgrade_ddl(t: Table) -> list[str]:
    """The pseudonyms of a raw table's personal columns, appended after the lineage columns
    (idempotent), as schema version 2 added them (its frozen file is what runs: this is for
    tests that rebuild that step)."""
    return [
        f"ALTER TABLE {RAW_SCHEMA}.{t.raw_table} ADD COLUMN IF NOT EXISTS {name} {typ}"
        for name, typ in pseudonym_columns(t)
    ]
