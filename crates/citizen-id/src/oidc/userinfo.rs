//! The UserInfo endpoint (Federation spec 3.6; OIDC Core 5.3) and its NHS login extension, the
//! `client_user_metadata` update by PATCH (spec 3.6.3, Table 14). Access tokens are Bearer
//! tokens in the Authorization header only (spec 3.6.1; RFC 6750 section 2.1).

use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine as _;
use domain::{Scope, ScopeSet};
use serde_json::{Map, Value};

use super::claims::user_claims;
use super::error::{ErrorCode, OAuthError};
use super::keys::components_from_jwk;
use crate::clock;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::accounts::Subject;
use crate::store::grants::GrantRecord;

/// Spec Table 14: "The maximum length is 1024 characters".
pub const MAX_CLIENT_USER_METADATA_CHARS: usize = 1024;

/// A protected-resource error (spec 3.6.2.2 Table 13; RFC 6750 3.1). `error: None` is a request
/// with no usable credentials at all: 401 with a bare `WWW-Authenticate: Bearer` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerError {
    pub status: u16,
    pub error: Option<OAuthError>,
}

impl BearerError {
    /// RFC 6750 3.1: no authentication information -> no error code in the challenge.
    pub fn missing_token() -> BearerError {
        BearerError { status: 401, error: None }
    }

    pub fn invalid_request(description: &str) -> BearerError {
        BearerError { status: 400, error: Some(OAuthError::new(ErrorCode::InvalidRequest, description)) }
    }

    pub fn invalid_token(description: &str) -> BearerError {
        BearerError { status: 401, error: Some(OAuthError::new(ErrorCode::InvalidToken, description)) }
    }

    pub fn insufficient_scope(description: &str) -> BearerError {
        BearerError { status: 403, error: Some(OAuthError::new(ErrorCode::InsufficientScope, description)) }
    }

    /// The `WWW-Authenticate` value (RFC 6750 3): `Bearer error="invalid_token",
    /// error_description="..."`, or plain `Bearer` when no token was sent. `None` for server-side
    /// failures, which are not about the token (spec 3.6.2.2: those omit the header).
    pub fn www_authenticate(&self) -> Option<String> {
        match &self.error {
            None => Some("Bearer".into()),
            Some(e) if matches!(e.code, ErrorCode::InvalidRequest | ErrorCode::InvalidToken | ErrorCode::InsufficientScope) => {
                // RFC 6750 3: the values are quoted-strings of %x20-21 / %x23-5B / %x5D-7E.
                let description: String =
                    e.description.chars().filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\').collect();
                Some(format!("Bearer error=\"{}\", error_description=\"{description}\"", e.code.as_str()))
            }
            Some(_) => None,
        }
    }

    /// The JSON error body (spec 3.6.2.2 Table 12), when there is an error to describe.
    pub fn body(&self) -> Option<Value> {
        self.error.as_ref().map(|e| serde_json::json!({ "error": e.code.as_str(), "error_description": e.description }))
    }
}

impl From<StoreError> for BearerError {
    fn from(err: StoreError) -> BearerError {
        let error = OAuthError::from(err);
        let status = if error.code == ErrorCode::TemporarilyUnavailable { 503 } else { 500 };
        BearerError { status, error: Some(error) }
    }
}

/// What a valid access token proves.
struct Authorized {
    grant: GrantRecord,
    account: Subject,
    scopes: ScopeSet,
}

