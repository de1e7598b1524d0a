//! Partner authentication at the token endpoint: `private_key_jwt` (Federation spec 7.2.1 and
//! 3.5.1 Table 6; RFC 7523 sections 2.2 and 3; OIDC Core section 9), and the conversion of a
//! partner's registered public key (spec 7.1 Table 2: "PEM format ... 2048-bit RSA") to a JWK.
//!
//! The checks run cheapest first and touch the database last: the `jti` is recorded only once
//! the signature is proven, so nobody can fill the replay table without the partner's key.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::rsa::{PublicEncryptingKey, PublicKey, PublicKeyComponents};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA512};
use base64::Engine as _;
use serde_json::{Value, json};

use super::error::{ErrorCode, OAuthError};
use super::keys::{components_from_jwk, split_jws};
use crate::clock;
use crate::crypto::{b64url, b64url_decode};
use crate::state::AppState;
use crate::store::grants::AssertionUse;
use crate::store::partners::PartnerRecord;

/// Table 6: the only `client_assertion_type`.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew allowed on `exp`, `iat` and `nbf`, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 60;
/// The longest lifetime (`exp - iat`, seconds) an assertion may have: 60 minutes.
///
/// The reference leaves the lifetime to the partner ("The client SHOULD set this to a value
/// appropriate to the security and efficiency context", users endpoint spec 4.1.2), and partner
/// libraries choose for it: Authlib signs `exp = iat + 3600` by default, openid-client
/// `iat + 60`. An hour accepts both as they come while still bounding the replay table: each
/// `jti` is kept until its `exp` plus [`CLOCK_SKEW_SECS`], so at most an hour and a minute.
/// A replay is refused by `jti` for the whole of that time, however long the lifetime.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
const MAX_JTI_CHARS: usize = 256;
/// Parsed partner keys kept in memory (each about 1 KiB); far more than there are partners.
const MAX_PARSED_KEYS: usize = 4096;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

fn client_error(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, description)
}

/// Authenticates the partner calling the token endpoint and returns its record.
///
/// `form_client_id`, `assertion_type` and `assertion` are the single values of `client_id`,
/// `client_assertion_type` and `client_assertion` (the caller refuses repeats); the
/// `token_endpoint` URL is what `aud` must name. Failures are `invalid_client`; a request that
/// carries only half of the assertion pair is `invalid_request` (Table 10). The issuer
/// identifier is accepted as `aud` too ([`audience_ok`]).
pub async fn authenticate_client(
    state: &AppState,
    form_client_id: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    token_endpoint: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let assertion = check_parameters(assertion_type, assertion)?;
    let now = clock::now_secs();
    let audiences = [token_endpoint, state.settings.issuer.as_str()];
    let checked = check_assertion(assertion, form_client_id, &audiences, now)?;
    let partner = state.partner_cached(&checked.client_id).await?.ok_or_else(|| client_error("Unknown client"))?;
    verify_signature(&checked, &partner)?;
    // RFC 7523 3 item 7: a jti may be used once; the row lives as long as the assertion is
    // accepted (its exp plus the clock skew), so purging cannot reopen the window for a replay.
    let remembered_until = checked.exp.saturating_add(CLOCK_SKEW_SECS).saturating_mul(1000);
    let assertion = AssertionUse { client_id: partner.client_id.clone(), jti: checked.jti, expires_at: remembered_until };
    Ok(AuthenticatedClient { partner, assertion })
}

/// A partner whose assertion verified, and the assertion's `jti`, which the caller must record
/// (once: a second use is a replay) before anything is issued: the authorization-code grant
/// records it with the code's redemption, the refresh grant with the token's rotation, each in
/// the same transaction.
#[derive(Debug)]
pub struct AuthenticatedClient {
    pub partner: Arc<PartnerRecord>,
    pub assertion: AssertionUse,
}

/// RFC 7523 3 item 7: the error for a `jti` used before.
pub fn assertion_replayed() -> OAuthError {
    client_error("The client_assertion jti has been used before")
}

