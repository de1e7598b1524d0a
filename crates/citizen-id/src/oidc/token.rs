//! The token endpoint (Federation spec 3.5; OIDC Core 3.1.3; RFC 6749 4.1.3 and 6) and the
//! tokens it issues (spec 4.2 ID token, 4.3 access token, 4.4 lifetimes).
//!
//! The request is a serde-tagged enum matched exhaustively: one arm per grant type. Each arm
//! authenticates the partner first (spec 7.2, `client_auth`), then consumes its grant atomically
//! in the store, then checks what binds the grant to this request, then signs.

use std::borrow::Cow;

use domain::ScopeSet;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::claims;
use super::client_auth::{AuthenticatedClient, assertion_replayed, authenticate_client};
use super::error::{ErrorCode, OAuthError};
use crate::clock;
use crate::config::Settings;
use crate::crypto::{b64url, constant_time_eq, random_token, secret_key, time_ordered_token};
use crate::state::AppState;
use crate::store::accounts::Subject;
use crate::store::audit::AuditEvent;
use crate::store::grants::{CodeRedemption, GrantRecord, NewRefreshToken, RedeemedCode, RefreshRotation};
use crate::store::partners::PartnerRecord;
use crate::store::StoreError;

/// The successful token response (spec 3.5.3.1 Table 8).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl TokenResponse {
    /// The response body. Tokens are base64url with dots and the scope is scope names and
    /// spaces, none of which JSON escapes: such a body is written as it is, without serde_json's
    /// byte-by-byte escaping pass over its three kilobytes. Anything else goes through serde_json.
    pub fn to_json(&self) -> String {
        // Every byte of both tokens is checked: a fold without an early exit, which the compiler
        // turns into vector compares (measured over 3 KB: 0.2 µs, against 1.1 µs for `all` with
        // the same test and 0.7 µs for a lookup table).
        let plain = |v: &str| {
            v.bytes().fold(true, |ok, b| ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_') | (b == b'.') | (b == b' ')))
        };
        let values = [Some(&self.access_token), self.id_token.as_ref(), self.refresh_token.as_ref(), Some(&self.scope)];
        if !plain(self.token_type) || !values.iter().flatten().all(|v| plain(v)) {
            return serde_json::to_string(self).expect("a token response serialises");
        }
        let mut out = String::with_capacity(values.iter().flatten().map(|v| v.len() + 20).sum::<usize>() + 64);
        let mut field = |name: &str, value: &str, quoted: bool| {
            out.push_str(if out.is_empty() { "{\"" } else { ",\"" });
            out.push_str(name);
            out.push_str(if quoted { "\":\"" } else { "\":" });
            out.push_str(value);
            if quoted {
                out.push('"');
            }
        };
        field("access_token", &self.access_token, true);
        field("token_type", self.token_type, true);
        field("expires_in", &self.expires_in.to_string(), false);
        if let Some(id) = &self.id_token {
            field("id_token", id, true);
        }
        if let Some(refresh) = &self.refresh_token {
            field("refresh_token", refresh, true);
        }
        field("scope", &self.scope, true);
        out.push('}');
        out
    }
}

/// Client authentication parameters (spec Table 6), common to every grant.
#[derive(Debug)]
struct ClientCredentials {
    client_id: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// A token request (spec Table 6), one variant per supported `grant_type`.
#[derive(Debug)]
enum TokenRequest {
    AuthorizationCode { code: String, redirect_uri: String, code_verifier: Option<String>, client: ClientCredentials },
    RefreshToken { refresh_token: String, scope: Option<String>, client: ClientCredentials },
}

fn invalid_request(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

fn server_error(detail: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(%detail, "token endpoint internal error");
    OAuthError::new(ErrorCode::ServerError, "An unexpected error occurred")
}

/// Storage failures become `temporarily_unavailable` (the web layer answers 503) when the
/// database is down, `server_error` (500) otherwise. The detail is logged, never sent.
impl From<StoreError> for OAuthError {
    fn from(err: StoreError) -> OAuthError {
        match err {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                OAuthError::new(ErrorCode::TemporarilyUnavailable, "The service is temporarily unavailable; try again shortly")
            }
            other => server_error(other),
        }
    }
}

/// The vector trust mark URL (spec 5.1.4-5.1.5): `{issuer}/trustmark/{issuer host}`.
///
/// Every token carries it, so the last one made is kept (the issuer never changes in a running
/// server; the tests' servers have several, hence the check).
pub fn vtm(settings: &Settings) -> String {
    static LAST: std::sync::RwLock<Option<(String, String)>> = std::sync::RwLock::new(None);
    if let Some((issuer, vtm)) = LAST.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
        && *issuer == settings.issuer
    {
        return vtm.clone();
    }
    let vtm = format!("{}/trustmark/{}", settings.issuer, issuer_host(&settings.issuer));
    *LAST.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((settings.issuer.clone(), vtm.clone()));
    vtm
}

/// The host part of the issuer URL (what `/trustmark/{host}` answers for).
pub fn issuer_host(issuer: &str) -> String {
    url::Url::parse(issuer).ok().and_then(|u| u.host_str().map(String::from)).unwrap_or_default()
}

/// Handles one token request given as raw form pairs (so repeats can be seen).
pub async fn exchange(state: &AppState, form: Vec<(String, String)>) -> Result<TokenResponse, OAuthError> {
    let token_endpoint = state.settings.endpoint("/token");
    match parse_request(form)? {
        TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier, client } => {
            // The assertion's jti is recorded with the code's redemption (one round trip).
            let client = authenticate(state, &client, &token_endpoint).await?;
            authorization_code_grant(state, &client, &code, &redirect_uri, code_verifier.as_deref()).await
        }
        TokenRequest::RefreshToken { refresh_token, scope, client } => {
            // The jti is recorded with the rotation (one transaction).
            let client = authenticate(state, &client, &token_endpoint).await?;
            refresh_token_grant(state, &client, &refresh_token, scope.as_deref()).await
        }
    }
}