/// GET or POST /userinfo: `sub` and the claims of the token's scopes (spec 3.6.2.1).
pub async fn userinfo(state: &AppState, authorization_header: Option<&str>) -> Result<Map<String, Value>, BearerError> {
    let auth = authorize(state, authorization_header).await?;
    let metadata = if auth.scopes.contains(Scope::ClientMetadata) {
        state.db.client_user_metadata(&auth.account.id, &auth.grant.client_id).await?
    } else {
        None
    };
    // Table 11 / scopes-and-claims.md: openid releases iss, aud and sub.
    let mut body = Map::new();
    body.insert("iss".into(), Value::String(state.settings.issuer.clone()));
    body.insert("aud".into(), Value::String(auth.grant.client_id.clone()));
    body.insert("sub".into(), Value::String(auth.account.id.clone()));
    // Only after a two-factor sign-in (`claims::gp_credentials_after`).
    let gp = super::claims::gp_credentials_after(&auth.grant.vot, crate::proofing::uplift::gp_credentials(state, &auth.account));
    body.extend(user_claims(&auth.account, &auth.scopes, metadata.as_deref(), gp.as_ref()));
    Ok(body)
}

/// PATCH /userinfo (spec 3.6.3, Table 14): sets, clears (`""`) or regenerates (`"auto"`) the
/// partner's `client_user_metadata` for this citizen. Needs the `client_metadata` scope.
pub async fn update_metadata(state: &AppState, authorization_header: Option<&str>, body_json: &[u8]) -> Result<(), BearerError> {
    let auth = authorize(state, authorization_header).await?;
    if !auth.scopes.contains(Scope::ClientMetadata) {
        return Err(BearerError::insufficient_scope("The client_metadata scope is required"));
    }
    let Some(update) = parse_update(body_json)? else { return Ok(()) };
    let value = match update.as_str() {
        "" => None,
        "auto" => Some(generate_metadata(state, &auth.grant.client_id).await?),
        _ => Some(update),
    };
    state.db.set_client_user_metadata(&auth.account.id, &auth.grant.client_id, value.as_deref(), clock::now_ms()).await?;
    Ok(())
}

/// Table 14: a JSON object whose optional `client_user_metadata` is a string of at most 1024
/// characters. `None` when the key is absent (nothing to change).
fn parse_update(body: &[u8]) -> Result<Option<String>, BearerError> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(BearerError::invalid_request("The body must be a JSON object"));
    };
    match fields.remove("client_user_metadata") {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_CLIENT_USER_METADATA_CHARS => Ok(Some(s)),
        Some(Value::String(_)) => Err(BearerError::invalid_request("client_user_metadata is longer than 1024 characters")),
        Some(_) => Err(BearerError::invalid_request("client_user_metadata must be a string")),
    }
}

/// Table 11: "a randomly-generated (by NHS login) number which has been encrypted using
/// PKCS1_OAEP cipher with the RP's public key and then base64URL encoded". OAEP with SHA-1
/// (PKCS1_OAEP's default); padded base64url, as in the spec's example value ("...==").
async fn generate_metadata(state: &AppState, client_id: &str) -> Result<String, BearerError> {
    let partner = state.db.partner(client_id).await?.ok_or_else(|| BearerError::invalid_token("The client no longer exists"))?;
    let number = u128::from_be_bytes(random_bytes()).to_string();
    for jwk in &partner.public_keys {
        if let Some(ciphertext) = components_from_jwk(jwk).and_then(|key| oaep_encrypt(key, number.as_bytes())) {
            return Ok(base64::engine::general_purpose::URL_SAFE.encode(ciphertext));
        }
    }
    tracing::warn!(client_id, "partner has no usable RSA key for client_user_metadata");
    Err(BearerError { status: 500, error: Some(OAuthError::new(ErrorCode::ServerError, "No usable public key is registered")) })
}

fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random");
    bytes
}

fn oaep_encrypt(key: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>>, plaintext: &[u8]) -> Option<Vec<u8>> {
    let public: PublicEncryptingKey = key.try_into().ok()?;
    let oaep = OaepPublicEncryptingKey::new(public).ok()?;
    let mut out = vec![0u8; oaep.ciphertext_size()];
    let len = oaep.encrypt(&OAEP_SHA1_MGF1SHA1, plaintext, &mut out, None).ok()?.len();
    out.truncate(len);
    Some(out)
}

