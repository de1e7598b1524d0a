-- Identity proofing (F6): the demographics PDS confirmed, the GP details, and the sticky
-- phone_number_pds_matched flag. GP online credentials are sealed (reversible secrets).
ALTER TABLE accounts ADD COLUMN middle_names TEXT;
ALTER TABLE accounts ADD COLUMN postcode TEXT;
ALTER TABLE accounts ADD COLUMN gp_ods_code TEXT;
ALTER TABLE accounts ADD COLUMN landline TEXT;
ALTER TABLE accounts ADD COLUMN phone_pds_matched BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN gp_credentials TEXT;
ALTER TABLE accounts ADD COLUMN pds_version TEXT;
