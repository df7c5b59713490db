-- unionwh schema migration 6 (PostgreSQL only: run after 0006_dbt_node_results.sql).
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.dbt_node_results;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.dbt_node_results FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();
