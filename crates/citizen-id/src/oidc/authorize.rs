//! The authorization request (Federation spec section 3.4.1, OIDC Core 3.1.2.1), parsed by a
//! pipeline of small named checks into a validated `AuthorizeRequest`. Until the client and
//! redirect URI are proven, errors are `Untrusted` (a page); after that they redirect.

use std::collections::HashMap;

use domain::{ScopeSet, VectorRequest};
use serde::{Deserialize, Serialize};

use super::error::{AuthorizeError, ErrorCode, OAuthError};
use crate::store::partners::PartnerRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prompt {
    /// SSO if the session is good enough, otherwise sign in.
    Default,
    /// SSO or an error, never a page.
    None,
    /// Sign in again whatever the session.
    Login,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Display {
    Page,
    Touch,
}

/// A validated authorization request. Held in the citizen's session while they sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    /// Canonical scope string (unknown scopes dropped, per the spec).
    pub scope: String,
    /// Canonical `vtr` JSON array.
    pub vtr: String,
    pub prompt: Prompt,
    pub display: Display,
    pub allow_registration: bool,
    pub code_challenge: Option<String>,
    pub asserted_login_identity: Option<String>,
    /// The partner's name as citizens see it (for "Go back to ..." when something fails and
    /// the partner record cannot be read).
    #[serde(default)]
    pub client_name: String,
}

impl AuthorizeRequest {
    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.scope).expect("validated when the request was parsed")
    }

    pub fn vectors(&self) -> VectorRequest {
        VectorRequest::parse(&self.vtr).expect("validated when the request was parsed")
    }

    /// An error to send back to this request's partner.
    pub fn error(&self, code: ErrorCode, description: &str) -> AuthorizeError {
        AuthorizeError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: Some(self.state.clone()),
            error: OAuthError::new(code, description),
        }
    }
}

/// Raw parameters: every value of every name, so repeats can be refused (RFC 6749 3.1).
pub type RawParams = Vec<(String, String)>;

struct Params(HashMap<String, Vec<String>>);

impl Params {
    fn new(raw: RawParams) -> Params {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in raw {
            map.entry(k).or_default().push(v);
        }
        Params(map)
    }

    /// The single value of `name`; `Err` when repeated. Empty values count as absent.
    fn one(&self, name: &str) -> Result<Option<&str>, String> {
        match self.0.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) if v.is_empty() => Ok(None),
            Some([v]) => Ok(Some(v.as_str())),
            Some(_) => Err(format!("The {name} parameter is repeated")),
        }
    }
}

/// Parses and validates an authorization request against the partner registry.
/// `lookup` finds a partner by client id.
pub fn parse(raw: RawParams, partner: impl FnOnce(&str) -> Option<PartnerRecord>) -> Result<(AuthorizeRequest, PartnerRecord), AuthorizeError> {
    let params = Params::new(raw);
    let (partner, redirect_uri) = check_client_and_redirect_uri(&params, partner)?;
    // From here on the redirect URI is trusted: errors go back to the partner.
    let state = params.one("state").ok().flatten().map(String::from);
    let fail = |code: ErrorCode, description: String| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error: OAuthError::new(code, description),
    };
    let one = |name: &str| params.one(name).map_err(|d| fail(ErrorCode::InvalidRequest, d));

    check_unsupported_request_objects(&params).map_err(|(c, d)| fail(c, d))?;
    check_response_type(one("response_type")?).map_err(|(c, d)| fail(c, d))?;
    check_response_mode(one("response_mode")?).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;
    let state = one("state")?.ok_or_else(|| fail(ErrorCode::InvalidRequest, "The state parameter is required".into()))?;
    let nonce = one("nonce")?.ok_or_else(|| fail(ErrorCode::InvalidRequest, "The nonce parameter is required".into()))?;
    check_lengths(state, nonce, one("asserted_login_identity")?).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;
    let scope = check_scope(one("scope")?, &partner).map_err(|d| fail(ErrorCode::InvalidScope, d))?;
    let vtr = check_vtr(one("vtr")?, &partner).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;
    let prompt = check_prompt(one("prompt")?).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;
    let display = check_display(one("display")?).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;
    let code_challenge =
        check_pkce(one("code_challenge")?, one("code_challenge_method")?).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;
    let request = AuthorizeRequest {
        client_id: partner.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state: state.to_string(),
        nonce: nonce.to_string(),
        scope: scope.as_string(),
        vtr: vtr.as_str().to_string(),
        prompt,
        display,
        // Spec Table 1: only the exact value "false" hides registration.
        allow_registration: one("allow_registration")? != Some("false"),
        code_challenge,
        asserted_login_identity: one("asserted_login_identity")?.map(String::from),
        client_name: partner.name.clone(),
    };
    Ok((request, partner))
}

