//! The client assertion at /token (`private_key_jwt`): `split_jws`, the header and claim checks,
//! then the signature against the partner's fixed registered key
//! (`oidc::client_auth::check_offline`, which is `authenticate_client` without the database).
//!
//! Invariant: an accepted assertion is a three-part RS512 JWS without `crit` that really is
//! signed by the registered key (checked here straight through aws-lc), whose `iss` and `sub`
//! are the partner, whose `jti` is 1 to 256 characters, which has an `iat`, whose `exp` is not
//! past and at most the lifetime cap after `iat`, and whose `aud` names only the token endpoint
//! or the issuer. Anything else must be refused without a panic.
#![no_main]

use citizen_id::oidc::client_auth::{CLOCK_SKEW_SECS, JWT_BEARER, MAX_ASSERTION_LIFETIME_SECS, check_offline};
use citizen_id_fuzz::{CLIENT_ID, ISSUER, KID, NOW, PARTNER, TOKEN_ENDPOINT, independent_read, jws_seeds, token_of, write_seeds_if_asked};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn seeds() -> Vec<Vec<u8>> {
    let claims = json!({ "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_ENDPOINT, "jti": "j-1", "iat": NOW, "exp": NOW + 300 });
    let issuer = json!({ "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": [ISSUER], "jti": "j-4", "iat": NOW, "exp": NOW + 3600 });
    let mut list = json!({ "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": ["https://other.example", TOKEN_ENDPOINT], "jti": "j-2", "exp": NOW + 60, "nbf": NOW - 5 });
    let expired = json!({ "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_ENDPOINT, "jti": "j-3", "exp": NOW - 3600 });
    list["x"] = json!({ "nested": [1, 2.5, null, true] });
    jws_seeds(&json!({ "alg": "RS512", "typ": "JWT", "kid": KID }), &[claims, list, expired, issuer])
}

fuzz_target!(init: write_seeds_if_asked(&seeds()), |data: &[u8]| {
    let Some(token) = token_of(data) else { return };
    for form_client_id in [None, Some(CLIENT_ID)] {
        let Ok(jti) = check_offline(Some(JWT_BEARER), Some(&token), form_client_id, &[TOKEN_ENDPOINT, ISSUER], NOW, &PARTNER) else {
            continue;
        };
        let (header, claims, signed) = independent_read(&token);
        assert!(signed, "accepted an assertion the registered key did not sign");
        assert_eq!(header["alg"], "RS512");
        assert!(header.get("crit").is_none());
        assert_eq!(claims["iss"], CLIENT_ID);
        assert_eq!(claims["sub"], CLIENT_ID);
        assert_eq!(claims["jti"].as_str(), Some(jti.as_str()));
        assert!((1..=256).contains(&jti.chars().count()));
        let exp = claims["exp"].as_f64().expect("a numeric exp") as i64;
        assert!(exp.saturating_add(CLOCK_SKEW_SECS) > NOW, "accepted an expired assertion");
        let iat = claims["iat"].as_f64().expect("an iat") as i64;
        assert!(exp - iat <= MAX_ASSERTION_LIFETIME_SECS, "accepted an assertion past the lifetime cap");
        let ours = |a: &Value| a == TOKEN_ENDPOINT || a == ISSUER;
        let aud_ok = match &claims["aud"] {
            Value::Array(list) => list.len() == 1 && ours(&list[0]),
            other => ours(other),
        };
        assert!(aud_ok, "accepted an assertion for another audience");
    }
    // Only jwt-bearer is a client_assertion_type.
    assert!(check_offline(Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"), Some(&token), None, &[TOKEN_ENDPOINT, ISSUER], NOW, &PARTNER).is_err());
});
