//! Single sign-on between partners with `asserted_login_identity` (Federation spec Table 1;
//! nhs-login-docs `single-sign-on.md`).
//!
//! Partner 1 (RP1) signs a short JWT whose `code` is the `jti` of an ID token we issued to it,
//! and hands it to partner 2 (RP2), which sends it on its authorization request, usually with
//! `prompt=none`. When every rule holds, the citizen is signed in to the browser that brought
//! the request with no page shown, as the ID token's citizen, with its `auth_time` and
//! credentials. The rules, cheapest first; the database is touched only once the signature is
//! proven, so nobody can fill the replay table without a partner's key:
//!
//! 1. a compact JWS, `alg` RS512 only, no `crit` (spec 4.5; RFC 7515 4.1.11);
//! 2. `iss`, `jti`, `iat`, `exp` and `code` present (Table 1: "MUST have jti and iat", RFC 7519);
//! 3. `exp` in the future, at most 60 seconds after `iat` and at most 60 seconds ahead of us
//!    (Table 1: "an exp of no longer than 60 seconds"), each with [`CLOCK_SKEW_SECS`];
//! 4. `iss` is a registered partner and the JWT verifies with one of its registered keys
//!    (Table 1: "signed by RP1 using its client private key");
//!    Then `iss` is a partner this partner (RP2) accepts assertions from, and not RP2 itself
//!    (rule 4a: SSO pairing, `partner add|update --sso-from`; `single-sign-on.md`: "Partner
//!    services can control who they share SSO with", "SSO configuration needs to be set up by
//!    NHS login");
//! 5. (`iss`, `jti`) never seen before ("Asserted tokens are one time tokens");
//! 6. `code` names an ID token we issued to `iss`, not expired, whose grant is not revoked;
//! 7. the sign-in behind that ID token is no older than a session may live, and the citizen
//!    still has a live Citizen ID session somewhere (they have not signed out everywhere or
//!    timed out).
//!
//! # Error codes (spec Table 5)
//!
//! Rules 1-5 judge the parameter itself: a malformed, unsigned, wrongly signed, expired or
//! replayed assertion "includes an invalid parameter value", so it is `invalid_request` whatever
//! the `prompt`, with a description naming the rule.
//!
//! Rules 4a and 6-7 are the SSO validations proper: the assertion is genuine but cannot sign anyone
//! in. Table 5 has two candidates. `login_required` (OIDC Core) "MAY be returned when prompt
//! is none" and the citizen must authenticate; `sso_login_required` (added in spec v1.13)
//! "SHOULD be returned when SSO validations fail and the prompt parameter value ... is none",
//! and Table 1's `prompt=none` row points at it. The specific SHOULD wins over the generic
//! MAY, so these failures are `sso_login_required`, the same code `issue::next_step` already
//! gives a `prompt=none` request with no sign-in. Without `prompt=none` (Table 1, blank prompt:
//! "SSO the user if they still have a valid session, else the user will be requested to
//! login"), an SSO failure is not an error: the request carries on as if no assertion had been
//! sent (see [`falls_back_to_sign_in`]).

use serde_json::Value;

use super::authorize::{AuthorizeRequest, Prompt};
use super::client_auth::signed_by_partner;
use super::error::{ErrorCode, OAuthError};
use super::keys::split_jws;
use crate::clock;
use crate::state::AppState;
use crate::store::partners::PartnerRecord;

/// Table 1: the assertion's `exp` is no more than this after its `iat` (and after our clock).
pub const MAX_LIFETIME_SECS: i64 = 60;
/// Clock skew allowed between the partner and us on `exp` and `iat`, in seconds. Smaller than
/// the token endpoint's: the whole assertion only lives a minute.
pub const CLOCK_SKEW_SECS: i64 = 30;
const MAX_JTI_CHARS: usize = 256;

/// A citizen signed in by a verified assertion: who, since when, and how (from the ID token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertedSignIn {
    pub account_id: String,
    /// Unix seconds of the original sign-in (the ID token's `auth_time`).
    pub auth_time: i64,
    /// The credential components of the ID token's `vot`: "P9.Cp.Cd" gives ["Cp", "Cd"].
    pub credentials: Vec<String>,
    /// The client id of the partner that signed the assertion (RP1).
    pub asserted_by: String,
}

