//! The partner registry's rules (F2): what a partner registration must satisfy before it is
//! stored. The operator CLI is the only writer today; a back office will call the same code.

use domain::{RedirectUri, Scope, Vector};

use crate::clock;
use crate::config::Mode;
use crate::oidc::client_auth::public_jwk_from_pem_or_jwk;
use crate::store::partners::PartnerRecord;

pub const MAX_REDIRECT_URIS: usize = 10;

/// Whether `mode` may use the redirect URI `uri` (already a valid `RedirectUri`). The
/// Federation spec ("Client Redirects"): "HTTP URIs are NOT permitted". The sandpit allows
/// plain http to the partner's own machine (RFC 8252 7.3) so a partner can develop against it;
/// `serve` does not, neither at registration (`check_redirect_uris_for`) nor at `/authorize`
/// (`usable_in`), which treats such a URI as unregistered.
pub fn redirect_uri_permitted(uri: &str, mode: Mode) -> bool {
    mode == Mode::Sandpit || uri.starts_with("https://")
}

/// Refuses a registration holding a redirect URI `mode` may not use.
pub fn check_redirect_uris_for(record: &PartnerRecord, mode: Mode) -> Result<(), String> {
    match record.redirect_uris.iter().find(|u| !redirect_uri_permitted(u, mode)) {
        None => Ok(()),
        Some(u) => Err(format!(
            "redirect URI {u}: http:// redirect URIs are only for a sandpit (NHS login: \"HTTP URIs are NOT permitted\"); \
             use https://, or pass --sandpit when registering with a sandpit"
        )),
    }
}

/// The partner as `/authorize` in `mode` sees it: redirect URIs it may not use are dropped, so
/// a request naming one gets the page for an unregistered redirect URI.
pub fn usable_in(mut record: PartnerRecord, mode: Mode) -> PartnerRecord {
    record.redirect_uris.retain(|u| redirect_uri_permitted(u, mode));
    record
}

/// A registration as an operator gives it.
#[derive(Debug, Clone, Default)]
pub struct PartnerInput {
    pub client_id: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// PEM or JWK texts.
    pub public_keys: Vec<String>,
    pub scopes: String,
    pub vectors: Vec<String>,
    pub refresh_tokens: bool,
    pub im1: bool,
    /// Client ids whose `asserted_login_identity` this partner accepts (SSO pairing).
    pub sso_from: Vec<String>,
}

fn random_client_id() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..24).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn is_client_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates and builds the record to store.
pub fn build(input: PartnerInput) -> Result<PartnerRecord, String> {
    let name = input.name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err("--name is required (at most 100 characters)".into());
    }
    if input.redirect_uris.is_empty() || input.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(format!("between 1 and {MAX_REDIRECT_URIS} --redirect-uri values are required"));
    }
    let redirect_uris = input
        .redirect_uris
        .iter()
        .map(|u| RedirectUri::parse(u).map(|r| r.as_str().to_string()).map_err(|e| format!("redirect URI {u}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if input.public_keys.is_empty() {
        return Err("--public-key is required (private_key_jwt is the only client authentication)".into());
    }
    let public_keys = input.public_keys.iter().map(|k| public_jwk_from_pem_or_jwk(k)).collect::<Result<Vec<_>, _>>()?;
    let mut scopes = Vec::new();
    for s in input.scopes.split_whitespace() {
        let scope = Scope::parse(s).map_err(|e| format!("scope {s}: {e}"))?;
        if scope == Scope::GpIntegrationCredentials && !input.im1 {
            return Err("gp_integration_credentials needs --im1".into());
        }
        scopes.push(scope.as_str().to_string());
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    if input.vectors.is_empty() {
        return Err("at least one --vtr is required, e.g. --vtr P9.Cp.Cd".into());
    }
    let vectors = input
        .vectors
        .iter()
        .map(|v| Vector::parse(v).map(|v| v.as_str().to_string()).map_err(|e| format!("vector {v}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let client_id = match input.client_id {
        Some(id) if is_client_id(&id) => id,
        Some(id) => return Err(format!("client id {id:?} must be 1-64 letters, digits, - or _")),
        // Letters and digits only: a generated id must never start with '-' (CLI flags) or
        // need escaping anywhere a partner pastes it.
        None => random_client_id(),
    };
    let mut sso_from = Vec::new();
    for from in &input.sso_from {
        if !is_client_id(from) {
            return Err(format!("--sso-from {from:?} is not a client id"));
        }
        if *from == client_id {
            return Err("--sso-from cannot name the partner itself: an assertion is for another partner".into());
        }
        if !sso_from.contains(from) {
            sso_from.push(from.clone());
        }
    }
    let now = clock::now_ms();
    Ok(PartnerRecord {
        client_id,
        name,
        redirect_uris,
        public_keys,
        scopes,
        vectors,
        refresh_tokens: input.refresh_tokens,
        im1: input.im1,
        sso_from,
        created_at: now,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PartnerInput {
        let (_, jwk) = crate::oidc::keys::generate_rsa_pkcs8().unwrap();
        PartnerInput {
            client_id: Some("demo".into()),
            name: "Demo".into(),
            redirect_uris: vec!["https://rp.example/cb".into()],
            public_keys: vec![jwk.to_string()],
            scopes: "openid email".into(),
            vectors: vec!["P0.Cp.Cd".into()],
            ..PartnerInput::default()
        }
    }

    #[test]
    fn refuses_bad_registrations() {
        assert!(build(input()).is_ok());
        let mut i = input();
        i.redirect_uris = (0..11).map(|n| format!("https://rp.example/cb{n}")).collect();
        assert!(build(i).unwrap_err().contains("between 1 and 10"));
        let mut i = input();
        i.redirect_uris = vec!["http://rp.example/cb".into()];
        assert!(build(i).is_err());
        let mut i = input();
        i.vectors = vec!["P7.Cx".into()];
        assert!(build(i).is_err());
        let mut i = input();
        i.scopes = "openid gp_integration_credentials".into();
        assert!(build(i).unwrap_err().contains("--im1"));
        let mut i = input();
        i.sso_from = vec!["demo".into()];
        assert!(build(i).unwrap_err().contains("itself"));
        let mut i = input();
        i.sso_from = vec!["bad id".into()];
        assert!(build(i).is_err());
        let mut i = input();
        i.sso_from = vec!["rp1".into(), "rp1".into()];
        assert_eq!(build(i).unwrap().sso_from, ["rp1"]);
    }

    #[test]
    fn http_localhost_is_for_the_sandpit_only() {
        let mut i = input();
        i.redirect_uris = vec!["https://rp.example/cb".into(), "http://localhost:3000/cb".into()];
        let record = build(i).unwrap();
        assert!(check_redirect_uris_for(&record, Mode::Sandpit).is_ok());
        let err = check_redirect_uris_for(&record, Mode::Production).unwrap_err();
        assert!(err.contains("http://localhost:3000/cb") && err.contains("HTTP URIs are NOT permitted") && err.contains("--sandpit"), "{err}");
        assert_eq!(usable_in(record.clone(), Mode::Production).redirect_uris, ["https://rp.example/cb"]);
        assert_eq!(usable_in(record, Mode::Sandpit).redirect_uris.len(), 2);
    }
}
