//! GP system linkage keys (IM1 "IDS68 NL01") for the POL route of proving identity.
//!
//! A citizen registered for GP online services holds three GP online credentials: the practice's
//! ODS code, an account ID and a linkage key. NL01 requires GP systems to let an identity
//! service create and retrieve the linkage key for an NHS number at a practice. Citizen ID uses
//! the same interface to check a triple the citizen typed against the NHS number it already
//! matched in PDS: a match lifts the account to P9 (SPEC F6, POL) and the triple becomes the
//! `gp_integration_credentials` claims (SPEC F5).
//!
//! As with every third party (SPEC F12) the GP system is a trait, [`GpLinkageClient`], with a
//! real HTTP client ([`client::HttpGpLinkageClient`]) and a simulator ([`simulator`]) that tests
//! and the sandpit run, so the real client is always exercised over HTTP.
//!
//! Linkage keys are secrets and NHS numbers are personal data: the `Debug` output of every type
//! here redacts them, and no error message carries them, so all of it is safe to log.

pub mod client;
mod credentials;
pub mod simulator;
mod wire;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub use credentials::{GpCredentials, GpCredentialsError, parse_ods_code};

/// One patient's linkage at one practice, as a GP system holds it.
///
/// Plain strings because it is data in transit (from a GP system, a seed, or our store);
/// turn it into checked [`GpCredentials`] with [`LinkageRecord::credentials`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkageRecord {
    pub nhs_number: String,
    pub ods_code: String,
    pub account_id: String,
    pub linkage_key: String,
}

impl LinkageRecord {
    /// The record's credential triple, normalised as if a citizen had typed it.
    pub fn credentials(&self) -> Result<GpCredentials, GpCredentialsError> {
        GpCredentials::parse(&self.ods_code, &self.account_id, &self.linkage_key)
    }
}

/// Hand-written so a record in a log line or panic message shows neither the NHS number nor
/// the linkage key.
impl fmt::Debug for LinkageRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkageRecord")
            .field("nhs_number", &"<redacted>")
            .field("ods_code", &self.ods_code)
            .field("account_id", &self.account_id)
            .field("linkage_key", &"<redacted>")
            .finish()
    }
}

/// What went wrong talking to a GP system, split by what the journey does next.
///
/// Messages never contain NHS numbers or linkage keys. None of them is meant for a citizen as
/// is: the web layer chooses the wording (a `Mismatch` must not say which of the three values
/// was wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpError {
    /// The practice holds no linkage key for this NHS number.
    #[error("no linkage key for this patient at this practice")]
    NotFound,
    /// The credentials do not match that NHS number: tell the citizen to check them, and
    /// count the attempt against the POL rate limit (a linkage key is guessable).
    #[error("the GP online credentials do not match this patient")]
    Mismatch,
    /// The GP system does not know the ODS code: the citizen probably mistyped it.
    #[error("the GP system does not know this practice")]
    PracticeUnknown,
    /// Outage, timeout, 5xx or connection failure: offer another route or "try again later";
    /// the citizen's credentials were not judged.
    #[error("GP system unavailable: {0}")]
    Unavailable(String),
    /// We sent something the GP system (or our own checks) refused: a bug or bad data on our
    /// side, not the citizen's fault.
    #[error("invalid GP linkage request: {0}")]
    Invalid(String),
}

impl GpError {
    /// True when the same request may succeed later (circuit breakers, retries).
    pub fn is_transient(&self) -> bool {
        matches!(self, GpError::Unavailable(_))
    }
}

/// The boxed future returned by [`GpLinkageClient`] methods.
pub type GpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GpError>> + Send + 'a>>;

/// The NL01 operations Citizen ID needs from a GP system.
///
/// Object safe (boxed futures, not `async fn`) so the client is chosen at startup and held as
/// `Arc<dyn GpLinkageClient>`: the HTTP client in production, the simulator in the sandpit, or
/// a supplier-specific adapter. NHS numbers and ODS codes are taken as text and checked by the
/// implementation (`GpError::Invalid`), so nothing malformed reaches a URL.
pub trait GpLinkageClient: Send + Sync + 'static {
    /// Creates a linkage key for the patient at the practice. If one already exists the GP
    /// system returns it, so a retry after a lost response is harmless.
    fn create_linkage_key<'a>(
        &'a self,
        ods_code: &'a str,
        nhs_number: &'a str,
    ) -> GpFuture<'a, LinkageRecord>;

    /// Retrieves the patient's existing linkage key: `NotFound` when there is none.
    fn get_linkage_key<'a>(
        &'a self,
        ods_code: &'a str,
        nhs_number: &'a str,
    ) -> GpFuture<'a, LinkageRecord>;

    /// Checks that `credentials` belong to `nhs_number`: `Ok(())` on a match, `Mismatch`
    /// otherwise (including when the patient has no linkage at all, so the answer does not
    /// reveal who is registered where), `PracticeUnknown` for an unknown ODS code.
    fn verify<'a>(
        &'a self,
        credentials: &'a GpCredentials,
        nhs_number: &'a str,
    ) -> GpFuture<'a, ()>;
}

/// Fixed linkage records that the sandpit's GP simulator is seeded with and the README lists,
/// so a partner can walk the POL route with credentials it can type.
///
/// The NHS numbers are synthetic (999 000 00xx, the sandpit's PDS patients) and
/// pass Modulus 11 (`domain::NhsNumber::parse`; a test checks this). Keep them in step with the
/// sandpit's synthetic PDS patients so the demographics match that precedes POL succeeds.
pub fn documented_credentials() -> Vec<LinkageRecord> {
    let rec = |nhs: &str, ods: &str, account: &str, key: &str| LinkageRecord {
        nhs_number: nhs.to_owned(),
        ods_code: ods.to_owned(),
        account_id: account.to_owned(),
        linkage_key: key.to_owned(),
    };
    vec![
        // Sarah Thompson, Oliver Bennett and Grace O'Neill of `pds::dataset::documented_patients`.
        rec("9990000018", "A12345", "100000001", "K7QF2M9XTR4B8WN"),
        rec("9990000026", "A12345", "100000002", "P3LD8V6ZHC2YJ5E"),
        rec("9990000093", "G78901", "200000003", "W9GN4T7KAX3RM6S"),
    ]
}

/// A random (version 4) UUID for `X-Request-ID`: correlation only, not security sensitive.
fn request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
