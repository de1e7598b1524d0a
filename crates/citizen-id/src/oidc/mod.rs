//! The partner-facing OpenID Connect protocol.
pub mod asserted_identity;
pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod issue;
pub mod keys;
pub mod token;
pub mod userinfo;