/// OIDC Core 3.1.2.2: the client must be registered and the redirect URI an exact match of one
/// registered for it (Federation spec 3.4.2). Failing either is never redirected.
fn check_client_and_redirect_uri(
    params: &Params,
    partner: impl FnOnce(&str) -> Option<PartnerRecord>,
) -> Result<(PartnerRecord, String), AuthorizeError> {
    let untrusted = |reason: &str| AuthorizeError::Untrusted { reason: reason.to_string() };
    let client_id = params.one("client_id").map_err(|_| untrusted("The client_id parameter is repeated"))?;
    let client_id = client_id.ok_or_else(|| untrusted("The request does not say which service it comes from (no client_id)"))?;
    let partner = partner(client_id).ok_or_else(|| untrusted("The service that sent you here is not registered with Citizen ID"))?;
    let redirect_uri = params.one("redirect_uri").map_err(|_| untrusted("The redirect_uri parameter is repeated"))?;
    let redirect_uri = redirect_uri.ok_or_else(|| untrusted("The request has no redirect_uri"))?;
    if !partner.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(untrusted("The address the service asked us to return you to is not registered for it"));
    }
    Ok((partner.clone(), redirect_uri.to_string()))
}

/// Spec Table 5: request objects and dynamic registration are not supported.
fn check_unsupported_request_objects(params: &Params) -> Result<(), (ErrorCode, String)> {
    let present = |n: &str| params.0.contains_key(n);
    if present("request") {
        return Err((ErrorCode::RequestNotSupported, "Request objects are not supported".into()));
    }
    if present("request_uri") {
        return Err((ErrorCode::RequestUriNotSupported, "request_uri is not supported".into()));
    }
    if present("registration") {
        return Err((ErrorCode::RegistrationNotSupported, "Dynamic registration is not supported".into()));
    }
    Ok(())
}

/// The longest `state` and `nonce` accepted. The request is kept in the citizen's session
/// while they sign in, so its size is bounded: values opaque to us, as long as partners
/// need (a signed state or a hash), and far from the 60 KB a script could send. Keycloak and
/// most providers bound them likewise.
pub const MAX_STATE_CHARS: usize = 2048;
pub const MAX_NONCE_CHARS: usize = 512;
/// An `asserted_login_identity` is a short RS512 JWT: about 1 KB.
pub const MAX_ASSERTION_CHARS: usize = 8192;

fn check_lengths(state: &str, nonce: &str, assertion: Option<&str>) -> Result<(), String> {
    if state.len() > MAX_STATE_CHARS {
        return Err(format!("The state parameter must be {MAX_STATE_CHARS} characters or fewer"));
    }
    if nonce.len() > MAX_NONCE_CHARS {
        return Err(format!("The nonce parameter must be {MAX_NONCE_CHARS} characters or fewer"));
    }
    if assertion.is_some_and(|a| a.len() > MAX_ASSERTION_CHARS) {
        return Err(format!("The asserted_login_identity parameter must be {MAX_ASSERTION_CHARS} characters or fewer"));
    }
    Ok(())
}

/// Spec Table 1: only the authorization code flow.
fn check_response_type(value: Option<&str>) -> Result<(), (ErrorCode, String)> {
    match value {
        Some("code") => Ok(()),
        None => Err((ErrorCode::InvalidRequest, "The response_type parameter is required".into())),
        Some(_) => Err((ErrorCode::UnsupportedResponseType, "Only response_type=code is supported".into())),
    }
}

