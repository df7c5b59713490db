-- unionwh schema migration 3.
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.
-- description:
--   run ledger: counts and dbt results on ops.runs; ops.run_sources, figure_values, figure_changes

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS files_loaded BIGINT;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS files_rejected BIGINT;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS files_unchanged BIGINT;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS rows_read BIGINT;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS rows_loaded BIGINT;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS rows_quarantined BIGINT;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS dbt_results VARCHAR;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS figures_changed BIGINT;

ALTER TABLE ops.runs ADD COLUMN IF NOT EXISTS phase_seconds VARCHAR;

CREATE TABLE IF NOT EXISTS ops.run_sources (
  run_id VARCHAR NOT NULL,
  source VARCHAR NOT NULL,
  files_loaded BIGINT NOT NULL,
  files_rejected BIGINT NOT NULL,
  rows_read BIGINT NOT NULL,
  rows_loaded BIGINT NOT NULL,
  rows_quarantined BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS ops.figure_values (
  run_id VARCHAR NOT NULL,
  recorded_at TIMESTAMP NOT NULL,
  figure_id VARCHAR NOT NULL,
  report_year INTEGER NOT NULL,
  value DECIMAL(24, 6) NOT NULL
);

CREATE TABLE IF NOT EXISTS ops.figure_changes (
  run_id VARCHAR NOT NULL,
  previous_run_id VARCHAR,
  figure_id VARCHAR NOT NULL,
  report_year INTEGER NOT NULL,
  old_value DECIMAL(24, 6),
  new_value DECIMAL(24, 6)
);