async fn authenticate(state: &AppState, c: &ClientCredentials, token_endpoint: &str) -> Result<AuthenticatedClient, OAuthError> {
    authenticate_client(state, c.client_id.as_deref(), c.client_assertion_type.as_deref(), c.client_assertion.as_deref(), token_endpoint)
        .await
}

/// RFC 6749 3.1: parameters without a value count as omitted, a repeated parameter is
/// `invalid_request`, unknown parameters are ignored. Table 10: a missing `grant_type` is
/// `invalid_request`, an unknown one `unsupported_grant_type`.
fn parse_request(form: Vec<(String, String)>) -> Result<TokenRequest, OAuthError> {
    // The parameters the grants read, by position in `KNOWN`; other names are only checked for
    // repeats. Read straight into slots: this runs on every token request.
    const KNOWN: [&str; 9] =
        ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id", "client_assertion_type", "client_assertion"];
    let mut slots: [Option<String>; 9] = Default::default();
    let mut seen = [false; 9];
    // A set, not a list: a body may carry thousands of unknown names, and a list would make
    // the repeat check quadratic in them.
    let mut others: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (name, value) in form {
        // Kept while reading, so that a repeat of an empty parameter is still seen.
        let repeated = match KNOWN.iter().position(|k| *k == name) {
            Some(i) => {
                let again = std::mem::replace(&mut seen[i], true);
                slots[i] = Some(value).filter(|v| !v.is_empty());
                again
            }
            None => !others.insert(name.clone()),
        };
        if repeated {
            // Echo only names that are plainly parameter names (RFC 6749 5.2: ASCII descriptions).
            let shown = name.len() <= 40 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            return Err(invalid_request(if shown { format!("The {name} parameter is repeated") } else { "A parameter is repeated".into() }));
        }
    }
    let [grant_type, code, redirect_uri, code_verifier, refresh_token, scope, client_id, client_assertion_type, client_assertion] = slots;
    let required = |value: Option<String>, name: &str| value.ok_or_else(|| invalid_request(format!("The token request is incomplete: missing field `{name}`")));
    let client = ClientCredentials { client_id, client_assertion_type, client_assertion };
    match grant_type.as_deref() {
        None => Err(invalid_request("The grant_type parameter is required")),
        Some("authorization_code") => Ok(TokenRequest::AuthorizationCode {
            code: required(code, "code")?,
            redirect_uri: required(redirect_uri, "redirect_uri")?,
            code_verifier,
            client,
        }),
        Some("refresh_token") => Ok(TokenRequest::RefreshToken { refresh_token: required(refresh_token, "refresh_token")?, scope, client }),
        Some(_) => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "grant_type must be authorization_code or refresh_token")),
    }
}

/// OIDC Core 3.1.3.2 / RFC 6749 4.1.3.
async fn authorization_code_grant(
    state: &AppState,
    client: &AuthenticatedClient,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let partner = &client.partner;
    let now = clock::now_ms();
    let id_token_expires_at = expiry_secs(now, state.settings.lifetimes.id_token) * 1000;
    // The first refresh token is stored with the redemption itself (one round trip).
    let fresh = partner.refresh_tokens.then(|| FreshRefreshToken::new(state, now));
    let first_refresh = fresh.as_ref().map(|f| NewRefreshToken { token_hash: &f.hash, expires_at: f.expires_at });
    let redeemed = match state.db.redeem_code(&secret_key(code), now, id_token_expires_at, &client.assertion, first_refresh).await? {
        CodeRedemption::Redeemed(r) => r,
        // Spec Table 3: a code used twice is denied; the store has revoked its grant
        // (RFC 6749 4.1.2: "SHOULD revoke ... all tokens previously issued based on that code").
        CodeRedemption::Replayed => {
            audit(state, "token.code_replayed", None, partner, json!({ "grant_type": "authorization_code" }), now).await?;
            return Err(invalid_grant("The authorization code has already been used"));
        }
        CodeRedemption::Invalid => return Err(invalid_grant("The authorization code is invalid or has expired")),
        CodeRedemption::AssertionReplayed => return Err(assertion_replayed()),
    };
    if let Err(e) = check_code_binding(&redeemed, partner, redirect_uri, code_verifier) {
        // The code was stolen or injected: nothing may come of its grant.
        state.db.revoke_grant(&redeemed.grant.id, now).await?;
        return Err(e);
    }
    let grant = &redeemed.grant;
    let account = &redeemed.subject;
    let scopes = ScopeSet::parse(&grant.scope).map_err(|e| server_error(format!("stored grant scope: {e}")))?;
    let access_token = sign(state, &access_token_claims(&state.settings, grant, account, &scopes, now))?;
    // The ID token's jti and expiry are recorded on the code row (for single sign-on by
    // asserted_login_identity, `oidc::asserted_identity`); nothing more to write for it.
    let id_claims = id_token_claims(&state.settings, grant, account, &scopes, &redeemed.nonce, &redeemed.id_token_jti, now);
    let id_token = sign(state, &id_claims)?;
    // Routine issuance is not an audit event: the grant, ID token and refresh token rows record
    // it durably already, and the hash-chained audit write is the costliest statement of the
    // exchange. Sign-ins, replays and reuse (the security events) are audited.
    Ok(response(state, access_token, Some(id_token), fresh.map(|f| f.token), &scopes))
}

