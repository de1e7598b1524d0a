-- Single sign-on between partners with asserted_login_identity (Federation spec Table 1).
-- Every ID token issued is recorded by its jti, so partner 2 can name partner 1's ID token in
-- an assertion's "code" claim. Times are unix ms, except auth_time: unix seconds, as in grants.
CREATE TABLE id_tokens (
    jti             TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    vot             TEXT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX id_tokens_account ON id_tokens (account_id);

-- The (iss, jti) of every asserted_login_identity accepted: each may be used once. A row
-- lives until its assertion expires.
CREATE TABLE asserted_identity_jtis (
    issuer          TEXT NOT NULL,
    jti             TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