/// Table 6: `client_assertion_type` must be jwt-bearer and `client_assertion` present.
/// Table 10: no client authentication at all is `invalid_client`; half of it is malformed.
fn check_parameters<'a>(assertion_type: Option<&str>, assertion: Option<&'a str>) -> Result<&'a str, OAuthError> {
    match (assertion_type, assertion) {
        (None, None) => Err(client_error("Client authentication is required (private_key_jwt)")),
        (None, Some(_)) => Err(OAuthError::new(ErrorCode::InvalidRequest, "client_assertion_type is required")),
        (Some(_), None) => Err(OAuthError::new(ErrorCode::InvalidRequest, "client_assertion is required")),
        (Some(t), Some(a)) if t == JWT_BEARER => Ok(a),
        (Some(_), Some(_)) => Err(client_error("Unsupported client_assertion_type; only jwt-bearer is accepted")),
    }
}

/// What a structurally valid assertion says, before its signature is checked.
#[derive(Debug)]
struct CheckedAssertion<'a> {
    client_id: String,
    kid: Option<String>,
    jti: String,
    exp: i64,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Whether the assertion's `aud` names this server and nothing else.
///
/// `accepted` holds the token endpoint URL (spec Table 6: "the aud MUST contain the token
/// endpoint URL") and the issuer identifier (what openid-client v6 sends, and what
/// draft-ietf-oauth-rfc7523bis, the 2025 fix for audience injection, requires: "The
/// authorization server MUST reject any JWT that does not contain its issuer identifier as its
/// sole audience value"). Either is compared as a whole string (RFC 3986 6.2.1).
///
/// - A single string equal to one of them is accepted.
/// - An array of exactly one such value is accepted too: RFC 7519 4.1.3 makes it the same
///   audience as the string, and it names no other server, so nothing can be injected through
///   it (rfc7523bis asks senders for the string form; refusing the array would only break
///   partners whose JWT library writes `aud` as a list).
/// - Any other array is refused, even one that also names us: an assertion made out to
///   several audiences is the audience-injection shape (another server the partner trusts, or
///   one that lists us beside itself, could present it here).
fn audience_ok(aud: Option<&Value>, accepted: &[&str]) -> bool {
    let ours = |v: &Value| v.as_str().is_some_and(|a| accepted.contains(&a));
    match aud {
        Some(v @ Value::String(_)) => ours(v),
        Some(Value::Array(list)) => matches!(list.as_slice(), [only] if ours(only)),
        _ => false,
    }
}