/// What binds a code to this request: the client it was issued to (RFC 6749 4.1.3), the
/// `redirect_uri` of the authorize request (spec Table 6) and the PKCE challenge (RFC 7636 4.6;
/// a verifier for a code issued without a challenge is refused, RFC 9700 2.1.1). All
/// `invalid_grant` (spec Table 10).
fn check_code_binding(
    redeemed: &RedeemedCode,
    partner: &PartnerRecord,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Result<(), OAuthError> {
    if redeemed.client_id != partner.client_id || redeemed.grant.client_id != partner.client_id {
        return Err(invalid_grant("The authorization code was issued to another client"));
    }
    if redeemed.redirect_uri != redirect_uri {
        return Err(invalid_grant("redirect_uri does not match the authorization request"));
    }
    match (redeemed.code_challenge.as_deref(), code_verifier) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(invalid_grant("code_verifier is required for this authorization code")),
        (None, Some(_)) => Err(invalid_grant("code_verifier was sent but the authorization request had no code_challenge")),
        (Some(challenge), Some(verifier)) => {
            // RFC 7636 4.1: 43-128 unreserved characters.
            let shaped = (43..=128).contains(&verifier.len())
                && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if shaped && constant_time_eq(&pkce_s256(verifier), challenge) {
                Ok(())
            } else {
                Err(invalid_grant("code_verifier does not match the code_challenge"))
            }
        }
    }
}

/// RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))).
pub fn pkce_s256(verifier: &str) -> String {
    b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// RFC 6749 6 with rotation (RFC 9700 4.14.2): the old token is spent, a new one issued, and a
/// spent token coming back revokes the whole family. No ID token (spec Table 8).
async fn refresh_token_grant(
    state: &AppState,
    client: &AuthenticatedClient,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let partner = &client.partner;
    if !partner.refresh_tokens {
        let refused = OAuthError::new(ErrorCode::UnauthorizedClient, "This client is not registered for refresh tokens");
        return Err(refused_before_rotation(state, client, refused).await);
    }
    // Checked before the token is spent, so a malformed request does not cost the partner its
    // refresh token: the scope must parse and be within what the partner may ever hold.
    let requested = match scope.map(|s| requested_scope(s, partner)).transpose() {
        Ok(requested) => requested,
        Err(refused) => return Err(refused_before_rotation(state, client, refused).await),
    };
    let now = clock::now_ms();
    let token_hash = secret_key(refresh_token);
    // RFC 6749 6: the scope "MUST NOT include any scope not originally granted". That is
    // checked before the rotation too: refused after it, the partner would hold a spent token,
    // and its retry would be taken for a reuse that revokes the family (RFC 9700 4.14.2).
    // Only requests that name a scope pay for this read; a token that is not live here
    // (spent, expired, revoked, another partner's) is left to the rotation to answer.
    if let Some(wanted) = &requested
        && let Some(granted) = state.db.refresh_token_grant_scope(&token_hash, &partner.client_id, now).await?
    {
        let granted = ScopeSet::parse(&granted).map_err(|e| server_error(format!("stored grant scope: {e}")))?;
        if !wanted.is_subset_of(&granted) {
            return Err(refused_before_rotation(state, client, scope_not_granted()).await);
        }
    }
    let next = FreshRefreshToken::new(state, now);
    let new_token = NewRefreshToken { token_hash: &next.hash, expires_at: next.expires_at };
    let (grant, account) = match state.db.rotate_refresh_token(&token_hash, now, &client.assertion, new_token).await? {
        RefreshRotation::Rotated { grant, subject, .. } => (grant, subject),
        RefreshRotation::AssertionReplayed => return Err(assertion_replayed()),
        RefreshRotation::Reused => {
            audit(state, "token.refresh_reused", None, partner, json!({ "grant_type": "refresh_token" }), now).await?;
            return Err(invalid_grant("The refresh token has already been used; sign the user in again"));
        }
        RefreshRotation::Invalid => return Err(invalid_grant("The refresh token is invalid, expired or revoked")),
    };
    if grant.client_id != partner.client_id {
        // RFC 6749 10.4: a refresh token in the wrong hands; shut the family down.
        state.db.revoke_grant(&grant.id, now).await?;
        return Err(invalid_grant("The refresh token was issued to another client"));
    }
    let original = ScopeSet::parse(&grant.scope).map_err(|e| server_error(format!("stored grant scope: {e}")))?;
    // Spec Table 6: the scope must not exceed the authorization_code grant; omitted means equal.
    // (Checked above already; a grant's scope does not change between the two reads.)
    let scopes = match requested {
        None => original,
        Some(r) if r.is_subset_of(&original) => r,
        Some(_) => return Err(scope_not_granted()),
    };
    let access_token = sign(state, &access_token_claims(&state.settings, &grant, &account, &scopes, now))?;
    Ok(response(state, access_token, None, Some(next.token), &scopes))
}

fn scope_not_granted() -> OAuthError {
    OAuthError::new(ErrorCode::InvalidScope, "scope exceeds the scope originally granted")
}

/// A refresh request refused before its rotation (which records the client assertion's jti with
/// its writes) spends the assertion all the same: presented again, with any grant, it is a replay.
async fn refused_before_rotation(state: &AppState, client: &AuthenticatedClient, refused: OAuthError) -> OAuthError {
    match state.db.spend_assertion(&client.assertion).await {
        Ok(true) => refused,
        Ok(false) => assertion_replayed(),
        Err(e) => e.into(),
    }
}

/// A `scope` on a refresh request: `openid` required, no values we do not know, nothing the
/// partner is not registered for (spec Table 6, Table 10 `invalid_scope`).
fn requested_scope(value: &str, partner: &PartnerRecord) -> Result<ScopeSet, OAuthError> {
    let invalid = |d: &str| OAuthError::new(ErrorCode::InvalidScope, d);
    let set = ScopeSet::parse(value).map_err(|_| invalid("scope must include openid"))?;
    if !set.ignored().is_empty() {
        return Err(invalid("scope includes values that were not granted"));
    }
    if set.iter().any(|s| !partner.scopes.iter().any(|p| p == s.as_str())) {
        return Err(invalid("scope exceeds the scope originally granted"));
    }
    Ok(set)
}

/// A new refresh token (spec 4.4: 30 days), and the key (its hash) that is all the store keeps of it.
struct FreshRefreshToken {
    token: String,
    hash: String,
    expires_at: i64,
}

impl FreshRefreshToken {
    fn new(state: &AppState, now: i64) -> FreshRefreshToken {
        let token = time_ordered_token(now, 32);
        let hash = secret_key(&token);
        FreshRefreshToken { token, hash, expires_at: now + state.settings.lifetimes.refresh_token }
    }
}

fn sign(state: &AppState, claims: &impl Serialize) -> Result<String, OAuthError> {
    state.keys.sign(claims).map_err(server_error)
}

fn response(state: &AppState, access: String, id: Option<String>, refresh: Option<String>, scopes: &ScopeSet) -> TokenResponse {
    TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.settings.lifetimes.access_token / 1000,
        id_token: id,
        refresh_token: refresh,
        scope: scopes.as_string(),
    }
}

