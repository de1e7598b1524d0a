//! Citizen accounts: registration, sign-in, one-time codes, recovery and consent.
//! No HTTP here: the web layer calls these and renders what they return.

pub mod codes;
pub mod journey;
pub mod limits;
pub mod messages;
pub mod reauth;
pub mod signin;
pub mod throttle;

/// What a citizen is told when the database is down mid-journey; nothing has been half-done.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<anyhow::Error> for AccountError {
    fn from(e: anyhow::Error) -> Self {
        AccountError::Internal(e.to_string())
    }
}
