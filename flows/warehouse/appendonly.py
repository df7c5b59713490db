"""Append-only tables: the raw layer and the ledger never change in place.

A correction arrives as new rows (a later delivery, a later run's snapshot); nothing a run
writes to these tables is ever updated or deleted by a later run:

- ``raw.*``: every delivered row with its lineage, and ``raw.welfare__workbooks``. The raw
  layer is the history every figure of every year (published or not) is computed from, and
  ``unionwh figures --as-known-on`` recomputes a past year's figures from it;
- ``ops.load_ledger`` and ``ops.quarantine``: each (file, table) looked at, each row held back;
- ``ops.figure_values`` and ``ops.figure_changes``: the figures of every year as each run
  left them, and what each run changed (the warehouse's record of a year's figures, including
  those of a published year: ``publication.json`` names the run whose snapshot it froze);
- ``ops.run_sources``, ``ops.dbt_builds``, ``ops.dbt_node_results``, ``ops.schema_migrations``:
  what each run loaded, what each build selected and what each of its nodes gave, which schema
  versions were applied.

``ops.runs`` is a run's status row, not ledger data: it is written when the run starts
(``running``) and finished once (``succeeded``/``failed``/``interrupted``, or ``crashed`` by the
next run).
A row that has left ``running`` is frozen, and no row is ever deleted. ``ops.watermarks``
(the members pull's cursor, one row per table), ``ops.settings`` (the key's fingerprint) and
``ops.pseudonym_scratch`` are state, not history. The dbt schemas (staging, marts…) are
rebuilt by every build; a published year is frozen as files (flows/report/publish.py).

The documented exceptions, each in one transaction that names itself with
``SET LOCAL unionwh.rewrite = '<reason>'`` (:func:`allow_rewrite`):

- ``full-refresh`` (``unionwh run --full-refresh``, flows/warehouse/refresh.py): DELETE of the
  six file sources' raw rows, workbook register, ledger and quarantine entries, which the same
  run reloads from the landing zone and proves equal;
- ``rotate-key`` (``unionwh warehouse rotate-key``, flows/warehouse/pii.py): UPDATE of the
  ``*_pseudonym`` columns of raw under the new key;
- ``pseudonym-backfill`` (flows/warehouse/pii.py): UPDATE filling ``*_pseudonym`` columns
  that are NULL, for rows loaded before schema version 2 added them.

On PostgreSQL, schema version 5 enforces this with triggers: a statement-level trigger on
each append-only table raises on UPDATE and DELETE (even of no rows) unless the transaction
set the matching reason (DELETE: ``full-refresh``; UPDATE: ``rotate-key`` or
``pseudonym-backfill``), and on TRUNCATE always; on ``ops.runs`` a row-level trigger refuses
to update a finished run, and DELETE and TRUNCATE are refused. The triggers also see what
dbt (a child process) and people do. DuckDB has no triggers: there the promise is kept by the
code (the loader only inserts) and proved by tests/warehouse/test_append_only.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flows.schema import SOURCE_ENTRIES, TABLES

from .ddl import OPS_SCHEMA, RAW_SCHEMA

REWRITE_SETTING = "unionwh.rewrite"
DELETE_REASONS = ("full-refresh",)
UPDATE_REASONS = ("rotate-key", "pseudonym-backfill")
OPS_APPEND_ONLY = (
    "load_ledger",
    "quarantine",
    "run_sources",
    "figure_values",
    "figure_changes",
    "dbt_builds",
    "schema_migrations",
)
"""Made append-only by schema version 5."""
OPS_APPEND_ONLY_V6 = ("dbt_node_results",)
"""Made append-only by schema version 6 (created by it)."""
RUNS = f"{OPS_SCHEMA}.runs"


def append_only_tables() -> tuple[str, ...]:
    """Every append-only table as ``schema.table``."""
    return (
        *(f"{RAW_SCHEMA}.{t.raw_table}" for t in TABLES),
        *(f"{RAW_SCHEMA}.{s.register_table}" for s in SOURCE_ENTRIES if s.register is not None),
        *(f"{OPS_SCHEMA}.{name}" for name in OPS_APPEND_ONLY + OPS_APPEND_ONLY_V6),
    )


def allow_rewrite(conn: Connection, reason: str) -> None:
    """Name this transaction as one of the documented exceptions (PostgreSQL: ``SET LOCAL
    unionwh.rewrite``, which ends with the transaction; DuckDB has no triggers to tell)."""
    if reason not in DELETE_REASONS + UPDATE_REASONS:
        raise ValueError(f"not a documented rewrite of the append-only tables: {reason!r}")
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT set_config(:name, :reason, true)"), {"name": REWRITE_SETTING, "reason": reason}
        )
