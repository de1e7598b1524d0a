//! PDS, the Personal Demographics Service: the national record of who a patient is.
//!
//! Proving identity (SPEC F6) starts by matching what a citizen types against PDS, and the
//! PDS record then supplies the NHS number, GP practice and the mobile used for IDVM and AMNV.
//! Everything that talks to PDS goes through the [`PdsClient`] trait, so the proofing rules do
//! not care whether they reach the real FHIR R4 API ([`client::HttpPdsClient`]) or the bundled
//! [`simulator`], which serves the same API over HTTP from synthetic patients ([`dataset`]).
//!
//! The types here are what Citizen ID needs from PDS, not a FHIR model: the FHIR wire types stay
//! in `fhir`, shared by the client (reading) and the simulator (writing) so the two cannot drift.
//!
//! Demographics are personal data, so [`PdsPatient`] and [`SearchQuery`] have redacting `Debug`
//! implementations and [`PdsError`] messages carry only PDS error codes, never request values.

pub mod client;
pub mod dataset;
mod fhir;
pub mod simulator;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use domain::NhsNumber;

pub use client::HttpPdsClient;

/// The boxed future returned by [`PdsClient`] methods: boxed rather than `async fn` so the trait
/// is object safe and the app can hold an `Arc<dyn PdsClient>` chosen by configuration.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One patient as PDS describes them, reduced to what identity proofing uses.
#[derive(Clone, PartialEq, Eq)]
pub struct PdsPatient {
    /// The record's own NHS number (FHIR `Patient.id`). After a `get_patient` for a superseded
    /// number this is the *new* number, which is how the caller notices the supersession.
    pub nhs_number: NhsNumber,
    /// Given names in order: the first is the given name, the rest are middle names.
    pub given_names: Vec<String>,
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Home address postcode, normalised to "LS1 4AP" form where it has a valid shape.
    /// `None` when PDS holds none or withholds it (restricted patients).
    pub postcode: Option<String>,
    /// ODS code of the registered GP practice, e.g. "A12345".
    pub gp_ods_code: Option<String>,
    /// Mobile number in E.164 form ("+447700900001").
    pub mobile: Option<String>,
    pub email: Option<String>,
    /// Security code R (restricted, or V very restricted): PDS releases no address, contact
    /// details or GP, so those fields are `None` on anything read from PDS.
    pub restricted: bool,
    /// PDS holds a date of death.
    pub deceased: bool,
    /// Set only in datasets: this number was replaced by the given one, and PDS answers for it
    /// with the newer record. Records read from PDS are always current, so it is `None` there.
    pub superseded_by: Option<String>,
    /// Resource version (`meta.versionId`, the `W/"n"` ETag), needed for an update.
    pub version: String,
}

impl PdsPatient {
    /// The first given name (empty if PDS has none, as for very restricted patients).
    pub fn given_name(&self) -> &str {
        self.given_names.first().map(String::as_str).unwrap_or("")
    }

    /// Middle names: every given name after the first.
    pub fn middle_names(&self) -> &[String] {
        self.given_names.get(1..).unwrap_or(&[])
    }
}

/// Only flags and the version are shown, so a record can never leak into a log line.
impl fmt::Debug for PdsPatient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdsPatient")
            .field("nhs_number", &"<redacted>")
            .field("restricted", &self.restricted)
            .field("deceased", &self.deceased)
            .field("superseded", &self.superseded_by.is_some())
            .field("has_mobile", &self.mobile.is_some())
            .field("has_email", &self.email.is_some())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A demographic search (`GET /Patient?...`).
#[derive(Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub family: String,
    pub given: String,
    /// `YYYY-MM-DD`; sent as `birthdate=eqYYYY-MM-DD`.
    pub birthdate: String,
    /// Sent as `address-postalcode`; an empty string leaves it out. Note that PDS never returns
    /// restricted patients to a search that includes a postcode.
    pub postcode: String,
    /// `_fuzzy-match`: PDS tolerates homophones, initials and transposed names.
    pub fuzzy: bool,
    /// `_max-results` (PDS accepts 1 to 50). More matches than this is
    /// [`PdsError::TooManyMatches`], never a truncated list.
    pub max_results: u8,
}

impl fmt::Debug for SearchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchQuery")
            .field("fuzzy", &self.fuzzy)
            .field("max_results", &self.max_results)
            .finish_non_exhaustive()
    }
}

/// Why PDS gave no record, split by what the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdsError {
    /// No patient has this NHS number (404 `RESOURCE_NOT_FOUND` / `INVALIDATED_RESOURCE`).
    #[error("PDS: patient not found")]
    NotFound,
    /// PDS refused the NHS number itself (400 `INVALID_RESOURCE_ID`).
    #[error("PDS: invalid NHS number")]
    InvalidResourceId,
    /// The search matched more patients than `_max-results` (`TOO_MANY_MATCHES`).
    #[error("PDS: too many matches")]
    TooManyMatches,
    /// The `If-Match` version is not the record's current version (409
    /// `RESOURCE_VERSION_MISMATCH`): read the record again and retry.
    #[error("PDS: the record has changed since it was read")]
    Conflict,
    /// PDS could not answer: 5xx, 408, 429, timeout or connection failure. Worth retrying.
    #[error("PDS unavailable: {0}")]
    Unavailable(String),
    /// The request or the response was wrong in a way retrying will not fix; the text is a PDS
    /// error code or a description of the fault, never patient data.
    #[error("PDS request failed: {0}")]
    Invalid(String),
}

impl PdsError {
    /// True when the same request may succeed later (the citizen can be offered "try again").
    pub fn is_transient(&self) -> bool {
        matches!(self, PdsError::Unavailable(_))
    }
}

/// Access to PDS. Implemented by [`client::HttpPdsClient`] (the FHIR API, real or simulated).
pub trait PdsClient: Send + Sync + 'static {
    /// `GET /Patient/{nhs}`. A superseded number answers with the current record, whose
    /// `nhs_number` differs from `nhs`.
    fn get_patient<'a>(&'a self, nhs: &'a NhsNumber)
    -> BoxFuture<'a, Result<PdsPatient, PdsError>>;

    /// `GET /Patient?family&given&birthdate&address-postalcode...`, best match first. No match
    /// is an empty list; more than `max_results` is [`PdsError::TooManyMatches`].
    fn search<'a>(&'a self, q: &'a SearchQuery)
    -> BoxFuture<'a, Result<Vec<PdsPatient>, PdsError>>;

    /// Sets the mobile and/or email (`None` leaves that one unchanged): reads the record's
    /// current version, then sends a JSON Patch with `If-Match` set to the ETag just read, so a
    /// change made on PDS since the citizen proved their identity does not stop the update,
    /// and one made between the read and the patch is caught. Returns the updated record with
    /// its new version.
    fn update_contact<'a>(
        &'a self,
        nhs: &'a NhsNumber,
        mobile: Option<&'a str>,
        email: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PdsPatient, PdsError>>;
}

/// A random (version 4) UUID, as PDS requires in `X-Request-ID`. Not security sensitive: it
/// only lets PDS and our logs refer to the same request.
pub fn random_request_id() -> String {
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

/// True for the canonical 8-4-4-4-12 hex form, which PDS requires of `X-Request-ID`.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Lower-case letters and digits only: how the simulator's fuzzy search (and its index)
/// compares names, so "O'Brien", "o brien" and "OBRIEN" are one name.
pub fn normalise_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Upper case with no whitespace: "ls1 4ap" and "LS14AP" compare equal.
pub fn compact_postcode(p: &str) -> String {
    p.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}
