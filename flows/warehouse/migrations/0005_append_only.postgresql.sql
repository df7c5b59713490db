-- unionwh schema migration 5 (PostgreSQL only: run after 0005_append_only.sql).
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.

CREATE OR REPLACE FUNCTION ops.refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' AND coalesce(current_setting('unionwh.rewrite', true), '') IN ('full-refresh'))
     OR (TG_OP = 'UPDATE' AND coalesce(current_setting('unionwh.rewrite', true), '') IN ('rotate-key', 'pseudonym-backfill')) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = 'unionwh: ' || TG_TABLE_SCHEMA || '.'
    || TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused (corrections arrive as new rows; '
    || 'the documented rewrites: flows/warehouse/appendonly.py)';
END $$;

CREATE OR REPLACE FUNCTION ops.refuse_finished_run_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.status = 'running' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE = 'unionwh: ops.runs: ' || TG_OP
    || ' of run ' || coalesce(OLD.run_id, '') || ' refused (a finished run''s row never changes; '
    || 'rows are never deleted)';
END $$;

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.registry__enterprises;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.registry__enterprises FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.registry__unions;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.registry__unions FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.registry__coverage;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.registry__coverage FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.members__member;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.members__member FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.members__member_card;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.members__member_card FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.welfare__condolence;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.welfare__condolence FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.welfare__health_checks;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.welfare__health_checks FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.welfare__relief;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.welfare__relief FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.training__sessions;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.training__sessions FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.training__attendance;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.training__attendance FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.training__competitions;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.training__competitions FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.rights__cases;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.rights__cases FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.rights__bargaining;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.rights__bargaining FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.finance__vouchers;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.finance__vouchers FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.finance__budget;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.finance__budget FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.events__activities;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.events__activities FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.events__honours;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.events__honours FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON raw.welfare__workbooks;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON raw.welfare__workbooks FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.load_ledger;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.load_ledger FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.quarantine;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.quarantine FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.run_sources;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.run_sources FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.figure_values;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.figure_values FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.figure_changes;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.figure_changes FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.dbt_builds;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.dbt_builds FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_append_only ON ops.schema_migrations;

CREATE TRIGGER unionwh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ops.schema_migrations FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();

DROP TRIGGER IF EXISTS unionwh_finished_run ON ops.runs;

CREATE TRIGGER unionwh_finished_run BEFORE UPDATE OR DELETE ON ops.runs FOR EACH ROW EXECUTE FUNCTION ops.refuse_finished_run_update();

DROP TRIGGER IF EXISTS unionwh_no_truncate ON ops.runs;

CREATE TRIGGER unionwh_no_truncate BEFORE TRUNCATE ON ops.runs FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_rewrite();
