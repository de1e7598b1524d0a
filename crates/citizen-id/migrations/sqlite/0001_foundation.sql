-- Citizen ID foundation schema (SQLite). Times are unix milliseconds (BIGINT), flags 0/1 (BIGINT),
-- ids TEXT: the portable subset that sqlx's Any driver maps on both backends.
-- Keep in step with ../postgres/0001_foundation.sql (a test compares the two).

CREATE TABLE partners (
    client_id       TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    redirect_uris   TEXT NOT NULL,   -- JSON array of exact URIs
    public_keys     TEXT NOT NULL,   -- JSON array of RSA public JWKs
    scopes          TEXT NOT NULL,   -- space separated
    vectors         TEXT NOT NULL,   -- JSON array of permitted vectors of trust
    refresh_tokens  BIGINT NOT NULL,
    im1             BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    private_key     TEXT NOT NULL,   -- PKCS#8, sealed with the key-encryption key
    public_jwk      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,          -- stops signing
    publish_until   BIGINT           -- leaves JWKS once every token it signed has expired
);

CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,          -- the OIDC `sub`, random, never reassigned
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT,
    mobile          TEXT,
    proofing_level  TEXT NOT NULL,
    nhs_number      TEXT UNIQUE,
    family_name     TEXT,
    given_name      TEXT,
    birthdate       TEXT,
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_sign_in_at BIGINT
);
CREATE INDEX accounts_mobile ON accounts (mobile);

CREATE TABLE sessions (
    id_hash         TEXT PRIMARY KEY,          -- SHA-256 of the cookie value
    data            TEXT NOT NULL,
    account_id      TEXT,
    created_at      BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE one_time_codes (
    id              TEXT PRIMARY KEY,
    purpose         TEXT NOT NULL,
    subject         TEXT NOT NULL,             -- who may use it: a session or an account
    code_hash       TEXT NOT NULL,             -- HMAC-SHA256 under the server pepper
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    consumed_at     BIGINT
);
CREATE INDEX one_time_codes_subject ON one_time_codes (subject, purpose);

CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    scope           TEXT NOT NULL,
    vot             TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX grants_account ON grants (account_id, client_id);

CREATE TABLE authorization_codes (
    code_hash       TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    code_challenge  TEXT,
    expires_at      BIGINT NOT NULL,
    consumed_at     BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL,
    scope           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

CREATE TABLE client_assertions (
    client_id       TEXT NOT NULL,
    jti             TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE consents (
    account_id      TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    scope           TEXT NOT NULL,
    granted_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);

CREATE TABLE client_user_metadata (
    account_id      TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    value           TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);

CREATE TABLE remembered_devices (
    token_hash      TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX remembered_devices_account ON remembered_devices (account_id);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    template        TEXT NOT NULL,
    sealed_message  TEXT,                      -- recipient and personalisation, sealed; cleared once sent
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    sent_at         BIGINT,
    failed_at       BIGINT,
    provider        TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (sent_at, failed_at, next_attempt_at);

CREATE TABLE rate_limits (
    bucket          TEXT PRIMARY KEY,
    window_start    BIGINT NOT NULL,
    hits            BIGINT NOT NULL
);

CREATE TABLE audit_log (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              BIGINT NOT NULL,
    event           TEXT NOT NULL,
    account_id      TEXT,
    client_id       TEXT,
    ip              TEXT,
    detail          TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
