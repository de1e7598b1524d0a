-- Erasure without breaking the audit chain (F13): the chain now covers keyed digests of the
-- account id and IP address (account_ref, ip_ref), so deleting an account can clear the raw
-- account_id and ip of its rows and the chain still verifies.
ALTER TABLE audit_log ADD COLUMN account_ref TEXT;
ALTER TABLE audit_log ADD COLUMN ip_ref TEXT;