async fn audit(
    state: &AppState,
    event: &str,
    grant: Option<&GrantRecord>,
    partner: &PartnerRecord,
    detail: Value,
    now: i64,
) -> Result<(), OAuthError> {
    let e = AuditEvent { event, account_id: grant.map(|g| g.account_id.as_str()), client_id: Some(&partner.client_id), ip: None, ip_ref: None, detail };
    Ok(state.db.audit(e, now).await?)
}

/// A token's `exp` (unix seconds) when issued at `now_ms` for `lifetime_ms`.
fn expiry_secs(now_ms: i64, lifetime_ms: i64) -> i64 {
    now_ms / 1000 + lifetime_ms / 1000
}

/// Claims common to both tokens (spec Tables 16 and 17). JWT times are unix seconds;
/// `GrantRecord.auth_time` already is (it is copied from the session's `Authenticated`).
///
/// The token types are structs serialised in place rather than JSON maps: an exchange signs two
/// tokens, and building them as maps cost several dozen allocations per exchange.
#[derive(Debug, Serialize)]
pub struct BaseClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: Cow<'a, str>,
    auth_time: i64,
    vot: &'a str,
    vtm: String,
}

fn base_claims<'a>(
    settings: &'a Settings,
    grant: &'a GrantRecord,
    account: &'a Subject,
    jti: Cow<'a, str>,
    lifetime_ms: i64,
    now_ms: i64,
) -> BaseClaims<'a> {
    BaseClaims {
        iss: &settings.issuer,
        sub: &account.id,
        aud: &grant.client_id,
        exp: expiry_secs(now_ms, lifetime_ms),
        iat: now_ms / 1000,
        jti,
        auth_time: grant.auth_time,
        vot: &grant.vot,
        vtm: vtm(settings),
    }
}

/// Spec 4.3 Table 17, plus `sid` (the grant id) so UserInfo can refuse a revoked grant.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    #[serde(flatten)]
    base: BaseClaims<'a>,
    scope: String,
    sid: &'a str,
    /// Table 17: "if known ... subject to the profile scope being requested".
    #[serde(skip_serializing_if = "Option::is_none")]
    nhs_number: Option<&'a str>,
}

pub fn access_token_claims<'a>(
    settings: &'a Settings,
    grant: &'a GrantRecord,
    account: &'a Subject,
    scopes: &ScopeSet,
    now_ms: i64,
) -> AccessTokenClaims<'a> {
    AccessTokenClaims {
        base: base_claims(settings, grant, account, Cow::Owned(random_token(16)), settings.lifetimes.access_token, now_ms),
        scope: scopes.as_string(),
        sid: &grant.id,
        // (claims.rs releases nhs_number for the profile scope only, never basic_demographics.)
        nhs_number: claims::released_nhs_number(account, scopes),
    }
}

