//! Vectors of Trust (RFC 8485; interface specification section 5.1.3).
//!
//! A partner asks for acceptable combinations of identity proofing and
//! authentication in the `vtr` parameter, a JSON array such as
//! `["P9.Cp.Cd","P9.Cm"]`: components within a vector are ANDed, vectors
//! are ORed. A vector may omit a category, meaning any value is acceptable.
//! The parsed request answers the two questions sign-in needs: which level
//! must the citizen reach at least, and which vector (the `vot` claim) did
//! this sign-in meet.

use crate::level::{Credential, CredentialSet, ProofingLevel};
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod json;

/// The most vectors one request may carry: the spec's largest example has
/// six, and a bound keeps a hostile request cheap to evaluate.
pub const MAX_VECTORS: usize = 10;

/// Why one vector string is not a vector of trust we support.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VectorError {
    #[error("A vector of trust must not be empty")]
    Empty,
    #[error("A vector of trust must not have an empty component (check for \"..\")")]
    EmptyComponent,
    #[error(
        "\"{0}\" is not a supported vector of trust component: use P0, P5, P9, Cp, Cd, Ck or Cm"
    )]
    UnknownComponent(String),
    #[error("\"{0}\" appears more than once in the same vector of trust")]
    DuplicateComponent(String),
    #[error("A vector of trust must have at most one identity proofing level (P0, P5 or P9)")]
    MultipleProofingLevels,
}

/// Why a `vtr` parameter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VectorRequestError {
    #[error("The vtr parameter must be a JSON array of strings, like [\"P9.Cp.Cd\",\"P9.Cm\"]")]
    NotJsonArray,
    #[error("Each vector of trust in vtr must be a string in double quotes, like \"P9.Cp.Cd\"")]
    NotAString,
    #[error("The vtr parameter must contain at least one vector of trust")]
    Empty,
    #[error("The vtr parameter must contain no more than 10 vectors of trust")]
    TooMany,
    #[error("The vector of trust \"{vector}\" in vtr is not valid: {source}")]
    InvalidVector {
        vector: String,
        #[source]
        source: VectorError,
    },
}

/// One vector of trust, such as "P9.Cp.Cd".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vector {
    level: Option<ProofingLevel>,
    credentials: CredentialSet,
    /// Canonical text: proofing level first, credentials in canonical order.
    text: String,
}

impl Vector {
    /// Parses a vector with components in any order; surrounding
    /// whitespace is ignored, as the spec's own example has "P9.Cp.Cd ".
    pub fn parse(input: &str) -> Result<Self, VectorError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(VectorError::Empty);
        }
        let mut level = None;
        let mut credentials = CredentialSet::new();
        for component in input.split('.') {
            if component.is_empty() {
                return Err(VectorError::EmptyComponent);
            }
            let duplicate = || VectorError::DuplicateComponent(component.to_owned());
            if let Ok(p) = ProofingLevel::parse(component) {
                match level {
                    Some(existing) if existing == p => return Err(duplicate()),
                    Some(_) => return Err(VectorError::MultipleProofingLevels),
                    None => level = Some(p),
                }
            } else if let Ok(c) = Credential::parse(component) {
                if !credentials.insert(c) {
                    return Err(duplicate());
                }
            } else {
                return Err(VectorError::UnknownComponent(component.to_owned()));
            }
        }
        Ok(Self::build(level, credentials))
    }

    /// Builds the vector for an achieved level and credentials, e.g. for
    /// the `vot` claim. `None` when both are empty (no vector is empty).
    pub fn from_parts(level: Option<ProofingLevel>, credentials: CredentialSet) -> Option<Self> {
        (level.is_some() || !credentials.is_empty()).then(|| Self::build(level, credentials))
    }

    fn build(level: Option<ProofingLevel>, credentials: CredentialSet) -> Self {
        let parts: Vec<&str> = level
            .map(|p| p.as_str())
            .into_iter()
            .chain(credentials.iter().map(|c| c.as_str()))
            .collect();
        Self {
            level,
            credentials,
            text: parts.join("."),
        }
    }

    /// The canonical text: "P9.Cp.Cd".
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The proofing component, if the vector has one.
    pub fn level(&self) -> Option<ProofingLevel> {
        self.level
    }

    /// The credential components (possibly empty).
    pub fn credentials(&self) -> CredentialSet {
        self.credentials
    }

    /// The proofing level this vector needs: an omitted P accepts any level.
    pub fn required_level(&self) -> ProofingLevel {
        self.level.unwrap_or(ProofingLevel::P0)
    }

    /// Whether a citizen verified to `level` who signed in with `creds`
    /// satisfies this vector: at least the requested level, and every
    /// requested credential used (extra credentials do no harm).
    pub fn is_met_by(&self, level: ProofingLevel, creds: CredentialSet) -> bool {
        level >= self.required_level() && creds.is_superset(self.credentials)
    }
}

string_conversions!(Vector, VectorError);

/// The parsed `vtr` authorize parameter: one or more acceptable vectors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VectorRequest {
    vectors: Vec<Vector>,
    /// Canonical JSON text, e.g. `["P9.Cp.Cd","P9.Cm"]`.
    text: String,
}

impl VectorRequest {
    /// Parses the `vtr` parameter. Curly double quotes (U+201C, U+201D),
    /// which partners copy from the specification's examples, are read as
    /// ASCII double quotes.
    pub fn parse(input: &str) -> Result<Self, VectorRequestError> {
        let strings = json::string_array(input)?;
        if strings.is_empty() {
            return Err(VectorRequestError::Empty);
        }
        if strings.len() > MAX_VECTORS {
            return Err(VectorRequestError::TooMany);
        }
        let vectors = strings
            .into_iter()
            .map(|s| {
                Vector::parse(&s)
                    .map_err(|source| VectorRequestError::InvalidVector { vector: s, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_vectors(vectors))
    }

    fn from_vectors(vectors: Vec<Vector>) -> Self {
        let quoted: Vec<String> = vectors
            .iter()
            .map(|v| format!("\"{}\"", v.as_str()))
            .collect();
        let text = format!("[{}]", quoted.join(","));
        Self { vectors, text }
    }

    /// What the specification assumes when `vtr` is omitted:
    /// `["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]`.
    pub fn default_request() -> Self {
        Self::parse(r#"["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]"#).expect("the default vtr is valid")
    }

    /// The canonical JSON text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The vectors, in request order.
    pub fn vectors(&self) -> &[Vector] {
        &self.vectors
    }

    /// The vector to report as `vot`: of those the citizen meets, the one
    /// with the highest proofing level, the earliest in request order on a
    /// tie. `None` means the sign-in does not satisfy the request.
    pub fn best_match(&self, level: ProofingLevel, creds: CredentialSet) -> Option<&Vector> {
        let mut best: Option<&Vector> = None;
        for v in self.vectors.iter().filter(|v| v.is_met_by(level, creds)) {
            if best.is_none_or(|b| v.required_level() > b.required_level()) {
                best = Some(v);
            }
        }
        best
    }

    /// The least proofing level any vector accepts: a citizen below it
    /// must step up before the partner can be answered.
    pub fn lowest_level(&self) -> ProofingLevel {
        self.vectors
            .iter()
            .map(Vector::required_level)
            .min()
            .unwrap_or(ProofingLevel::P0)
    }
}

impl Default for VectorRequest {
    fn default() -> Self {
        Self::default_request()
    }
}

string_conversions!(VectorRequest, VectorRequestError);

#[cfg(test)]
mod tests;
