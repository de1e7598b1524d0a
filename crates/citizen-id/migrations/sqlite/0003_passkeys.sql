-- Passkeys (F9, the `Cm` credential): FIDO2/WebAuthn public-key credentials, and the state of
-- WebAuthn ceremonies in progress. Times are unix ms; flags are BIGINT 0/1 (SQLite BOOLEAN
-- does not decode through sqlx Any).

-- One row per registered passkey. `credential` is webauthn-rs's serialised `Passkey` (the
-- public key, the signature counter and the backup flags it checks on each use); the counter
-- and flags are also kept as columns so they can be read and audited without parsing it.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,          -- the credential id, base64url without padding
    account_id      TEXT NOT NULL,
    name            TEXT NOT NULL,             -- the citizen's label, e.g. "My phone"
    credential      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    sign_count      BIGINT NOT NULL DEFAULT 0,
    backup_eligible BIGINT NOT NULL DEFAULT 0,
    backup_state    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_account ON passkeys (account_id);

-- A registration or authentication ceremony between its start and its finish. The browser's
-- session holds a random id; only its SHA-256 is stored. A row is consumed by one
-- DELETE ... RETURNING (single use) and is worthless after `expires_at` (5 minutes).
CREATE TABLE webauthn_ceremonies (
    id_hash         TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,             -- register, signin, signin_account
    account_id      TEXT,                      -- whose ceremony; NULL for usernameless sign-in
    state           TEXT NOT NULL,             -- webauthn-rs ceremony state, JSON
    expires_at      BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
