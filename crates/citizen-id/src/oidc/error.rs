//! Protocol errors. One error code enum for every channel; the *channel* (redirect to the
//! partner, an HTML page, a JSON body, a `WWW-Authenticate` header) is chosen by the type that
//! carries the code, and only the web layer turns it into a response. Descriptions are ASCII
//! text safe to show a partner; internal detail is logged, never sent.

use std::fmt;

/// Error codes of the Federation spec (Tables 5, 10 and 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    SsoLoginRequired,
    ServerError,
    TemporarilyUnavailable,
    InteractionRequired,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    InvalidToken,
    InsufficientScope,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::SsoLoginRequired => "sso_login_required",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::RegistrationNotSupported => "registration_not_supported",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol error: the code and a description a partner may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError { code, description: description.into() }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

/// An authorization endpoint error and the channel it must travel on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show the citizen a page; never redirect
    /// (RFC 6749 section 4.1.2.1), or the endpoint becomes an open redirector.
    Untrusted { reason: String },
    /// Everything else goes back to the partner's verified redirect URI.
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

impl AuthorizeError {
    /// The partner redirect carrying this error (`None` for untrusted requests).
    pub fn redirect_location(&self) -> Option<String> {
        match self {
            AuthorizeError::Untrusted { .. } => None,
            AuthorizeError::Redirect { redirect_uri, state, error } => {
                let mut url = url::Url::parse(redirect_uri).ok()?;
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("error", error.code.as_str());
                    q.append_pair("error_description", &error.description);
                    if let Some(s) = state {
                        q.append_pair("state", s);
                    }
                }
                Some(url.into())
            }
        }
    }
}