/// Spec 4.2 Table 16: identity_proofing_level always, the other user claims by scope. `jti` is
/// the one recorded with the authorization code.
#[derive(Debug, Serialize)]
pub struct IdTokenClaims<'a> {
    #[serde(flatten)]
    base: BaseClaims<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    nonce: &'a str,
    identity_proofing_level: &'static str,
    /// Table 16's other user claims the scopes release (never `identity_proofing_level` again).
    #[serde(flatten)]
    user: Map<String, Value>,
}

pub fn id_token_claims<'a>(
    settings: &'a Settings,
    grant: &'a GrantRecord,
    account: &'a Subject,
    scopes: &ScopeSet,
    nonce: &'a str,
    jti: &'a str,
    now_ms: i64,
) -> IdTokenClaims<'a> {
    let mut user = claims::id_token_claims(account, scopes);
    user.remove("identity_proofing_level");
    IdTokenClaims {
        base: base_claims(settings, grant, account, Cow::Borrowed(jti), settings.lifetimes.id_token, now_ms),
        nonce,
        identity_proofing_level: claims::level_of(&account.proofing_level).as_str(),
        user,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::oidc::client_auth::tests::{jwk_of, sign as sign_jws};
    use crate::store::grants::NewAuthorizationCode;
    use aws_lc_rs::rsa::{KeyPair, KeySize};

    pub(crate) const ISSUER: &str = "https://id.example";

    pub(crate) fn settings(database_url: String) -> Settings {
        Settings {
            mode: crate::config::Mode::Sandpit,
            issuer: ISSUER.into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url,
            key_encryption_secret: "k".repeat(40),
            notify_providers: vec![],
            trusted_proxies: Default::default(),
            metrics_listen: None,
            lifetimes: Default::default(),
            limits: Default::default(),
            test_code: None,
            pds_base_url: None,
            gp_base_url: None,
            key_refresh: crate::config::KEY_REFRESH,
        }
    }

    fn test_integrations() -> crate::state::Integrations {
        let (pds, gp) = crate::server::third_parties(None, None).unwrap();
        crate::state::Integrations { dev_sink: None, demo: None, pds, gp }
    }

    /// A running state over a fresh SQLite file, with partner "rp" (refresh tokens on) holding
    /// `key`'s public half, and a P0 citizen "acct-1".
    pub(crate) async fn fixture(key: &KeyPair) -> (AppState, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let state = AppState::build(settings(url), test_integrations()).await.unwrap();
        let partner = PartnerRecord {
            client_id: "rp".into(),
            name: "RP".into(),
            redirect_uris: vec!["https://rp.example/cb".into()],
            public_keys: vec![jwk_of(key, None)],
            scopes: vec!["openid".into(), "profile".into(), "email".into(), "client_metadata".into()],
            vectors: vec!["P0.Cp.Cd".into()],
            refresh_tokens: true,
            im1: false,
            sso_from: vec![],
            created_at: 0,
            updated_at: 0,
        };
        state.db.insert_partner(&partner).await.unwrap();
        let account = crate::store::accounts::NewAccount {
            id: "acct-1".into(),
            email: "jane@example.com".into(),
            password_hash: None,
            mobile: "+447700900123".into(),
            created_at: 0,
        };
        state.db.insert_account(&account).await.unwrap();
        (state, dir)
    }

    /// Creates a grant and returns its authorization code.
    pub(crate) async fn grant_code(state: &AppState, id: &str, scope: &str, challenge: Option<&str>) -> String {
        let now = clock::now_ms();
        let grant = GrantRecord {
            id: id.into(),
            account_id: "acct-1".into(),
            client_id: "rp".into(),
            scope: scope.into(),
            vot: "P0.Cp.Cd".into(),
            auth_time: now / 1000 - 5,
        };
        // Shaped and keyed as codes were before they carried a time prefix (the authorize
        // endpoint's codes take the other path of `secret_key` in the integration tests), so
        // every test that redeems one shows such codes still work.
        let code = random_token(32);
        let new = NewAuthorizationCode {
            code_hash: crate::crypto::sha256_hex(&code),
            client_id: "rp".into(),
            redirect_uri: "https://rp.example/cb".into(),
            nonce: "n-1".into(),
            code_challenge: challenge.map(String::from),
            expires_at: now + 600_000,
            id_token_jti: random_token(16),
        };
        state.db.insert_grant_with_code(&grant, &new, now).await.unwrap();
        code
    }

    pub(crate) fn assertion(key: &KeyPair, jti: &str) -> String {
        let now = clock::now_secs();
        let claims = json!({ "iss": "rp", "sub": "rp", "aud": format!("{ISSUER}/token"), "exp": now + 60, "iat": now, "jti": jti });
        sign_jws(key, json!({ "alg": "RS512", "typ": "JWT" }), &claims)
    }

    pub(crate) fn form(pairs: &[(&str, &str)], key: &KeyPair) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        f.push(("client_assertion_type".into(), crate::oidc::client_auth::JWT_BEARER.into()));
        f.push(("client_assertion".into(), assertion(key, &random_token(8))));
        f
    }

    fn code_form<'a>(code: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut f = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://rp.example/cb")];
        f.extend_from_slice(extra);
        f
    }

    fn err(r: Result<TokenResponse, OAuthError>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|e| e.code.as_str())
    }

    fn parse_code(form: &[(&str, &str)]) -> &'static str {
        let raw = form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse_request(raw).map(|_| "ok").unwrap_or_else(|e| e.code.as_str())
    }

    #[test]
    fn grant_type_is_required_and_must_be_supported() {
        assert_eq!(parse_code(&[("code", "c")]), "invalid_request");
        assert_eq!(parse_code(&[("grant_type", "")]), "invalid_request");
        assert_eq!(parse_code(&[("grant_type", "password")]), "unsupported_grant_type");
        assert_eq!(parse_code(&[("grant_type", "client_credentials")]), "unsupported_grant_type");
        assert_eq!(parse_code(&[("grant_type", "authorization_code"), ("code", "c")]), "invalid_request");
        assert_eq!(parse_code(&[("grant_type", "refresh_token")]), "invalid_request");
        assert_eq!(parse_code(&[("grant_type", "refresh_token"), ("refresh_token", "r"), ("extra", "x")]), "ok");
        assert_eq!(parse_code(&code_form("c", &[])), "ok");
        // An empty value counts as omitted (RFC 6749 3.1).
        assert_eq!(parse_code(&code_form("", &[])), "invalid_request");
        assert_eq!(parse_code(&[("grant_type", "authorization_code"), ("code", "c"), ("redirect_uri", "")]), "invalid_request");
        let missing = parse_request(vec![("grant_type".into(), "authorization_code".into()), ("code".into(), "c".into())]).unwrap_err();
        assert_eq!(missing.description, "The token request is incomplete: missing field `redirect_uri`");
        match parse_request(code_form("c", &[("code_verifier", "v"), ("client_id", "rp"), ("scope", "")]).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()) {
            Ok(TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier, client }) => {
                assert_eq!((code.as_str(), redirect_uri.as_str(), code_verifier.as_deref()), ("c", "https://rp.example/cb", Some("v")));
                assert_eq!((client.client_id.as_deref(), client.client_assertion.as_deref()), (Some("rp"), None));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_repeated_parameters() {
        assert_eq!(parse_code(&code_form("c", &[("code", "d")])), "invalid_request");
        assert_eq!(parse_code(&code_form("c", &[("grant_type", "authorization_code")])), "invalid_request");
        assert_eq!(parse_code(&code_form("c", &[("client_assertion", "a"), ("client_assertion", "a")])), "invalid_request");
        // Empty or unknown, a repeat is still a repeat.
        assert_eq!(parse_code(&code_form("c", &[("code_verifier", ""), ("code_verifier", "")])), "invalid_request");
        assert_eq!(parse_code(&code_form("c", &[("extra", "1"), ("extra", "2")])), "invalid_request");
        assert_eq!(parse_code(&code_form("c", &[("extra", "1"), ("other", "2")])), "ok");
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn trust_mark_is_under_the_issuer() {
        let s = settings(String::new());
        assert_eq!(vtm(&s), "https://id.example/trustmark/id.example");
        assert_eq!(issuer_host("http://localhost:8080"), "localhost");
    }

    #[test]
    fn token_claims_follow_tables_16_and_17() {
        let s = settings(String::new());
        let grant = claims_grant();
        let mut account = Subject {
            id: "a1".into(),
            email: "jane@example.com".into(),
            mobile: None,
            proofing_level: "P9".into(),
            nhs_number: Some("9000000009".into()),
            family_name: Some("Doe".into()),
            given_name: Some("Jane".into()),
            birthdate: Some("2001-12-30".into()),
            ..Subject::default()
        };
        let profile = ScopeSet::parse("openid profile profile_extended").unwrap();
        let at = json(&access_token_claims(&s, &grant, &account, &profile, 1_700_000_010_000));
        assert_eq!((at["nhs_number"].as_str(), at["vot"].as_str(), at["auth_time"].as_i64()), (Some("9000000009"), Some("P9.Cp.Cd"), Some(1_700_000_000)));
        assert!(at.get("family_name").is_none(), "demographics are not access token claims");
        let id = json(&id_token_claims(&s, &grant, &account, &profile, "n", "jti-1", 1_700_000_010_000));
        assert_eq!((id["family_name"].as_str(), id["nhs_number"].as_str()), (Some("Doe"), Some("9000000009")));
        assert_eq!((id["identity_proofing_level"].as_str(), id["nonce"].as_str(), id["jti"].as_str()), (Some("P9"), Some("n"), Some("jti-1")));
        assert!(id.get("given_name").is_none() && id.get("sid").is_none() && id.get("scope").is_none());
        let basic = ScopeSet::parse("openid basic_demographics").unwrap();
        assert!(json(&access_token_claims(&s, &grant, &account, &basic, 0)).get("nhs_number").is_none());
        let id = json(&id_token_claims(&s, &grant, &account, &basic, "", "jti-2", 0));
        assert!(id.get("nonce").is_none());
        assert_eq!((id["identity_proofing_level"].as_str(), id["family_name"].as_str()), (Some("P9"), Some("Doe")));
        account.nhs_number = None;
        assert!(json(&access_token_claims(&s, &grant, &account, &profile, 0)).get("nhs_number").is_none());
    }

    /// A redemption reads only the citizen's token fields (`accounts::TOKEN_SUBJECT_COLUMNS`):
    /// both tokens must come out the same as from the whole `Subject`, for every level and scope.
    #[test]
    fn tokens_need_only_the_subject_fields_a_redemption_reads() {
        let s = settings(String::new());
        let grant = claims_grant();
        let scope_sets: Vec<String> = std::iter::once(domain::Scope::all().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            .chain(domain::Scope::all().iter().map(|s| format!("openid {}", s.as_str())))
            .collect();
        for level in ["P0", "P5", "P9"] {
            let full = Subject {
                id: "a1".into(),
                email: "jane@example.com".into(),
                mobile: Some("+447700900123".into()),
                landline: Some("+442079460000".into()),
                proofing_level: level.into(),
                nhs_number: Some("9000000009".into()),
                family_name: Some("Doe".into()),
                given_name: Some("Jane".into()),
                birthdate: Some("2001-12-30".into()),
                gp_ods_code: Some("A12345".into()),
                phone_pds_matched: true,
                gp_credentials_sealed: Some("sealed".into()),
            };
            let narrow = crate::store::accounts::token_fields_only(&full);
            for scope in &scope_sets {
                let scopes = ScopeSet::parse(scope).unwrap();
                let access = |subject: &Subject| {
                    let mut claims = json(&access_token_claims(&s, &grant, subject, &scopes, 1_700_000_010_000));
                    claims.as_object_mut().unwrap().remove("jti");
                    claims
                };
                assert_eq!(access(&full), access(&narrow), "{level} {scope}");
                let id = |subject: &Subject| json(&id_token_claims(&s, &grant, subject, &scopes, "n", "j", 1_700_000_010_000));
                assert_eq!(id(&full), id(&narrow), "{level} {scope}");
            }
        }
    }

    #[test]
    fn token_response_json_is_what_serde_json_writes() {
        let full = TokenResponse {
            access_token: "eyJh.eyJz-_.sig".into(),
            token_type: "Bearer",
            expires_in: 300,
            id_token: Some("a.b.c".into()),
            refresh_token: Some("r-_0".into()),
            scope: "openid profile".into(),
        };
        let bare = TokenResponse { id_token: None, refresh_token: None, ..full.clone() };
        let odd = TokenResponse { scope: "openid \"x\\\u{1}".into(), ..full.clone() };
        // Every ASCII character (and some beyond) in a token: only the plain ones may skip serde_json.
        let each_char = (0u8..=0x7f).map(char::from).chain(['é', '\u{2028}']).map(|c| TokenResponse { access_token: format!("eyJh.{c}.sig"), ..full.clone() });
        for r in [full.clone(), bare, odd].into_iter().chain(each_char) {
            assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap());
        }
    }

    /// The grant the claims tests sign for.
    fn claims_grant() -> GrantRecord {
        GrantRecord {
            id: "g1".into(),
            account_id: "a1".into(),
            client_id: "rp".into(),
            scope: String::new(),
            vot: "P9.Cp.Cd".into(),
            auth_time: 1_700_000_000,
        }
    }

    /// Claims as the token carries them, checking that each name is written once (a struct
    /// field and a flattened map could otherwise both write `identity_proofing_level`).
    fn json(claims: &impl Serialize) -> Value {
        let text = serde_json::to_string(claims).unwrap();
        let parsed: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(text.matches("\":").count(), parsed.len(), "a claim name appears twice in {text}");
        Value::Object(parsed)
    }

    fn retention(state: &AppState) -> crate::store::purge::Retention {
        crate::store::purge::Retention::from_lifetimes(&state.settings.lifetimes)
    }

    #[tokio::test]
    async fn issues_tokens_for_a_code_once() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (state, _dir) = fixture(&key).await;
        let code = grant_code(&state, "g1", "openid profile email", None).await;
        let ok = exchange(&state, form(&code_form(&code, &[]), &key)).await.unwrap();
        assert_eq!((ok.token_type, ok.expires_in, ok.scope.as_str()), ("Bearer", 300, "openid profile email"));
        assert!(ok.refresh_token.is_some());
        let at = state.keys.verify(&ok.access_token).unwrap();
        assert_eq!((at["sub"].as_str(), at["aud"].as_str(), at["sid"].as_str()), (Some("acct-1"), Some("rp"), Some("g1")));
        assert_eq!(at["vtm"], "https://id.example/trustmark/id.example");
        assert_eq!(at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(), 300);
        assert!((5..=6).contains(&(at["iat"].as_i64().unwrap() - at["auth_time"].as_i64().unwrap())));
        assert!(at.get("nhs_number").is_none(), "P0 has no NHS number");
        let id = state.keys.verify(ok.id_token.as_deref().unwrap()).unwrap();
        assert_eq!((id["nonce"].as_str(), id["identity_proofing_level"].as_str()), (Some("n-1"), Some("P0")));
        assert_eq!(id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(), 3600);
        assert!(id.get("email").is_none(), "email is a userinfo claim");
        // Recorded by jti, for asserted_login_identity.
        let recorded = state.db.live_id_token(id["jti"].as_str().unwrap(), clock::now_ms()).await.unwrap().expect("recorded");
        assert_eq!((recorded.grant_id.as_str(), recorded.account_id.as_str(), recorded.client_id.as_str()), ("g1", "acct-1", "rp"));
        assert_eq!((recorded.auth_time, recorded.vot.as_str()), (id["auth_time"].as_i64().unwrap(), "P0.Cp.Cd"));
        assert_eq!(recorded.expires_at, id["exp"].as_i64().unwrap() * 1000);
        // Purging keeps the spent code while its ID token lives (past the code's own 10 minutes).
        state.db.purge_expired(clock::now_ms() + 11 * 60_000, retention(&state)).await.unwrap();
        assert!(state.db.live_id_token(&recorded.jti, 0).await.unwrap().is_some(), "kept for single sign-on");
        // A replay is refused and revokes the grant.
        assert_eq!(err(exchange(&state, form(&code_form(&code, &[]), &key)).await), "invalid_grant");
        assert!(state.db.active_grant("g1").await.unwrap().is_none());
        // Once the ID token has expired, the code row goes too.
        state.db.purge_expired(recorded.expires_at + 1, retention(&state)).await.unwrap();
        let codes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM authorization_codes").fetch_one(state.db.pool()).await.unwrap();
        assert_eq!(codes, 0, "purged");
    }

    #[tokio::test]
    async fn code_binding_and_client_authentication() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (state, _dir) = fixture(&key).await;
        let code = grant_code(&state, "g1", "openid", None).await;
        let repeated = code_form(&code, &[("redirect_uri", "https://rp.example/cb")]);
        assert_eq!(err(exchange(&state, form(&repeated, &key)).await), "invalid_request", "repeated redirect_uri");
        let other_key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        assert_eq!(err(exchange(&state, form(&code_form(&code, &[]), &other_key)).await), "invalid_client");
        // The same assertion twice: the second is a replay (RFC 7523 3 item 7).
        let signed = assertion(&key, "once");
        let with_assertion = |code: &str| {
            let mut f = form(&code_form(code, &[]), &key);
            f.last_mut().unwrap().1 = signed.clone();
            f
        };
        assert_eq!(err(exchange(&state, with_assertion(&code)).await), "ok");
        let code2 = grant_code(&state, "g2", "openid", None).await;
        assert_eq!(err(exchange(&state, with_assertion(&code2)).await), "invalid_client", "jti reuse");
        // PKCE: required when challenged, refused when not (downgrade), and must match.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenged = grant_code(&state, "g3", "openid", Some(&pkce_s256(verifier))).await;
        assert_eq!(err(exchange(&state, form(&code_form(&challenged, &[]), &key)).await), "invalid_grant");
        assert!(state.db.active_grant("g3").await.unwrap().is_none());
        let plain = grant_code(&state, "g4", "openid", None).await;
        assert_eq!(err(exchange(&state, form(&code_form(&plain, &[("code_verifier", verifier)]), &key)).await), "invalid_grant");
        let good = grant_code(&state, "g5", "openid", Some(&pkce_s256(verifier))).await;
        assert_eq!(err(exchange(&state, form(&code_form(&good, &[("code_verifier", verifier)]), &key)).await), "ok");
        let bad_uri = grant_code(&state, "g6", "openid", None).await;
        let f = [("grant_type", "authorization_code"), ("code", &bad_uri), ("redirect_uri", "https://rp.example/x")];
        assert_eq!(err(exchange(&state, form(&f, &key)).await), "invalid_grant");
    }

    #[tokio::test]
    async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (state, _dir) = fixture(&key).await;
        let code = grant_code(&state, "g1", "openid profile email", None).await;
        let first = exchange(&state, form(&code_form(&code, &[]), &key)).await.unwrap();
        let rt1 = first.refresh_token.unwrap();
        let refresh = |rt: &str, scope: Option<&str>| {
            let mut f = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
            f.extend(scope.map(|s| ("scope", s)));
            form(&f, &key)
        };
        assert_eq!(err(exchange(&state, refresh(&rt1, Some("openid phone"))).await), "invalid_scope");
        let refused = refresh(&rt1, Some("email"));
        assert_eq!(err(exchange(&state, refused.clone()).await), "invalid_scope");
        // The refused request spent its assertion: presented again, it is a replay.
        let mut replayed = refresh(&rt1, Some("openid email"));
        replayed.retain(|(k, _)| k != "client_assertion");
        replayed.extend(refused.into_iter().filter(|(k, _)| k == "client_assertion"));
        assert_eq!(err(exchange(&state, replayed).await), "invalid_client");
        let second = exchange(&state, refresh(&rt1, Some("openid email"))).await.unwrap();
        assert_eq!((second.scope.as_str(), second.id_token.is_none()), ("openid email", true));
        let at = state.keys.verify(&second.access_token).unwrap();
        assert_eq!(at["scope"], "openid email");
        let rt2 = second.refresh_token.unwrap();
        // Granted scope at most that of the code; client_metadata is registered but was not granted.
        assert_eq!(err(exchange(&state, refresh(&rt2, Some("openid client_metadata"))).await), "invalid_scope");
        // Refused before the rotation: rt2 is still unspent and rotates.
        assert_eq!(err(exchange(&state, refresh(&rt2, None)).await), "ok", "the refusal left the token unspent");
        let code2 = grant_code(&state, "g2", "openid", None).await;
        let other = exchange(&state, form(&code_form(&code2, &[]), &key)).await.unwrap();
        assert_eq!(err(exchange(&state, refresh(&rt1, None)).await), "invalid_grant");
        assert!(state.db.active_grant("g1").await.unwrap().is_none(), "reuse revokes the family");
        assert_eq!(err(exchange(&state, refresh(&other.refresh_token.unwrap(), None)).await), "ok");
        assert_eq!(err(exchange(&state, refresh("made-up", None)).await), "invalid_grant");
    }
}
