//! The OpenID Provider metadata (`/.well-known/openid-configuration`, Federation spec 3.3;
//! OpenID Connect Discovery 1.0 section 3) and the self-hosted trust mark (spec 5.1.5;
//! RFC 8485 section 5).

use domain::Scope;
use serde_json::{Value, json};

use super::token::issuer_host;
use crate::config::Settings;

/// Spec 5.1.6 Table 21: the vectors of trust the service supports.
pub const SUPPORTED_VECTORS: [&str; 12] = [
    "P0.Cp", "P0.Cp.Cd", "P0.Cp.Ck", "P0.Cm", "P5.Cp", "P5.Cp.Cd", "P5.Cp.Ck", "P5.Cm", "P9.Cp", "P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm",
];

/// Claims about the token itself (spec Tables 16 and 17), released whatever the scope.
const TOKEN_CLAIMS: [&str; 10] = ["iss", "sub", "aud", "exp", "iat", "jti", "auth_time", "nonce", "vot", "vtm"];

/// Every claim we may release: the token claims, then each scope's claims (Table 11), once.
pub fn claims_supported() -> Vec<&'static str> {
    let mut claims: Vec<&'static str> = TOKEN_CLAIMS.to_vec();
    for claim in Scope::all().iter().flat_map(|s| s.claims().iter().copied()) {
        if !claims.contains(&claim) {
            claims.push(claim);
        }
    }
    claims
}

/// The discovery document. Endpoints are absolute URLs under the issuer (spec 3.3).
pub fn discovery_document(settings: &Settings) -> Value {
    let scopes: Vec<&str> = Scope::all().iter().map(Scope::as_str).collect();
    json!({
        "issuer": settings.issuer,
        "authorization_endpoint": settings.endpoint("/authorize"),
        "token_endpoint": settings.endpoint("/token"),
        "userinfo_endpoint": settings.endpoint("/userinfo"),
        "jwks_uri": settings.endpoint("/.well-known/jwks.json"),
        "scopes_supported": scopes,
        // Spec 2.1 and Table 1: the authorization code flow with query responses only.
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        // Spec 4.1 / 4.5: RS512 only.
        "id_token_signing_alg_values_supported": ["RS512"],
        // Spec 7.2: private_key_jwt only ("none" is not supported).
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS512"],
        "claims_supported": claims_supported(),
        "code_challenge_methods_supported": ["S256"],
        // Spec 5.1: vectors of trust (the `vtr` parameter) instead of acr values.
        "vtr_supported": SUPPORTED_VECTORS,
        "prompt_values_supported": ["none", "login"],
        "display_values_supported": ["page", "touch"],
        // Spec Table 5: request objects are not supported; Table 1: no claims parameter.
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    })
}

/// Spec 5.1.5: the trust mark naming the components of the trust framework we assert.
pub fn trustmark(settings: &Settings) -> Value {
    json!({
        "idp": settings.issuer,
        "trustmark_provider": settings.issuer,
        "P": ["P0", "P5", "P9"],
        "C": ["Cp", "Cd", "Cm"],
    })
}

/// Whether `/trustmark/{host}` names this issuer's trust mark (`vtm` points there).
pub fn is_trustmark_host(settings: &Settings, host: &str) -> bool {
    let ours = issuer_host(&settings.issuer);
    !ours.is_empty() && ours.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::token::tests::settings;

    #[test]
    fn document_lists_endpoints_under_the_issuer() {
        let doc = discovery_document(&settings(String::new()));
        assert_eq!(doc["issuer"], "https://id.example");
        assert_eq!(doc["token_endpoint"], "https://id.example/token");
        assert_eq!(doc["jwks_uri"], "https://id.example/.well-known/jwks.json");
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS512"]));
        assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["private_key_jwt"]));
        assert_eq!(doc["vtr_supported"].as_array().unwrap().len(), 12);
        assert_eq!(doc["scopes_supported"].as_array().unwrap().len(), Scope::all().len());
        assert_eq!(doc["request_parameter_supported"], false);
    }

    #[test]
    fn claims_cover_every_scope_and_the_token_claims() {
        let claims = claims_supported();
        for c in ["sub", "vot", "vtm", "nhs_number", "identity_proofing_level", "client_user_metadata", "phone_number_pds_matched"] {
            assert!(claims.contains(&c), "{c}");
        }
        let mut unique = claims.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), claims.len());
    }

    #[test]
    fn trustmark_is_served_for_the_issuer_host_only() {
        let s = settings(String::new());
        assert_eq!(trustmark(&s)["P"], json!(["P0", "P5", "P9"]));
        assert_eq!(trustmark(&s)["idp"], "https://id.example");
        assert!(is_trustmark_host(&s, "id.example"));
        assert!(!is_trustmark_host(&s, "evil.example"));
        // Every vector we advertise parses as a domain vector.
        for v in SUPPORTED_VECTORS {
            assert!(domain::Vector::parse(v).is_ok(), "{v}");
        }
    }
}
