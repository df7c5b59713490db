-- unionwh schema migration 1.
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.
-- description:
--   raw tables of the contract with lineage; ops load_ledger, quarantine, runs, watermarks

CREATE SCHEMA IF NOT EXISTS raw;

CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS raw.registry__enterprises (
  uscc VARCHAR,
  enterprise_name VARCHAR,
  zone VARCHAR,
  industry_section VARCHAR,
  employees BIGINT,
  tags VARCHAR,
  registered_on DATE,
  updated_at TIMESTAMP,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.registry__unions (
  union_code VARCHAR,
  union_name VARCHAR,
  union_form VARCHAR,
  uscc VARCHAR,
  founded_on DATE,
  has_party_org BOOLEAN,
  status VARCHAR,
  revoked_on DATE,
  updated_at TIMESTAMP,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.registry__coverage (
  union_code VARCHAR,
  uscc VARCHAR,
  start_on DATE,
  end_on DATE,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.members__member (
  member_id BIGINT,
  id_card VARCHAR,
  name VARCHAR,
  phone VARCHAR,
  union_code VARCHAR,
  employment_form VARCHAR,
  is_migrant BOOLEAN,
  is_veteran BOOLEAN,
  joined_on DATE,
  updated_at TIMESTAMP,
  deleted_at TIMESTAMP,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.members__member_card (
  card_event_id BIGINT,
  member_id BIGINT,
  card_no VARCHAR,
  action VARCHAR,
  action_on DATE,
  updated_at TIMESTAMP,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.welfare__condolence (
  station_code VARCHAR,
  ledger_month VARCHAR,
  visit_date DATE,
  program VARCHAR,
  recipient_category VARCHAR,
  name VARCHAR,
  id_card VARCHAR,
  union_code VARCHAR,
  form VARCHAR,
  amount_yuan DECIMAL(18, 2),
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.welfare__health_checks (
  station_code VARCHAR,
  ledger_month VARCHAR,
  check_date DATE,
  name VARCHAR,
  id_card VARCHAR,
  recipient_category VARCHAR,
  provider VARCHAR,
  fee_yuan DECIMAL(18, 2),
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.welfare__relief (
  station_code VARCHAR,
  ledger_month VARCHAR,
  relief_date DATE,
  name VARCHAR,
  id_card VARCHAR,
  relief_category VARCHAR,
  amount_yuan DECIMAL(18, 2),
  approval_no VARCHAR,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.training__sessions (
  session_id VARCHAR,
  title VARCHAR,
  mode VARCHAR,
  start_date DATE,
  end_date DATE,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.training__attendance (
  session_id VARCHAR,
  id_card VARCHAR,
  name VARCHAR,
  union_code VARCHAR,
  registered BOOLEAN,
  attended BOOLEAN,
  replay_views BIGINT,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.training__competitions (
  competition_id VARCHAR,
  competition_name VARCHAR,
  level VARCHAR,
  role VARCHAR,
  start_date DATE,
  participants BIGINT,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.rights__cases (
  case_no VARCHAR,
  case_type VARCHAR,
  received_on DATE,
  uscc VARCHAR,
  worker_id_card VARCHAR,
  mediation_result VARCHAR,
  closed_on DATE,
  recovered_yuan DECIMAL(18, 2),
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.rights__bargaining (
  uscc VARCHAR,
  year BIGINT,
  bargained BOOLEAN,
  evaluated BOOLEAN,
  mechanism_established BOOLEAN,
  wage_agreement_signed BOOLEAN,
  agreement_signed_on DATE,
  entered_on DATE,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.finance__vouchers (
  voucher_no VARCHAR,
  line_no BIGINT,
  posted_on DATE,
  account_code VARCHAR,
  account_name VARCHAR,
  summary VARCHAR,
  debit_yuan DECIMAL(18, 2),
  credit_yuan DECIMAL(18, 2),
  project_code VARCHAR,
  payee_code VARCHAR,
  approval_no VARCHAR,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.finance__budget (
  year BIGINT,
  project_code VARCHAR,
  project_name VARCHAR,
  budget_yuan DECIMAL(18, 2),
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.events__activities (
  activity_id VARCHAR,
  activity_name VARCHAR,
  category VARCHAR,
  activity_date DATE,
  participation VARCHAR,
  participants BIGINT,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.events__honours (
  honour_id VARCHAR,
  year BIGINT,
  honour VARCHAR,
  level VARCHAR,
  recipient VARCHAR,
  _load_id VARCHAR NOT NULL,
  _source VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL,
  _row_number BIGINT NOT NULL
);

-- One row per welfare workbook that loaded: the newest (station, month) workbook replaces every
-- earlier one, even for sheets where it now has no rows.
CREATE TABLE IF NOT EXISTS raw.welfare__workbooks (
  station_code VARCHAR NOT NULL,
  ledger_month VARCHAR NOT NULL,
  _load_id VARCHAR NOT NULL,
  _file_name VARCHAR NOT NULL,
  _file_sha256 VARCHAR NOT NULL,
  _delivery_date DATE NOT NULL
);

-- One row per (file, table) a run looked at. status: loaded | rejected.
CREATE TABLE IF NOT EXISTS ops.load_ledger (
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
);

-- One row per rejected source row: its key as the contract defines it (|-joined canonical values;
-- station|month for a welfare ledger row), every rule it broke (;-joined ids), the reasons in English
-- and Chinese, and its values as JSON.
CREATE TABLE IF NOT EXISTS ops.quarantine (
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
);

CREATE TABLE IF NOT EXISTS ops.runs (
  run_id VARCHAR NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  status VARCHAR NOT NULL,
  message VARCHAR
);

CREATE TABLE IF NOT EXISTS ops.watermarks (
  source VARCHAR NOT NULL,
  table_name VARCHAR NOT NULL,
  watermark TIMESTAMP NOT NULL,
  load_id VARCHAR NOT NULL
);
