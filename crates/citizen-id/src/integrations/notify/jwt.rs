//! The small HS256 JWT that GOV.UK Notify uses for API authentication.
//!
//! Notify needs only `{"iss": service_id, "iat": seconds}` signed with the API
//! key's secret, so this is written by hand (base64url without padding and
//! `aws_lc_rs::hmac`) rather than pulling a general JWT library into the
//! notification path. [`encode`] is used by the client, [`verify`] by the
//! simulator; the simulator's checks and messages follow Notify's API
//! (`notifications-api` `auth.py` and `notifications_python_client`).

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// Header exactly as Notify's own clients send it.
const HEADER_JSON: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// Notify rejects tokens whose `iat` is further than this from its clock.
pub(super) const MAX_CLOCK_SKEW_SECS: i64 = 30;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

/// Builds `header.claims.signature` for `service_id`, signed with `secret`
/// (the secret's UTF-8 bytes are the HMAC key, as in Notify's clients).
pub(super) fn encode(service_id: &str, secret: &str, iat: i64) -> String {
    let claims = serde_json::to_vec(&Claims {
        iss: service_id,
        iat,
    })
    .expect("serialising two plain fields cannot fail");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER_JSON),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Why a token was refused; [`TokenError::message`] is Notify's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenError {
    Malformed,
    MissingIss,
    UnknownService,
    NotHs256,
    BadSignature,
    MissingIat,
    ClockSkew,
}

impl TokenError {
    pub(super) fn message(self) -> &'static str {
        match self {
            TokenError::Malformed => "Invalid token: signature, api token is not valid",
            TokenError::MissingIss => "Invalid token: iss field not provided",
            TokenError::UnknownService => "Invalid token: service not found",
            TokenError::NotHs256 => "Invalid token: algorithm used is not HS256",
            TokenError::BadSignature => "Invalid token: API key not found",
            TokenError::MissingIat => "Invalid token: iat field not provided",
            TokenError::ClockSkew => {
                "Error: Your system clock must be accurate to within 30 seconds"
            }
        }
    }
}

fn decode_json(part: &str) -> Result<serde_json::Map<String, serde_json::Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Checks a token the way Notify does, in Notify's order: the issuer picks
/// the service, then the algorithm and signature are checked against that
/// service's secret, then `iat` must be within ±30 s of `now_secs`.
pub(super) fn verify(
    token: &str,
    service_id: &str,
    secret: &str,
    now_secs: i64,
) -> Result<(), TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header = decode_json(h)?;
    let claims = decode_json(c)?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::Malformed)?;

    let iss = claims
        .get("iss")
        .and_then(|v| v.as_str())
        .ok_or(TokenError::MissingIss)?;
    if iss != service_id {
        return Err(TokenError::UnknownService);
    }
    // Refusing anything but HS256 also refuses `alg: none` tokens.
    if header.get("alg").and_then(|v| v.as_str()) != Some("HS256") {
        return Err(TokenError::NotHs256);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let signing_input = &token[..h.len() + 1 + c.len()];
    // `hmac::verify` compares in constant time.
    hmac::verify(&key, signing_input.as_bytes(), &signature)
        .map_err(|_| TokenError::BadSignature)?;

    let iat = claims
        .get("iat")
        .and_then(|v| v.as_f64())
        .ok_or(TokenError::MissingIat)?;
    if (iat - now_secs as f64).abs() > MAX_CLOCK_SKEW_SECS as f64 {
        return Err(TokenError::ClockSkew);
    }
    Ok(())
}

/// Seconds since the Unix epoch, for `iat`.
pub(super) fn now_unix_secs() -> i64 {
    (super::now_unix_ms() / 1000) as i64
}