/// RFC 7523 section 3 and spec Table 6, everything that needs no database. `audiences` are the
/// values `aud` may take ([`audience_ok`]).
fn check_assertion<'a>(
    assertion: &'a str,
    form_client_id: Option<&str>,
    audiences: &[&str],
    now: i64,
) -> Result<CheckedAssertion<'a>, OAuthError> {
    let (header, claims, signing_input, signature) =
        split_jws(assertion).map_err(|_| client_error("The client_assertion is not a compact JWS"))?;
    // Spec 4.5 / 7.2: RS512 only. Anything else (none, HS256 with a public key as secret...)
    // is refused before any key is touched.
    if header.get("alg").and_then(Value::as_str) != Some("RS512") {
        return Err(client_error("The client_assertion must be signed with RS512"));
    }
    // RFC 7515 4.1.11: critical extensions we do not understand make the JWS invalid.
    if header.get("crit").is_some() {
        return Err(client_error("The client_assertion uses unsupported critical header parameters"));
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let number = |name: &str| claims.get(name).and_then(Value::as_f64).map(|f| f as i64);
    // RFC 7523 3 items 1-2, Table 6: iss and sub are both the client_id.
    let iss = text("iss").ok_or_else(|| client_error("The client_assertion has no iss"))?;
    let sub = text("sub").ok_or_else(|| client_error("The client_assertion has no sub"))?;
    if iss != sub {
        return Err(client_error("The client_assertion iss and sub must both be the client_id"));
    }
    if form_client_id.is_some_and(|id| id != iss) {
        return Err(client_error("client_id does not match the client_assertion"));
    }
    // RFC 7523 3 item 3, Table 6, rfc7523bis: aud is this server alone.
    if !audience_ok(claims.get("aud"), audiences) {
        return Err(client_error("The client_assertion aud must be the token endpoint URL or the issuer, as a single value"));
    }
    // RFC 7523 3 item 4: exp is required and in the future.
    let exp = number("exp").ok_or_else(|| client_error("The client_assertion has no exp"))?;
    if exp.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(client_error("The client_assertion has expired"));
    }
    // RFC 7523 3 item 6 makes iat optional; we require it, as the lifetime is measured from it
    // (every library we know sends it: Authlib, openid-client, the openidconnect crate's users).
    let iat = number("iat").ok_or_else(|| client_error("The client_assertion has no iat"))?;
    if iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(client_error("The client_assertion iat is in the future"));
    }
    // The lifetime (MAX_ASSERTION_LIFETIME_SECS). With iat no later than now plus the skew,
    // this also keeps exp within an hour (and the skew) of now.
    if exp < iat {
        return Err(client_error("The client_assertion exp is before its iat"));
    }
    if exp.saturating_sub(iat) > MAX_ASSERTION_LIFETIME_SECS {
        return Err(client_error("The client_assertion lifetime (exp - iat) is more than 60 minutes"));
    }
    // RFC 7523 3 item 5: nbf, when present, is not in the future.
    if let Some(v) = claims.get("nbf") {
        match v.as_f64() {
            Some(t) if (t as i64) <= now.saturating_add(CLOCK_SKEW_SECS) => {}
            _ => return Err(client_error("The client_assertion nbf is invalid or in the future")),
        }
    }
    // RFC 7523 3 item 7, Table 6 (via RFC 7523): jti is required so replays can be refused.
    let jti = text("jti").ok_or_else(|| client_error("The client_assertion has no jti"))?;
    if jti.chars().count() > MAX_JTI_CHARS {
        return Err(client_error("The client_assertion jti is too long"));
    }
    Ok(CheckedAssertion {
        client_id: iss.to_string(),
        kid: header.get("kid").and_then(Value::as_str).map(String::from),
        jti: jti.to_string(),
        exp,
        signing_input,
        signature,
    })
}

/// RFC 7523 3 item 9 / spec Table 6: "signed using the private key of the client, agreed during
/// onboarding".
fn verify_signature(checked: &CheckedAssertion<'_>, partner: &PartnerRecord) -> Result<(), OAuthError> {
    if signed_by_partner(partner, checked.kid.as_deref(), checked.signing_input, &checked.signature) {
        Ok(())
    } else {
        Err(client_error("The client_assertion signature does not verify with a registered key"))
    }
}

/// [`authenticate_client`] without the database: the parameter and claim checks, then the
/// signature against `partner` (standing in for the registry look-up of `iss`), with the
/// `audiences` `aud` may name (the token endpoint and the issuer). Returns the
/// `jti` the caller would record. No I/O: the fuzzing entry point
/// (`fuzz/fuzz_targets/client_assertion.rs`).
pub fn check_offline(
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    form_client_id: Option<&str>,
    audiences: &[&str],
    now: i64,
    partner: &PartnerRecord,
) -> Result<String, OAuthError> {
    let assertion = check_parameters(assertion_type, assertion)?;
    let checked = check_assertion(assertion, form_client_id, audiences, now)?;
    if checked.client_id != partner.client_id {
        return Err(client_error("Unknown client"));
    }
    verify_signature(&checked, partner)?;
    Ok(checked.jti)
}