fn invalid(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

fn sso_failed(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::SsoLoginRequired, description)
}

/// Verifies the request's `asserted_login_identity` against every rule in the module docs and
/// returns whom it signs in. Errors are redirect-safe (the redirect URI is already trusted).
pub async fn verify(state: &AppState, request: &AuthorizeRequest) -> Result<AssertedSignIn, OAuthError> {
    let token = request.asserted_login_identity.as_deref().ok_or_else(|| invalid("asserted_login_identity is required"))?;
    let now_ms = clock::now_ms();
    let checked = check_assertion(token, now_ms / 1000)?;
    // Rule 4: iss is RP1, and RP1's registered key signed it.
    let partner = state.db.partner(&checked.issuer).await?;
    let signed = partner.as_ref().is_some_and(|p| signed_by_partner(p, checked.kid.as_deref(), checked.signing_input, &checked.signature));
    if !signed {
        return Err(invalid("The asserted_login_identity is not signed by a key registered for the client named in iss"));
    }
    // Rule 4a: only after the signature, so the pairing cannot be probed without a key.
    let paired = checked.issuer != request.client_id
        && state.db.partner(&request.client_id).await?.is_some_and(|rp2| rp2.sso_from.contains(&checked.issuer));
    if !paired {
        return Err(sso_failed("This service does not accept single sign-on from the service named in iss"));
    }
    // Rule 5: one use; the row lives as long as the assertion could be accepted.
    let remembered_until = checked.exp.saturating_add(CLOCK_SKEW_SECS).saturating_mul(1000);
    if !state.db.record_asserted_identity_jti(&checked.issuer, &checked.jti, remembered_until).await? {
        return Err(invalid("The asserted_login_identity has been used before"));
    }
    // Rule 6: an ID token of RP1's that is still good. Another partner's token is treated as
    // unknown, so an assertion cannot probe which jtis exist.
    let id_token = state.db.live_id_token(&checked.code, now_ms).await?.filter(|t| t.client_id == checked.issuer);
    let Some(id_token) = id_token else {
        return Err(sso_failed("The ID token named by the asserted_login_identity code is unknown, expired or revoked"));
    };
    // Rule 7: SSO never outlives the sign-in it rests on. Without the age bound a chain of
    // assertions (RP1 to RP2 to RP3...) could keep a citizen signed in past the session limit.
    if now_ms / 1000 - id_token.auth_time > state.settings.limits.session_absolute / 1000 {
        return Err(sso_failed("The sign-in behind the asserted ID token is too old; the user must sign in again"));
    }
    if !state.db.account_has_live_session(&id_token.account_id, now_ms).await? {
        return Err(sso_failed("The user is no longer signed in to Citizen ID"));
    }
    let vot = domain::Vector::parse(&id_token.vot).map_err(|e| {
        tracing::warn!(error = %e, "stored ID token vot is not a vector of trust");
        OAuthError::new(ErrorCode::ServerError, "An unexpected error occurred")
    })?;
    Ok(AssertedSignIn {
        account_id: id_token.account_id,
        auth_time: id_token.auth_time,
        credentials: vot.credentials().iter().map(|c| c.as_str().to_string()).collect(),
        asserted_by: checked.issuer,
    })
}

/// Whether a failed verification should give way to the ordinary flow rather than an error:
/// an SSO validation failure (`sso_login_required`) when the partner did not ask for
/// `prompt=none` (Table 1: a blank prompt SSOs if it can, "else the user will be requested to
/// login"). A bad assertion is always an error.
pub fn falls_back_to_sign_in(error: &OAuthError, prompt: Prompt) -> bool {
    error.code == ErrorCode::SsoLoginRequired && prompt != Prompt::None
}

