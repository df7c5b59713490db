-- unionwh schema migration 4.
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.
-- description:
--   ops.dbt_builds: what each dbt build selected, so a run rebuilds only what its new rows change

CREATE TABLE IF NOT EXISTS ops.dbt_builds (
  run_id VARCHAR NOT NULL,
  built_at TIMESTAMP NOT NULL,
  project_hash VARCHAR NOT NULL,
  loaded_through TIMESTAMP,
  selection VARCHAR NOT NULL,
  status VARCHAR NOT NULL
);
