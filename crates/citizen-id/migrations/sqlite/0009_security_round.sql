-- SSO pairing: the partners whose asserted_login_identity this partner accepts (a JSON array of
-- client ids). Empty by default: single sign-on between two partners is set up by the operator.
ALTER TABLE partners ADD COLUMN sso_from TEXT NOT NULL DEFAULT '[]';

-- Wrong passwords, counted per email address (known or not, so the count tells nobody which
-- exist) and per email address and client IP. Keys are HMACs under the server pepper: no
-- email or IP address is stored. See accounts::throttle for the rules.
CREATE TABLE password_failures (
    counter_key     TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL
);
