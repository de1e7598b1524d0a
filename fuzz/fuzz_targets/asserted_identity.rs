//! `asserted_login_identity` (SSO between partners): `split_jws`, rules 1-3 of
//! `oidc::asserted_identity`, then rule 4's signature check against the issuing partner's fixed
//! registered key (`check_offline`, which is `verify` without the database).
//!
//! Invariant: an accepted assertion is a three-part RS512 JWS without `crit`, really signed by
//! the registered key (checked here straight through aws-lc), issued by the partner, with a
//! `jti` of 1 to 256 characters and a `code`, in date, and valid for at most 60 seconds.
#![no_main]

use citizen_id::oidc::asserted_identity::{CLOCK_SKEW_SECS, MAX_LIFETIME_SECS, check_offline};
use citizen_id_fuzz::{CLIENT_ID, KID, NOW, PARTNER, independent_read, jws_seeds, token_of, write_seeds_if_asked};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn seeds() -> Vec<Vec<u8>> {
    let claims = json!({ "iss": CLIENT_ID, "jti": "a-1", "code": "id-token-jti", "iat": NOW, "exp": NOW + 60 });
    let early = json!({ "iss": CLIENT_ID, "jti": "a-2", "code": "c", "iat": NOW - 50, "exp": NOW + 10, "aud": "rp2" });
    let other = json!({ "iss": "someone-else", "jti": "a-3", "code": "c", "iat": NOW, "exp": NOW + 30 });
    jws_seeds(&json!({ "alg": "RS512", "typ": "JWT", "kid": KID }), &[claims, early, other])
}

fuzz_target!(init: write_seeds_if_asked(&seeds()), |data: &[u8]| {
    let Some(token) = token_of(data) else { return };
    let Ok((jti, code)) = check_offline(&token, NOW, &PARTNER) else { return };
    let (header, claims, signed) = independent_read(&token);
    assert!(signed, "accepted an assertion the registered key did not sign");
    assert_eq!(header["alg"], "RS512");
    assert!(header.get("crit").is_none());
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["jti"].as_str(), Some(jti.as_str()));
    assert_eq!(claims["code"].as_str(), Some(code.as_str()));
    assert!((1..=256).contains(&jti.chars().count()) && !code.is_empty());
    let iat = claims["iat"].as_f64().expect("a numeric iat") as i64;
    let exp = claims["exp"].as_f64().expect("a numeric exp") as i64;
    assert!(exp.saturating_add(CLOCK_SKEW_SECS) > NOW, "accepted an expired assertion");
    assert!(iat <= NOW + CLOCK_SKEW_SECS, "accepted an assertion issued in the future");
    assert!(exp > iat && exp.saturating_sub(iat) <= MAX_LIFETIME_SECS, "accepted an assertion living over 60 seconds");
    assert!(exp <= NOW + MAX_LIFETIME_SECS + CLOCK_SKEW_SECS);
});
