-- The ID token a code's redemption issues is recorded on the code row itself: its jti is chosen
-- when the code is made and its expiry set by the redemption, so the token endpoint writes one
-- row fewer per exchange. A consumed code is kept until that ID token expires (which also keeps
-- a replayed code recognisable for longer).
ALTER TABLE authorization_codes ADD COLUMN id_token_jti TEXT;
ALTER TABLE authorization_codes ADD COLUMN id_token_expires_at BIGINT;
UPDATE authorization_codes SET id_token_jti = md5(random()::text || code_hash) WHERE id_token_jti IS NULL;
CREATE UNIQUE INDEX authorization_codes_id_token_jti ON authorization_codes (id_token_jti);

-- ID tokens issued before this migration were recorded here; single sign-on with one of them
-- (an asserted_login_identity naming it) now needs a fresh sign-in.
DROP TABLE id_tokens;
