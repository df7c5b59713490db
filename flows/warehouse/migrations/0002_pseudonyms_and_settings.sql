-- unionwh schema migration 2.
-- Released: never edit this file (tests/warehouse/test_migrations_frozen.py checks it against
-- CHECKSUMS). A change to the raw or ops tables is a new migration file; see
-- flows/warehouse/migrations.py.
-- description:
--   pseudonym columns for personal data in raw; ops.settings (key fingerprint)

ALTER TABLE raw.members__member ADD COLUMN IF NOT EXISTS id_card_pseudonym VARCHAR;

ALTER TABLE raw.members__member ADD COLUMN IF NOT EXISTS name_pseudonym VARCHAR;

ALTER TABLE raw.members__member ADD COLUMN IF NOT EXISTS phone_pseudonym VARCHAR;

ALTER TABLE raw.welfare__condolence ADD COLUMN IF NOT EXISTS name_pseudonym VARCHAR;

ALTER TABLE raw.welfare__condolence ADD COLUMN IF NOT EXISTS id_card_pseudonym VARCHAR;

ALTER TABLE raw.welfare__health_checks ADD COLUMN IF NOT EXISTS name_pseudonym VARCHAR;

ALTER TABLE raw.welfare__health_checks ADD COLUMN IF NOT EXISTS id_card_pseudonym VARCHAR;

ALTER TABLE raw.welfare__relief ADD COLUMN IF NOT EXISTS name_pseudonym VARCHAR;

ALTER TABLE raw.welfare__relief ADD COLUMN IF NOT EXISTS id_card_pseudonym VARCHAR;

ALTER TABLE raw.training__attendance ADD COLUMN IF NOT EXISTS id_card_pseudonym VARCHAR;

ALTER TABLE raw.training__attendance ADD COLUMN IF NOT EXISTS name_pseudonym VARCHAR;

ALTER TABLE raw.rights__cases ADD COLUMN IF NOT EXISTS worker_id_card_pseudonym VARCHAR;

ALTER TABLE raw.events__honours ADD COLUMN IF NOT EXISTS recipient_pseudonym VARCHAR;

-- Facts about the warehouse itself, e.g. the fingerprint of its pseudonymisation key.
CREATE TABLE IF NOT EXISTS ops.settings (
  name VARCHAR NOT NULL,
  value VARCHAR NOT NULL
);