/// Rules 1-4 without the database: `partner` stands in for the registry look-up of `iss`.
/// Returns the (`jti`, `code`) pair that rules 5-6 would look up. No I/O: the fuzzing entry
/// point (`fuzz/fuzz_targets/asserted_identity.rs`).
pub fn check_offline(token: &str, now: i64, partner: &PartnerRecord) -> Result<(String, String), OAuthError> {
    let checked = check_assertion(token, now)?;
    let signed = checked.issuer == partner.client_id
        && signed_by_partner(partner, checked.kid.as_deref(), checked.signing_input, &checked.signature);
    if !signed {
        return Err(invalid("The asserted_login_identity is not signed by a key registered for the client named in iss"));
    }
    Ok((checked.jti, checked.code))
}

/// What a well-formed, in-date assertion says, before its signature is checked.
#[derive(Debug)]
struct CheckedAssertion<'a> {
    issuer: String,
    kid: Option<String>,
    jti: String,
    code: String,
    exp: i64,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Rules 1-3: everything that needs neither keys nor the database. `now` is unix seconds.
fn check_assertion(token: &str, now: i64) -> Result<CheckedAssertion<'_>, OAuthError> {
    let (header, claims, signing_input, signature) =
        split_jws(token).map_err(|_| invalid("The asserted_login_identity is not a signed JWT"))?;
    // Rule 1: RS512 only ("none", HMAC with a public key as secret... are refused unread).
    if header.get("alg").and_then(Value::as_str) != Some("RS512") {
        return Err(invalid("The asserted_login_identity must be signed with RS512"));
    }
    if header.get("crit").is_some() {
        return Err(invalid("The asserted_login_identity uses unsupported critical header parameters"));
    }
    // Rule 2: the claims Table 1 requires.
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let number = |name: &str| claims.get(name).and_then(Value::as_f64).map(|f| f as i64);
    let issuer = text("iss").ok_or_else(|| invalid("The asserted_login_identity has no iss"))?;
    let jti = text("jti").ok_or_else(|| invalid("The asserted_login_identity has no jti"))?;
    if jti.chars().count() > MAX_JTI_CHARS {
        return Err(invalid("The asserted_login_identity jti is too long"));
    }
    let code = text("code").ok_or_else(|| invalid("The asserted_login_identity has no code"))?;
    let iat = number("iat").ok_or_else(|| invalid("The asserted_login_identity has no iat"))?;
    let exp = number("exp").ok_or_else(|| invalid("The asserted_login_identity has no exp"))?;
    // Rule 3: in date, and never valid for more than 60 seconds.
    if exp.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(invalid("The asserted_login_identity has expired"));
    }
    if iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(invalid("The asserted_login_identity iat is in the future"));
    }
    if exp > now.saturating_add(MAX_LIFETIME_SECS + CLOCK_SKEW_SECS) {
        return Err(invalid("The asserted_login_identity exp is more than 60 seconds ahead"));
    }
    if exp <= iat || exp.saturating_sub(iat) > MAX_LIFETIME_SECS {
        return Err(invalid("The asserted_login_identity exp must be after iat and no more than 60 seconds after it"));
    }
    Ok(CheckedAssertion {
        issuer: issuer.to_string(),
        kid: header.get("kid").and_then(Value::as_str).map(String::from),
        jti: jti.to_string(),
        code: code.to_string(),
        exp,
        signing_input,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64url;
    use crate::oidc::client_auth::tests::sign;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn claims() -> Value {
        json!({ "iss": "rp1", "jti": "a1", "code": "id-token-jti", "iat": NOW, "exp": NOW + 60 })
    }

    fn check(token: &str) -> Result<String, &'static str> {
        check_assertion(token, NOW).map(|c| c.code).map_err(|e| e.code.as_str())
    }

    #[test]
    fn accepts_a_well_formed_assertion() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let token = sign(&pair, json!({ "alg": "RS512", "kid": "k1" }), &claims());
        assert_eq!(check(&token), Ok("id-token-jti".into()));
        let checked = check_assertion(&token, NOW).unwrap();
        assert_eq!((checked.issuer.as_str(), checked.jti.as_str(), checked.kid.as_deref()), ("rp1", "a1", Some("k1")));
        // Within the skew either way.
        assert_eq!(check_assertion(&token, NOW + 60 + CLOCK_SKEW_SECS - 1).map(|_| ()), Ok(()));
        assert_eq!(check_assertion(&token, NOW - CLOCK_SKEW_SECS).map(|_| ()), Ok(()));
    }

    #[test]
    fn every_malformed_assertion_is_invalid_request() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let with = |k: &str, v: Value| {
            let mut c = claims();
            if v.is_null() { c.as_object_mut().unwrap().remove(k); } else { c[k] = v; }
            sign(&pair, json!({ "alg": "RS512" }), &c)
        };
        let cases = [
            ("iss", Value::Null),
            ("iss", json!("")),
            ("jti", Value::Null),
            ("jti", json!("x".repeat(300))),
            ("code", Value::Null),
            ("code", json!(7)),
            ("iat", Value::Null),
            ("iat", json!(NOW + 120)),
            ("exp", Value::Null),
            ("exp", json!("soon")),
            ("exp", json!(NOW - 120)),
            ("exp", json!(NOW + 300)),
            ("exp", json!(NOW)),
            ("exp", json!(1e300)),
            ("exp", json!(-1e300)),
        ];
        for (k, v) in cases {
            assert_eq!(check(&with(k, v.clone())), Err("invalid_request"), "{k}={v}");
        }
        // A 60-second lifetime that starts 50 seconds ago is still in date; 61 seconds is not.
        let mut c = claims();
        c["iat"] = json!(NOW - 50);
        c["exp"] = json!(NOW + 10);
        assert!(check(&sign(&pair, json!({ "alg": "RS512" }), &c)).is_ok());
        c["exp"] = json!(NOW + 11);
        assert_eq!(check(&sign(&pair, json!({ "alg": "RS512" }), &c)), Err("invalid_request"));
    }

    #[test]
    fn refuses_other_algorithms() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        assert_eq!(check(&sign(&pair, json!({ "alg": "RS256" }), &claims())), Err("invalid_request"));
        let body = b64url(claims().to_string().as_bytes());
        assert_eq!(check(&format!("{}.{body}.", b64url(br#"{"alg":"none"}"#))), Err("invalid_request"));
        assert_eq!(check(&format!("{}.{body}.c2ln", b64url(br#"{"alg":"HS512"}"#))), Err("invalid_request"));
        assert_eq!(check(&sign(&pair, json!({ "alg": "RS512", "crit": ["x"], "x": 1 }), &claims())), Err("invalid_request"));
        assert_eq!(check("not-a-jwt"), Err("invalid_request"));
    }

    #[test]
    fn check_offline_runs_rules_one_to_four() {
        use crate::oidc::client_auth::tests::jwk_of;
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let token = sign(&pair, json!({ "alg": "RS512", "kid": "k1" }), &claims());
        let rp1: PartnerRecord = serde_json::from_value(json!({
            "client_id": "rp1", "name": "RP1", "redirect_uris": [], "public_keys": [jwk_of(&pair, Some("k1"))],
            "scopes": [], "vectors": [], "refresh_tokens": false, "im1": false, "created_at": 0, "updated_at": 0,
        }))
        .unwrap();
        assert_eq!(check_offline(&token, NOW, &rp1).map_err(|e| e.code.as_str()), Ok(("a1".into(), "id-token-jti".into())));
        // Signed by rp1's key but checked as another partner's: refused (rule 4).
        let rp2 = PartnerRecord { client_id: "rp2".into(), ..rp1.clone() };
        assert_eq!(check_offline(&token, NOW, &rp2).map_err(|e| e.code.as_str()), Err("invalid_request"));
        assert_eq!(check_offline(&token, NOW + 600, &rp1).map_err(|e| e.code.as_str()), Err("invalid_request"));
    }

    #[test]
    fn sso_failures_fall_back_only_without_prompt_none() {
        let sso = sso_failed("x");
        assert!(!falls_back_to_sign_in(&sso, Prompt::None));
        assert!(falls_back_to_sign_in(&sso, Prompt::Default));
        assert!(!falls_back_to_sign_in(&invalid("x"), Prompt::Default));
    }
}