/// Spec Table 1: only the default query response mode.
fn check_response_mode(value: Option<&str>) -> Result<(), String> {
    match value {
        None | Some("query") => Ok(()),
        Some(_) => Err("Only response_mode=query is supported".into()),
    }
}

/// Spec 3.4.1.1: `openid` is required, unknown scopes are ignored, and a partner may only ask
/// for scopes it is registered for (`gp_integration_credentials` also needs IM1 access).
fn check_scope(value: Option<&str>, partner: &PartnerRecord) -> Result<ScopeSet, String> {
    let scopes = ScopeSet::parse(value.unwrap_or("")).map_err(|e| e.to_string())?;
    // scopes-and-claims.md note 3: the two demographic scopes are mutually exclusive.
    if scopes.contains(domain::Scope::Profile) && scopes.contains(domain::Scope::BasicDemographics) {
        return Err("The profile and basic_demographics scopes cannot be requested together".into());
    }
    for scope in scopes.iter() {
        let name = scope.as_str();
        if !partner.scopes.iter().any(|s| s == name) {
            return Err(format!("The scope {name} is not permitted for this client"));
        }
        if scope == domain::Scope::GpIntegrationCredentials && !partner.im1 {
            return Err("The gp_integration_credentials scope needs IM1 access".into());
        }
    }
    Ok(scopes)
}

/// Spec 5.1.3: vectors are ORed, components ANDed; the default when omitted is
/// ["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]; every vector must be registered for the partner.
fn check_vtr(value: Option<&str>, partner: &PartnerRecord) -> Result<VectorRequest, String> {
    let vtr = match value {
        Some(v) => VectorRequest::parse(v).map_err(|e| format!("The vtr parameter is invalid: {e}"))?,
        None => VectorRequest::default_request(),
    };
    for vector in vtr.vectors() {
        if !partner.vectors.iter().any(|v| v == vector.as_str()) {
            return Err(format!("The vector of trust {} is not permitted for this client", vector.as_str()));
        }
    }
    Ok(vtr)
}

/// Spec Table 1: blank, `none` or `login`.
fn check_prompt(value: Option<&str>) -> Result<Prompt, String> {
    match value {
        None => Ok(Prompt::Default),
        Some("none") => Ok(Prompt::None),
        Some("login") => Ok(Prompt::Login),
        Some(other) => Err(format!("prompt={other} is not supported")),
    }
}

/// Spec Table 1: `page` (default) or `touch`.
fn check_display(value: Option<&str>) -> Result<Display, String> {
    match value {
        None | Some("page") => Ok(Display::Page),
        Some("touch") => Ok(Display::Touch),
        Some(other) => Err(format!("display={other} is not supported")),
    }
}

