-- unionwh schema migration 6.
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.
-- description:
--   ops.dbt_node_results: every dbt node's result per build, so the summary states each test's latest
--   result whichever build ran it (append-only)

CREATE TABLE IF NOT EXISTS ops.dbt_node_results (
  run_id VARCHAR NOT NULL,
  unique_id VARCHAR NOT NULL,
  resource_type VARCHAR NOT NULL,
  status VARCHAR NOT NULL,
  failures BIGINT,
  project_hash VARCHAR NOT NULL,
  built_at TIMESTAMP NOT NULL
);
