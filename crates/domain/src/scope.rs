//! Scopes a partner may request, and the claims each releases (interface
//! specification Table 2; scopes-and-claims.md).
//!
//! The spec says scope values "not understood by NHS login WILL be
//! ignored", so unknown values never fail a request: they are kept aside in
//! [`ScopeSet::ignored`] for logging, while `openid` remains mandatory.
//! Values are case-sensitive (RFC 6749 section 3.3), so the spec table's
//! "Basic_demographics" typo is ignored rather than guessed at.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};
use thiserror::Error;

/// One scope value we understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    Openid,
    Profile,
    BasicDemographics,
    ProfileExtended,
    Email,
    Phone,
    Landline,
    GpRegistrationDetails,
    GpIntegrationCredentials,
    ClientMetadata,
    Delegation,
}

/// Why some text is not a scope we understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ScopeError {
    #[error("This is not a scope that Citizen ID supports")]
    Unknown,
}

/// Why a `scope` parameter cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ScopeSetError {
    #[error("The scope parameter must include openid")]
    MissingOpenid,
}

impl Scope {
    const ALL: [Scope; 11] = [
        Scope::Openid,
        Scope::Profile,
        Scope::BasicDemographics,
        Scope::ProfileExtended,
        Scope::Email,
        Scope::Phone,
        Scope::Landline,
        Scope::GpRegistrationDetails,
        Scope::GpIntegrationCredentials,
        Scope::ClientMetadata,
        Scope::Delegation,
    ];

    /// Every scope, in canonical order.
    pub fn all() -> &'static [Scope] {
        &Self::ALL
    }

    /// Parses one scope value (case-sensitive).
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == input)
            .ok_or(ScopeError::Unknown)
    }

    /// The wire value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Openid => "openid",
            Self::Profile => "profile",
            Self::BasicDemographics => "basic_demographics",
            Self::ProfileExtended => "profile_extended",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Landline => "landline",
            Self::GpRegistrationDetails => "gp_registration_details",
            Self::GpIntegrationCredentials => "gp_integration_credentials",
            Self::ClientMetadata => "client_metadata",
            Self::Delegation => "delegation",
        }
    }

    /// What the citizen is agreeing to share, for the consent page.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Openid => {
                "That you have an NHS login, so the service can recognise you when you come back"
            }
            Self::Profile => "Your NHS number, date of birth and surname",
            Self::BasicDemographics => "Your date of birth and surname",
            Self::ProfileExtended => "Your first name",
            Self::Email => "Your email address",
            Self::Phone => "Your mobile phone number",
            Self::Landline => "Your landline phone number",
            Self::GpRegistrationDetails => "The GP surgery you are registered with",
            Self::GpIntegrationCredentials => {
                "Details that let the service connect to your GP surgery's online services"
            }
            Self::ClientMetadata => "Information this service keeps with your NHS login",
            Self::Delegation => {
                "The people you can act on behalf of, and who can act on your behalf"
            }
        }
    }

    /// The claims this scope releases (Table 11 and scopes-and-claims.md).
    pub fn claims(&self) -> &'static [&'static str] {
        match self {
            Self::Openid => &["iss", "aud", "sub"],
            Self::Profile => &[
                "nhs_number",
                "birthdate",
                "family_name",
                "identity_proofing_level",
            ],
            Self::BasicDemographics => &["birthdate", "family_name", "identity_proofing_level"],
            Self::ProfileExtended => &["given_name"],
            Self::Email => &["email", "email_verified"],
            Self::Phone => &[
                "phone_number",
                "phone_number_verified",
                "phone_number_pds_matched",
            ],
            Self::Landline => &["landline_number", "landline_number_verified"],
            Self::GpRegistrationDetails => &["gp_registration_details"],
            Self::GpIntegrationCredentials => &["gp_integration_credentials"],
            Self::ClientMetadata => &["client_user_metadata"],
            Self::Delegation => &["delegations"],
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

string_conversions!(Scope, ScopeError);

/// The parsed `scope` parameter: the scopes understood (always including
/// `openid`), plus the values that were ignored.
///
/// Two sets are equal when they hold the same scopes; ignored values are
/// kept for logging only and do not take part in comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeSet {
    bits: u16,
    ignored: Vec<String>,
}

impl ScopeSet {
    /// Parses a space-separated scope string. Unknown values are ignored
    /// (each kept once, in order); `openid` must be present.
    pub fn parse(input: &str) -> Result<Self, ScopeSetError> {
        let mut set = Self {
            bits: 0,
            ignored: Vec::new(),
        };
        for value in input.split_ascii_whitespace() {
            match Scope::parse(value) {
                Ok(scope) => set.bits |= scope.bit(),
                Err(ScopeError::Unknown) => {
                    if !set.ignored.iter().any(|v| v == value) {
                        set.ignored.push(value.to_owned());
                    }
                }
            }
        }
        if !set.contains(Scope::Openid) {
            return Err(ScopeSetError::MissingOpenid);
        }
        Ok(set)
    }

    /// The scopes, space-separated in canonical order: the form for a
    /// token response's `scope` and for storage.
    pub fn as_string(&self) -> String {
        self.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.bits & scope.bit() != 0
    }

    /// The scopes in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + use<> {
        let bits = self.bits;
        Scope::ALL.into_iter().filter(move |s| bits & s.bit() != 0)
    }

    /// True when every scope here is also in `other` (e.g. the requested
    /// scopes are all ones the partner is allowed).
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.bits & other.bits == self.bits
    }

    /// The scopes in both sets (still including `openid`), keeping this
    /// set's ignored values: what to grant when a partner asks for more
    /// than it is allowed.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self {
            bits: self.bits & other.bits,
            ignored: self.ignored.clone(),
        }
    }

    /// The values in the request that we did not understand.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Every claim the scopes release, each once, in scope order.
    pub fn claims(&self) -> Vec<&'static str> {
        let mut claims: Vec<&'static str> = Vec::new();
        for claim in self.iter().flat_map(|s| s.claims().iter().copied()) {
            if !claims.contains(&claim) {
                claims.push(claim);
            }
        }
        claims
    }
}

impl PartialEq for ScopeSet {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl Eq for ScopeSet {}

impl Hash for ScopeSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl std::str::FromStr for ScopeSet {
    type Err = ScopeSetError;
    fn from_str(s: &str) -> Result<Self, ScopeSetError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ScopeSet {
    type Error = ScopeSetError;
    fn try_from(s: String) -> Result<Self, ScopeSetError> {
        Self::parse(&s)
    }
}

impl From<ScopeSet> for String {
    fn from(set: ScopeSet) -> String {
        set.as_string()
    }
}

#[cfg(test)]
mod tests;
