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

from flows.schema import TABLES

from .ddl import OPS_SCHEMA, RAW_SCHEMA

REWRITE_SETTING = "unionwh.rewrite"
DELETE_REASONS = ("full-refresh",)
UPDATE_REASONS = ("rotate-key", "pseudonym-backfill")
OPS_APPEND_ONLY = ("load_ledger", "quarantine", "run_sources", "figure_values", "figure_changes", "dbt_builds",
                   "schema_migrations")
"""Made append-only by schema version 5."""
OPS_APPEND_ONLY_V6 = ("dbt_node_results",)
"""Made append-only by schema version 6 (created by it)."""
RUNS = f"{OPS_SCHEMA}.runs"


def append_only_tables() -> tuple[str, ...]:
    """Every append-only table as ``schema.table``."""
    return (*(f"{RAW_SCHEMA}.{t.raw_table}" for t in TABLES), f"{RAW_SCHEMA}.welfare__workbooks",
            *(f"{OPS_SCHEMA}.{name}" for name in OPS_APPEND_ONLY + OPS_APPEND_ONLY_V6))


def allow_rewrite(conn: Connection, reason: str) -> None:
    """Name this transaction as one of the documented exceptions (PostgreSQL: ``SET LOCAL
    unionwh.rewrite``, which ends with the transaction; DuckDB has no triggers to tell)."""
    if reason not in DELETE_REASONS + UPDATE_REASONS:
        raise ValueError(f"not a documented rewrite of the append-only tables: {reason!r}")
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT set_config(:name, :reason, true)"), {"name": REWRITE_SETTING, "reason": reason})


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def table_trigger_ddl(table: str) -> list[str]:
    """The append-only trigger of one table (the function comes from schema version 5)."""
    return [f"DROP TRIGGER IF EXISTS unionwh_append_only ON {table}",
            f"CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {OPS_SCHEMA}.refuse_rewrite()"]


def postgresql_ddl() -> list[str]:
    """Schema version 5 on PostgreSQL: the trigger functions and a trigger per table."""
    reason = f"coalesce(current_setting('{REWRITE_SETTING}', true), '')"
    refuse = f"""CREATE OR REPLACE FUNCTION {OPS_SCHEMA}.refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' AND {reason} IN ({_quoted(DELETE_REASONS)}))
     OR (TG_OP = 'UPDATE' AND {reason} IN ({_quoted(UPDATE_REASONS)})) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = 'unionwh: ' || TG_TABLE_SCHEMA || '.'
    || TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused (corrections arrive as new rows; '
    || 'the documented rewrites: flows/warehouse/appendonly.py)';
END $$"""
    runs = f"""CREATE OR REPLACE FUNCTION {OPS_SCHEMA}.refuse_finished_run_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.status = 'running' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = 'unionwh: ops.runs: ' || TG_OP
    || ' of run ' || coalesce(OLD.run_id, '') || ' refused (a finished run''s row never changes; '
    || 'rows are never deleted)';
END $$"""
    out = [refuse, runs]
    for table in append_only_tables():
        if table.split(".", 1)[1] not in OPS_APPEND_ONLY_V6:  # (not there yet at version 5)
            out += table_trigger_ddl(table)
    out += [f"DROP TRIGGER IF EXISTS unionwh_finished_run ON {RUNS}",
            f"CREATE TRIGGER unionwh_finished_run BEFORE UPDATE OR DELETE ON {RUNS} "
            f"FOR EACH ROW EXECUTE FUNCTION {OPS_SCHEMA}.refuse_finished_run_update()",
            f"DROP TRIGGER IF EXISTS unionwh_no_truncate ON {RUNS}",
            f"CREATE TRIGGER unionwh_no_truncate BEFORE TRUNCATE ON {RUNS} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {OPS_SCHEMA}.refuse_rewrite()"]
    return out
