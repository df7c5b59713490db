-- unionwh schema migration 5.
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.
-- description:
--   append-only raw and ledger tables: PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE unless the
--   transaction names a documented rewrite (full-refresh, rotate-key, pseudonym-backfill)

-- DuckDB: nothing to create (no triggers): the code only appends, and
-- tests/warehouse/test_append_only.py proves it. PostgreSQL: see the .postgresql.sql file.