/// RFC 6750 2.1 and 3.1: the token from `Authorization: Bearer <token>`, then checked: our
/// signature (spec 4.5), our `iss`, `exp` not passed (spec 4.3 Table 17), its grant (`sid`)
/// still active and matching `sub`/`aud`, and the account still there. Else `invalid_token`.
async fn authorize(state: &AppState, header: Option<&str>) -> Result<Authorized, BearerError> {
    let token = bearer_token(header)?;
    let claims = state.keys.verify_cached(token).map_err(|_| BearerError::invalid_token("The access token is invalid"))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(state.settings.issuer.as_str()) {
        return Err(BearerError::invalid_token("The access token was not issued here"));
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > clock::now_secs() => {}
        _ => return Err(BearerError::invalid_token("The access token expired")),
    }
    // An ID token has no `sid` or `scope`: only access tokens get past here.
    let (Some(sid), Some(sub), Some(aud), Some(scope)) = (text("sid"), text("sub"), text("aud"), text("scope")) else {
        return Err(BearerError::invalid_token("The token is not an access token"));
    };
    // One query: the grant must be live and its account must still exist (a deleted account
    // takes its grants with it).
    let (grant, account) =
        state.db.active_grant_with_subject(sid).await?.ok_or_else(|| BearerError::invalid_token("The access token has been revoked"))?;
    if grant.account_id != sub || grant.client_id != aud {
        return Err(BearerError::invalid_token("The access token is invalid"));
    }
    let scopes = ScopeSet::parse(scope).map_err(|_| BearerError::invalid_token("The access token is invalid"))?;
    Ok(Authorized { grant, account, scopes })
}

