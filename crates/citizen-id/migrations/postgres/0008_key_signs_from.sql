-- When a signing key starts to sign. A rotation publishes the new key in JWKS a while before it
-- signs, so that every instance (each reloads its keys every few seconds) and every partner
-- refreshing its JWKS cache knows it before the first token it signs arrives.
ALTER TABLE signing_keys ADD COLUMN signs_from BIGINT;
UPDATE signing_keys SET signs_from = created_at;