/// True when `signature` is an RS512 signature of `signing_input` by one of the partner's
/// registered keys (every JWT a partner signs: client assertions, `asserted_login_identity`).
/// With a `kid`, the keys registered under that kid (and keys registered without one, e.g.
/// from PEM) are tried; without, every key. The caller has already refused any `alg` but RS512.
pub fn signed_by_partner(partner: &PartnerRecord, kid: Option<&str>, signing_input: &str, signature: &[u8]) -> bool {
    let candidates = partner.public_keys.iter().filter(|jwk| match (kid, jwk.get("kid").and_then(Value::as_str)) {
        (Some(wanted), Some(registered)) => wanted == registered,
        _ => true,
    });
    candidates.filter_map(parsed_key).any(|key| key.verify_sig(signing_input.as_bytes(), signature).is_ok())
}

/// A registered RS512 key, parsed once per process and reused: parsing (and the RSA
/// Montgomery set-up that comes with a fresh key) costs about as much as a verification.
/// Keyed by the JWK's modulus and checked against its exponent, so an updated registration is
/// a new entry.
fn parsed_key(jwk: &Value) -> Option<Arc<ParsedPublicKey>> {
    /// Parsed keys by the JWK's `n`, each with its `e` (looked up by borrowed `n`: no copy of
    /// the modulus per verification).
    type ParsedKeys = RwLock<HashMap<String, (String, Arc<ParsedPublicKey>)>>;
    static PARSED: LazyLock<ParsedKeys> = LazyLock::new(Default::default);
    let (n, e) = (jwk.get("n")?.as_str()?, jwk.get("e")?.as_str()?);
    if let Some((cached_e, key)) = PARSED.read().expect("key cache lock").get(n)
        && cached_e == e
    {
        return Some(key.clone());
    }
    let key = Arc::new(components_from_jwk(jwk)?.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA512).ok()?);
    let mut cache = PARSED.write().expect("key cache lock");
    if cache.len() >= MAX_PARSED_KEYS {
        cache.clear();
    }
    cache.insert(n.to_string(), (e.to_string(), key.clone()));
    Some(key)
}

/// Converts a partner's public key, as supplied at registration, to the JWK we store:
/// an RSA public key PEM (`PUBLIC KEY` SPKI or `RSA PUBLIC KEY` PKCS#1) or an RSA JWK JSON
/// object. Returns `{kty, n, e, kid?}`; the modulus must be 2048 to 8192 bits (spec 7.1).
pub fn public_jwk_from_pem_or_jwk(text: &str) -> Result<Value, String> {
    let text = text.trim();
    let (components, kid) = if text.starts_with('{') { from_jwk_text(text)? } else { (from_pem(text)?, None) };
    let bits = modulus_bits(&components.n);
    if bits < MIN_RSA_BITS {
        return Err(format!("The RSA key is {bits} bits; at least {MIN_RSA_BITS} are required"));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!("The RSA key is {bits} bits; at most {MAX_RSA_BITS} are supported"));
    }
    // Let aws-lc check the numbers really form an RSA public key (odd modulus, sane exponent).
    let probe = PublicKeyComponents { n: components.n.as_slice(), e: components.e.as_slice() };
    let _: PublicEncryptingKey = probe.try_into().map_err(|_| "The RSA public key is not valid".to_string())?;
    let mut jwk = json!({ "kty": "RSA", "n": b64url(&components.n), "e": b64url(&components.e) });
    if let Some(kid) = kid {
        jwk["kid"] = Value::String(kid);
    }
    Ok(jwk)
}

fn from_jwk_text(text: &str) -> Result<(PublicKeyComponents<Vec<u8>>, Option<String>), String> {
    let jwk: Value = serde_json::from_str(text).map_err(|e| format!("The key is not valid JSON: {e}"))?;
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err("The JWK must have kty RSA".into());
    }
    if ["d", "p", "q", "dp", "dq", "qi"].iter().any(|k| jwk.get(k).is_some()) {
        return Err("This JWK contains a private key; supply the public key only".into());
    }
    let components = components_from_jwk(&jwk).ok_or("The JWK must have base64url n and e")?;
    let n = strip_leading_zeros(components.n);
    let e = strip_leading_zeros(components.e);
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
        Some(_) => return Err("The JWK kid must be a non-empty string".into()),
    };
    Ok((PublicKeyComponents { n, e }, kid))
}