/// RFC 7636 with RFC 9700 2.1.1: PKCE is optional, but only S256; `plain` (stated, or implied
/// by a challenge with no method) is refused so it cannot be downgraded.
fn check_pkce(challenge: Option<&str>, method: Option<&str>) -> Result<Option<String>, String> {
    match (challenge, method) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err("code_challenge_method given without code_challenge".into()),
        (Some(_), None | Some("plain")) => Err("PKCE method plain is not allowed; use S256".into()),
        (Some(c), Some("S256")) => {
            let valid = (43..=128).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if valid { Ok(Some(c.to_string())) } else { Err("code_challenge is not a valid S256 challenge".into()) }
        }
        (Some(_), Some(_)) => Err("Only code_challenge_method=S256 is supported".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner() -> PartnerRecord {
        PartnerRecord {
            client_id: "demo".into(),
            name: "Demo".into(),
            redirect_uris: vec!["https://rp.example/cb".into()],
            public_keys: vec![],
            scopes: vec!["openid".into(), "profile".into(), "email".into(), "basic_demographics".into()],
            vectors: vec!["P0.Cp.Cd".into(), "P9.Cp.Cd".into()],
            refresh_tokens: true,
            im1: false,
            sso_from: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    fn params(extra: &[(&str, &str)]) -> RawParams {
        let mut p: Vec<(String, String)> = [
            ("client_id", "demo"),
            ("redirect_uri", "https://rp.example/cb"),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("state", "s1"),
            ("nonce", "n1"),
            ("vtr", "[\"P0.Cp.Cd\"]"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.retain(|(name, _)| name != k);
            if !v.is_empty() {
                p.push((k.to_string(), v.to_string()));
            }
        }
        p
    }

    fn code_of(r: Result<(AuthorizeRequest, PartnerRecord), AuthorizeError>) -> &'static str {
        match r {
            Err(AuthorizeError::Redirect { error, .. }) => error.code.as_str(),
            Err(AuthorizeError::Untrusted { .. }) => "untrusted",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn accepts_a_valid_request() {
        let (req, _) = parse(params(&[]), |_| Some(partner())).unwrap();
        assert_eq!(req.scope, "openid email");
        assert_eq!(req.prompt, Prompt::Default);
        assert!(req.allow_registration);
        // Spec Table 1's display values: `page` (also the default) and `touch`.
        assert_eq!(req.display, Display::Page);
        for (value, want) in [("page", Display::Page), ("touch", Display::Touch)] {
            let (req, _) = parse(params(&[("display", value)]), |_| Some(partner())).unwrap();
            assert_eq!(req.display, want, "display={value}");
        }
    }

    #[test]
    fn each_check_gives_the_spec_error() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("redirect_uri", "https://evil.example/cb")], "untrusted"),
            (&[("client_id", "")], "untrusted"),
            (&[("response_type", "token")], "unsupported_response_type"),
            (&[("response_type", "")], "invalid_request"),
            (&[("state", "")], "invalid_request"),
            (&[("nonce", "")], "invalid_request"),
            (&[("scope", "email")], "invalid_scope"),
            (&[("scope", "openid phone")], "invalid_scope"),
            (&[("scope", "openid profile basic_demographics")], "invalid_scope"),
            (&[("vtr", "[\"P5.Cp\"]")], "invalid_request"),
            (&[("vtr", "")], "invalid_request"), // default P9 set is not all registered
            (&[("vtr", "nonsense")], "invalid_request"),
            (&[("prompt", "consent")], "invalid_request"),
            (&[("display", "popup")], "invalid_request"),
            (&[("code_challenge", "abcdefghijabcdefghijabcdefghijabcdefghij123"), ("code_challenge_method", "plain")], "invalid_request"),
            (&[("code_challenge", "abcdefghijabcdefghijabcdefghijabcdefghij123")], "invalid_request"),
            (&[("request", "eyJ")], "request_not_supported"),
            (&[("request_uri", "https://x")], "request_uri_not_supported"),
        ];
        for (extra, want) in cases {
            assert_eq!(code_of(parse(params(extra), |_| Some(partner()))), *want, "case {extra:?}");
        }
        assert_eq!(code_of(parse(params(&[]), |_| None)), "untrusted");
    }

    #[test]
    fn bounds_what_a_request_may_store() {
        let long_state = "s".repeat(MAX_STATE_CHARS + 1);
        let long_nonce = "n".repeat(MAX_NONCE_CHARS + 1);
        assert_eq!(code_of(parse(params(&[("state", &long_state)]), |_| Some(partner()))), "invalid_request");
        assert_eq!(code_of(parse(params(&[("nonce", &long_nonce)]), |_| Some(partner()))), "invalid_request");
        let longest = "s".repeat(MAX_STATE_CHARS);
        assert_eq!(code_of(parse(params(&[("state", &longest)]), |_| Some(partner()))), "ok");
    }

    #[test]
    fn refuses_repeated_parameters() {
        let mut p = params(&[]);
        p.push(("state".into(), "again".into()));
        assert_eq!(code_of(parse(p, |_| Some(partner()))), "invalid_request");
        let mut p = params(&[]);
        p.push(("redirect_uri".into(), "https://rp.example/cb".into()));
        assert_eq!(code_of(parse(p, |_| Some(partner()))), "untrusted");
    }

    #[test]
    fn ignores_unknown_scopes_and_reads_allow_registration() {
        let (req, _) = parse(params(&[("scope", "openid email made_up"), ("allow_registration", "false")]), |_| Some(partner())).unwrap();
        assert_eq!(req.scope, "openid email");
        assert!(!req.allow_registration);
    }
}