/// RFC 6750 2.1: `Bearer` (case-insensitive) then one b64token. No header or another scheme is
/// "no authentication information" (401, bare challenge); a broken Bearer header is 400.
fn bearer_token(header: Option<&str>) -> Result<&str, BearerError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or_else(BearerError::missing_token)?;
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::missing_token());
    }
    let token = rest.trim();
    let b64token = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
    if token.is_empty() || !token.bytes().all(b64token) {
        return Err(BearerError::invalid_request("The Authorization header must be 'Bearer <access token>'"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::token::exchange;
    use crate::oidc::token::tests::{fixture, form, grant_code};
    use aws_lc_rs::rsa::{KeyPair, KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
    use aws_lc_rs::encoding::AsDer as _;

    #[test]
    fn bearer_header_parsing_follows_rfc_6750() {
        assert_eq!(bearer_token(Some("Bearer abc.def-_~+/=")), Ok("abc.def-_~+/="));
        assert_eq!(bearer_token(Some("bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(BearerError::missing_token()));
        assert_eq!(bearer_token(Some("Basic dXNlcjpwYXNz")), Err(BearerError::missing_token()));
        assert_eq!(bearer_token(Some("Bearer")).unwrap_err().status, 400);
        assert_eq!(bearer_token(Some("Bearer a b")).unwrap_err().status, 400);
    }

    #[test]
    fn challenges_render_per_rfc_6750() {
        assert_eq!(BearerError::missing_token().www_authenticate().as_deref(), Some("Bearer"));
        assert!(BearerError::missing_token().body().is_none());
        let e = BearerError::invalid_token("The access token \"expired\"");
        assert_eq!(e.www_authenticate().unwrap(), "Bearer error=\"invalid_token\", error_description=\"The access token expired\"");
        assert_eq!(BearerError::insufficient_scope("x").status, 403);
        let down = BearerError::from(StoreError::Unavailable("gone".into()));
        assert_eq!((down.status, down.www_authenticate()), (503, None));
        assert_eq!(down.body().unwrap()["error"], "temporarily_unavailable");
    }

    #[test]
    fn metadata_updates_are_checked() {
        assert_eq!(parse_update(br#"{"client_user_metadata":"abc"}"#), Ok(Some("abc".into())));
        assert_eq!(parse_update(br#"{}"#), Ok(None));
        assert_eq!(parse_update(format!(r#"{{"client_user_metadata":"{}"}}"#, "é".repeat(1024)).as_bytes()), Ok(Some("é".repeat(1024))));
        let too_long = format!(r#"{{"client_user_metadata":"{}"}}"#, "a".repeat(1025));
        assert_eq!(parse_update(too_long.as_bytes()).unwrap_err().status, 400);
        assert_eq!(parse_update(br#"{"client_user_metadata":5}"#).unwrap_err().status, 400);
        assert_eq!(parse_update(b"client_user_metadata=x").unwrap_err().status, 400);
    }

    #[tokio::test]
    async fn serves_claims_and_updates_metadata() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (state, _dir) = fixture(&key).await;
        let code = grant_code(&state, "g1", "openid email client_metadata", None).await;
        let f = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", "https://rp.example/cb")];
        let tokens = exchange(&state, form(&f, &key)).await.unwrap();
        let header = format!("Bearer {}", tokens.access_token);
        let body = userinfo(&state, Some(&header)).await.unwrap();
        assert_eq!((body["sub"].as_str(), body["email"].as_str()), (Some("acct-1"), Some("jane@example.com")));
        assert!(body.get("client_user_metadata").is_none());
        update_metadata(&state, Some(&header), br#"{"client_user_metadata":"mine"}"#).await.unwrap();
        assert_eq!(userinfo(&state, Some(&header)).await.unwrap()["client_user_metadata"], "mine");
        update_metadata(&state, Some(&header), br#"{"client_user_metadata":"auto"}"#).await.unwrap();
        let auto = userinfo(&state, Some(&header)).await.unwrap()["client_user_metadata"].as_str().unwrap().to_string();
        // The partner can decrypt it with its private key: a decimal number.
        let private = PrivateDecryptingKey::from_pkcs8(key.as_der().unwrap().as_ref()).unwrap();
        let private = OaepPrivateDecryptingKey::new(private).unwrap();
        let ciphertext = base64::engine::general_purpose::URL_SAFE.decode(&auto).unwrap();
        let mut out = vec![0u8; private.min_output_size()];
        let plain = private.decrypt(&OAEP_SHA1_MGF1SHA1, &ciphertext, &mut out, None).unwrap();
        assert!(std::str::from_utf8(plain).unwrap().parse::<u128>().is_ok());
        update_metadata(&state, Some(&header), br#"{"client_user_metadata":""}"#).await.unwrap();
        assert!(userinfo(&state, Some(&header)).await.unwrap().get("client_user_metadata").is_none());
        // The ID token is not an access token; a revoked grant ends the access token.
        let id = format!("Bearer {}", tokens.id_token.unwrap());
        assert_eq!(userinfo(&state, Some(&id)).await.unwrap_err().status, 401);
        state.db.revoke_grant("g1", clock::now_ms()).await.unwrap();
        let revoked = userinfo(&state, Some(&header)).await.unwrap_err();
        assert_eq!(revoked.error.unwrap().code, ErrorCode::InvalidToken);
        assert_eq!(userinfo(&state, Some("Bearer abc.def.ghi")).await.unwrap_err().status, 401);
    }

    #[tokio::test]
    async fn metadata_update_needs_the_client_metadata_scope() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (state, _dir) = fixture(&key).await;
        let code = grant_code(&state, "g1", "openid email", None).await;
        let f = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", "https://rp.example/cb")];
        let tokens = exchange(&state, form(&f, &key)).await.unwrap();
        let header = format!("Bearer {}", tokens.access_token);
        let e = update_metadata(&state, Some(&header), br#"{"client_user_metadata":"x"}"#).await.unwrap_err();
        assert_eq!((e.status, e.error.unwrap().code), (403, ErrorCode::InsufficientScope));
    }
}
