//! Identity proofing levels and authentication credentials (interface
//! specification section 5.1.1 and 5.1.2, Tables 19 and 20).
//!
//! `ProofingLevel` is ordered so a step-up check reads
//! `if account.level < wanted`. `CredentialSet` records which kinds of
//! credential a sign-in used, so a vector such as "P9.Cp.Cd" can be checked
//! with one superset test.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How well a citizen's identity has been verified (Table 19).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum ProofingLevel {
    /// No identity proofing ("Verification – Low" in DCB3051).
    #[default]
    P0,
    /// Knowledge-based verification only ("Verification – Medium").
    P5,
    /// Physical comparison ("Verification – High").
    P9,
}

/// Why some text is not a proofing level we support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProofingLevelError {
    #[error("The identity proofing level must be one of P0, P5 or P9")]
    Unknown,
}

impl ProofingLevel {
    /// Every level, lowest first.
    pub const ALL: [ProofingLevel; 3] = [ProofingLevel::P0, ProofingLevel::P5, ProofingLevel::P9];

    /// Parses "P0", "P5" or "P9" (case-sensitive, as RFC 8485 vectors are).
    pub fn parse(input: &str) -> Result<Self, ProofingLevelError> {
        match input {
            "P0" => Ok(Self::P0),
            "P5" => Ok(Self::P5),
            "P9" => Ok(Self::P9),
            _ => Err(ProofingLevelError::Unknown),
        }
    }

    /// The wire value, as in the `identity_proofing_level` claim.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::P0 => "P0",
            Self::P5 => "P5",
            Self::P9 => "P9",
        }
    }
}

/// A kind of authentication credential (Table 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Credential {
    /// Password-based.
    Cp,
    /// Registered device, by identifier only (e.g. a code sent by SMS).
    Cd,
    /// Shared cryptographic key within a registered device (e.g. TOTP).
    Ck,
    /// Asymmetric key within a registered device (FIDO, passkeys).
    Cm,
}

/// Why some text is not a credential type we support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CredentialError {
    #[error("The authentication credential must be one of Cp, Cd, Ck or Cm")]
    Unknown,
}

impl Credential {
    /// Every credential, in canonical order.
    pub const ALL: [Credential; 4] = [
        Credential::Cp,
        Credential::Cd,
        Credential::Ck,
        Credential::Cm,
    ];

    /// Parses "Cp", "Cd", "Ck" or "Cm" (case-sensitive).
    pub fn parse(input: &str) -> Result<Self, CredentialError> {
        match input {
            "Cp" => Ok(Self::Cp),
            "Cd" => Ok(Self::Cd),
            "Ck" => Ok(Self::Ck),
            "Cm" => Ok(Self::Cm),
            _ => Err(CredentialError::Unknown),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cp => "Cp",
            Self::Cd => "Cd",
            Self::Ck => "Ck",
            Self::Cm => "Cm",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

string_conversions!(ProofingLevel, ProofingLevelError);
string_conversions!(Credential, CredentialError);

/// A set of credentials, iterated in canonical order (Cp, Cd, Ck, Cm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CredentialSet(u8);

impl CredentialSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self(0)
    }

    /// Adds a credential; returns whether it was newly added.
    pub fn insert(&mut self, credential: Credential) -> bool {
        let added = !self.contains(credential);
        self.0 |= credential.bit();
        added
    }

    /// Removes a credential; returns whether it was present.
    pub fn remove(&mut self, credential: Credential) -> bool {
        let present = self.contains(credential);
        self.0 &= !credential.bit();
        present
    }

    pub fn contains(&self, credential: Credential) -> bool {
        self.0 & credential.bit() != 0
    }

    /// True when every credential in `other` is also in `self`.
    pub fn is_superset(&self, other: CredentialSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The credentials in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Credential> + use<> {
        let bits = self.0;
        Credential::ALL
            .into_iter()
            .filter(move |c| bits & c.bit() != 0)
    }
}

impl FromIterator<Credential> for CredentialSet {
    fn from_iter<I: IntoIterator<Item = Credential>>(iter: I) -> Self {
        let mut set = Self::new();
        for c in iter {
            set.insert(c);
        }
        set
    }
}

impl<const N: usize> From<[Credential; N]> for CredentialSet {
    fn from(credentials: [Credential; N]) -> Self {
        credentials.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Credential::*;

    #[test]
    fn proofing_levels_are_ordered() {
        assert!(ProofingLevel::P0 < ProofingLevel::P5);
        assert!(ProofingLevel::P5 < ProofingLevel::P9);
        assert_eq!(ProofingLevel::default(), ProofingLevel::P0);
    }

    #[test]
    fn proofing_level_parse_table() {
        for level in ProofingLevel::ALL {
            assert_eq!(ProofingLevel::parse(level.as_str()), Ok(level));
        }
        for bad in ["", "p9", "P3", "P9 ", "P"] {
            assert_eq!(
                ProofingLevel::parse(bad),
                Err(ProofingLevelError::Unknown),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn credential_parse_table() {
        for c in Credential::ALL {
            assert_eq!(Credential::parse(c.as_str()), Ok(c));
        }
        for bad in ["", "cp", "CP", "Cx", "Cpp"] {
            assert_eq!(
                Credential::parse(bad),
                Err(CredentialError::Unknown),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn credential_set_operations() {
        let mut set = CredentialSet::new();
        assert!(set.is_empty());
        assert!(set.insert(Cm));
        assert!(set.insert(Cp));
        assert!(!set.insert(Cp));
        assert!(set.contains(Cp) && set.contains(Cm) && !set.contains(Cd));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Cp, Cm]);
        assert_eq!(set.len(), 2);
        assert!(set.is_superset(CredentialSet::from([Cp])));
        assert!(set.is_superset(CredentialSet::new()));
        assert!(!set.is_superset(CredentialSet::from([Cp, Cd])));
        assert!(set.remove(Cm));
        assert!(!set.remove(Cm));
        assert_eq!(set, CredentialSet::from([Cp]));
    }

    #[test]
    fn serde_goes_through_parse() {
        assert_eq!(serde_json::to_string(&ProofingLevel::P9).unwrap(), "\"P9\"");
        let l: ProofingLevel = serde_json::from_str("\"P5\"").unwrap();
        assert_eq!(l, ProofingLevel::P5);
        assert!(serde_json::from_str::<ProofingLevel>("\"P7\"").is_err());
        let c: Credential = serde_json::from_str("\"Ck\"").unwrap();
        assert_eq!(c, Ck);
    }
}