fn from_pem(text: &str) -> Result<PublicKeyComponents<Vec<u8>>, String> {
    let first = text.lines().next().unwrap_or("").trim();
    if first.contains("PRIVATE KEY") {
        return Err("This is a private key; supply the public key only".into());
    }
    let label = match first {
        "-----BEGIN PUBLIC KEY-----" => "PUBLIC KEY",
        "-----BEGIN RSA PUBLIC KEY-----" => "RSA PUBLIC KEY",
        _ => return Err("Expected an RSA public key PEM (BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY) or a JWK".into()),
    };
    let end = format!("-----END {label}-----");
    let body = text.strip_prefix(first).and_then(|rest| rest.split_once(end.as_str())).map(|(b, _)| b);
    let body = body.ok_or_else(|| format!("The PEM has no {end} line"))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| "The PEM body is not valid base64".to_string())?;
    // Accepts both RFC 8017 RSAPublicKey and RFC 5280 SubjectPublicKeyInfo (RSA only).
    let key = PublicKey::from_der(&der).map_err(|_| "The PEM does not hold an RSA public key".to_string())?;
    let components = PublicKeyComponents::<Vec<u8>>::from(&key);
    Ok(PublicKeyComponents { n: strip_leading_zeros(components.n), e: strip_leading_zeros(components.e) })
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn modulus_bits(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// Decodes a stored JWK's `n`, for callers that need the key size.
pub fn jwk_modulus_bits(jwk: &Value) -> Option<usize> {
    let n = b64url_decode(jwk.get("n")?.as_str()?)?;
    Some(modulus_bits(&strip_leading_zeros(n)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RSA_PKCS1_SHA512};

    const ENDPOINT: &str = "https://id.example/token";
    const ISSUER: &str = "https://id.example";

    /// Signs `claims` with `header` as a compact JWS (RS512 or RS256 per `alg`).
    pub(crate) fn sign(pair: &KeyPair, header: Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let mut sig = vec![0u8; pair.public_modulus_len()];
        let alg = if header["alg"] == "RS256" { &RSA_PKCS1_SHA256 } else { &RSA_PKCS1_SHA512 };
        pair.sign(alg, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
        format!("{input}.{}", b64url(&sig))
    }

    pub(crate) fn jwk_of(pair: &KeyPair, kid: Option<&str>) -> Value {
        let c = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let mut jwk = json!({ "kty": "RSA", "n": b64url(&c.n), "e": b64url(&c.e) });
        if let Some(k) = kid {
            jwk["kid"] = json!(k);
        }
        jwk
    }

    fn claims(now: i64) -> Value {
        json!({ "iss": "rp", "sub": "rp", "aud": ENDPOINT, "exp": now + 60, "iat": now, "jti": "j1" })
    }

    fn partner(keys: Vec<Value>) -> PartnerRecord {
        PartnerRecord {
            client_id: "rp".into(),
            name: "RP".into(),
            redirect_uris: vec![],
            public_keys: keys,
            scopes: vec![],
            vectors: vec![],
            refresh_tokens: false,
            im1: false,
            sso_from: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    fn check(token: &str, form_client_id: Option<&str>, now: i64) -> Result<String, &'static str> {
        check_assertion(token, form_client_id, &[ENDPOINT, ISSUER], now).map(|c| c.jti).map_err(|e| e.code.as_str())
    }

    #[test]
    fn parameters_follow_table_6_and_10() {
        let code = |t, a| check_parameters(t, a).map_err(|e| e.code.as_str());
        assert_eq!(code(None, None), Err("invalid_client"));
        assert_eq!(code(Some(JWT_BEARER), None), Err("invalid_request"));
        assert_eq!(code(None, Some("x")), Err("invalid_request"));
        assert_eq!(code(Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"), Some("x")), Err("invalid_client"));
        assert_eq!(code(Some(JWT_BEARER), Some("x")), Ok("x"));
    }

    #[test]
    fn accepts_a_valid_assertion_and_checks_its_signature() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let now = 1_700_000_000;
        let token = sign(&pair, json!({"alg": "RS512", "kid": "k1"}), &claims(now));
        assert_eq!(check(&token, None, now), Ok("j1".into()));
        assert_eq!(check(&token, Some("rp"), now), Ok("j1".into()));
        let checked = check_assertion(&token, None, &[ENDPOINT, ISSUER], now).unwrap();
        assert!(verify_signature(&checked, &partner(vec![jwk_of(&pair, Some("k1"))])).is_ok());
        // A PEM-registered key (no kid) is still tried when the header names one.
        assert!(verify_signature(&checked, &partner(vec![jwk_of(&pair, None)])).is_ok());
        let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
        assert!(verify_signature(&checked, &partner(vec![jwk_of(&other, None)])).is_err());
        // The right key under another kid is not picked.
        assert!(verify_signature(&checked, &partner(vec![jwk_of(&pair, Some("k2"))])).is_err());
    }

    #[test]
    fn rejects_other_algorithms() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let now = 1_700_000_000;
        let rs256 = sign(&pair, json!({"alg": "RS256"}), &claims(now));
        assert_eq!(check(&rs256, None, now), Err("invalid_client"));
        let body = b64url(claims(now).to_string().as_bytes());
        let none = format!("{}.{body}.", b64url(br#"{"alg":"none"}"#));
        assert_eq!(check(&none, None, now), Err("invalid_client"));
        let hs = format!("{}.{body}.c2ln", b64url(br#"{"alg":"HS256"}"#));
        assert_eq!(check(&hs, None, now), Err("invalid_client"));
        let crit = sign(&pair, json!({"alg": "RS512", "crit": ["x"], "x": 1}), &claims(now));
        assert_eq!(check(&crit, None, now), Err("invalid_client"));
        assert_eq!(check("not-a-jwt", None, now), Err("invalid_client"));
    }

    #[test]
    fn rejects_bad_claims() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let now = 1_700_000_000;
        let with = |k: &str, v: Value| {
            let mut c = claims(now);
            if v.is_null() { c.as_object_mut().unwrap().remove(k); } else { c[k] = v; }
            sign(&pair, json!({"alg": "RS512"}), &c)
        };
        let cases = [
            ("iss", json!("other")),
            ("sub", json!("other")),
            ("iss", Value::Null),
            ("aud", json!("https://id.example/authorize")),
            ("aud", Value::Null),
            ("exp", Value::Null),
            ("exp", json!(now - 61)),
            ("exp", json!(now + 3601)),
            ("exp", json!(now - 1)),
            ("exp", json!(1e300)),
            ("exp", json!(-1e300)),
            ("exp", json!("soon")),
            ("iat", json!(now + 120)),
            ("iat", Value::Null),
            ("iat", json!("now")),
            ("iat", json!(-1e300)),
            ("aud", json!(["x", ENDPOINT])),
            ("aud", json!([ISSUER, ENDPOINT])),
            ("aud", json!([])),
            ("aud", json!(["x"])),
            ("aud", json!(format!("{ENDPOINT}/"))),
            ("aud", json!(format!("{ISSUER}/"))),
            ("nbf", json!(now + 120)),
            ("jti", Value::Null),
            ("jti", json!("")),
        ];
        for (k, v) in cases {
            assert_eq!(check(&with(k, v.clone()), None, now), Err("invalid_client"), "{k}={v}");
        }
        // aud: the token endpoint or the issuer, alone (as a string or a one-value array).
        for aud in [json!(ENDPOINT), json!(ISSUER), json!([ENDPOINT]), json!([ISSUER])] {
            assert_eq!(check(&with("aud", aud.clone()), None, now), Ok("j1".into()), "aud={aud}");
        }
        // Lifetimes up to 60 minutes (Authlib's default), measured from iat.
        assert_eq!(check(&with("exp", json!(now + 3600)), None, now), Ok("j1".into()), "60 minutes");
        let mut late = claims(now);
        (late["iat"], late["exp"]) = (json!(now - 3000), json!(now + 600));
        assert_eq!(check(&sign(&pair, json!({"alg": "RS512"}), &late), None, now), Ok("j1".into()), "50 minutes, issued earlier");
        (late["iat"], late["exp"]) = (json!(now - 3000), json!(now + 601));
        assert_eq!(check(&sign(&pair, json!({"alg": "RS512"}), &late), None, now), Err("invalid_client"), "60 minutes and a second");
        let mut just_expired = claims(now);
        (just_expired["iat"], just_expired["exp"]) = (json!(now - 90), json!(now - 30));
        assert_eq!(check(&sign(&pair, json!({"alg": "RS512"}), &just_expired), None, now), Ok("j1".into()), "within skew");
        assert_eq!(check(&with("iss", json!("rp")), Some("someone-else"), now), Err("invalid_client"));
    }

    #[test]
    fn check_offline_runs_every_check_but_the_database() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let now = 1_700_000_000;
        let token = sign(&pair, json!({"alg": "RS512", "kid": "k1"}), &claims(now));
        let rp = partner(vec![jwk_of(&pair, Some("k1"))]);
        let run = |t: Option<&str>, rp: &PartnerRecord| check_offline(t, Some(&token), Some("rp"), &[ENDPOINT, ISSUER], now, rp).map_err(|e| e.code.as_str());
        assert_eq!(run(Some(JWT_BEARER), &rp), Ok("j1".into()));
        assert_eq!(run(None, &rp), Err("invalid_request"));
        // The partner stands in for the registry's answer for iss: another partner is unknown.
        assert_eq!(run(Some(JWT_BEARER), &PartnerRecord { client_id: "other".into(), ..rp.clone() }), Err("invalid_client"));
        let stranger = partner(vec![jwk_of(&KeyPair::generate(KeySize::Rsa2048).unwrap(), None)]);
        assert_eq!(run(Some(JWT_BEARER), &stranger), Err("invalid_client"));
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn converts_pem_and_jwk_public_keys() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let expected = jwk_of(&pair, None);
        let spki = pair.public_key().as_der().unwrap();
        let from_spki = public_jwk_from_pem_or_jwk(&pem("PUBLIC KEY", spki.as_ref())).unwrap();
        assert_eq!(from_spki, expected);
        let pkcs1 = pem("RSA PUBLIC KEY", pair.public_key().as_ref());
        assert_eq!(public_jwk_from_pem_or_jwk(&pkcs1).unwrap(), expected);
        let jwk = public_jwk_from_pem_or_jwk(&jwk_of(&pair, Some("k9")).to_string()).unwrap();
        assert_eq!(jwk["kid"], "k9");
        assert_eq!(jwk["n"], expected["n"]);
        assert_eq!(jwk_modulus_bits(&jwk), Some(2048));
    }

    #[test]
    fn refuses_private_small_and_foreign_keys() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        assert!(public_jwk_from_pem_or_jwk(&pem("PRIVATE KEY", pkcs8.as_ref())).is_err());
        let mut private_jwk = jwk_of(&pair, None);
        private_jwk["d"] = json!("AQAB");
        assert!(public_jwk_from_pem_or_jwk(&private_jwk.to_string()).is_err());
        // A 1024-bit modulus (0xC0 followed by 127 bytes) is refused before anything else.
        let small = json!({ "kty": "RSA", "n": b64url(&[0xC0; 128]), "e": "AQAB" });
        assert!(public_jwk_from_pem_or_jwk(&small.to_string()).unwrap_err().contains("1024"));
        assert!(public_jwk_from_pem_or_jwk(r#"{"kty":"EC","crv":"P-256"}"#).is_err());
        assert!(public_jwk_from_pem_or_jwk("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_err());
        assert!(public_jwk_from_pem_or_jwk("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----").is_err());
        let ec = aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let ec_spki = ec.public_key().as_der().unwrap();
        assert!(public_jwk_from_pem_or_jwk(&pem("PUBLIC KEY", ec_spki.as_ref())).is_err());
    }
}
