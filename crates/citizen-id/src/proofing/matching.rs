//! Matching what a citizen typed against PDS, by written rules:
//!
//! 1. With an NHS number: the PDS record for it (or its successor, if superseded) must have
//!    the same family name and date of birth, a given name that matches (rule 4), and, when the
//!    record shows a postcode, the same postcode.
//! 2. Without: an exact PDS search on family name, given name, date of birth and postcode; if
//!    that finds nobody, a fuzzy search (PDS's own tolerance for typos and initials). Every
//!    candidate must still pass rule 1's checks, so fuzzy search can widen recall but never
//!    accept a person whose surname or date of birth differs.
//! 3. Exactly one confirmed, living candidate is a match. None is "no match"; more than one is
//!    "several matches" (we never guess between people). The citizen is shown one answer for
//!    both (`uplift::DemographicsOutcome::NoMatch`): "several" would tell a guesser that the
//!    name, date of birth and postcode are right for someone.
//! 4. Names compare case-insensitively, ignoring spaces, hyphens and apostrophes; the typed
//!    given name must equal PDS's first given name.

use domain::{BirthDate, NhsNumber, Postcode};

use crate::integrations::pds::{PdsClient, PdsError, PdsPatient, SearchQuery};

/// What the citizen typed, already parsed.
#[derive(Debug, Clone)]
pub struct Demographics {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: BirthDate,
    pub postcode: Postcode,
    pub nhs_number: Option<NhsNumber>,
}

#[derive(Debug)]
pub enum MatchOutcome {
    Unique(Box<PdsPatient>),
    NoMatch,
    Several,
}

/// Lower case letters and digits only.
pub fn normalise_name(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

fn normalise_postcode(p: &str) -> String {
    p.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect()
}

/// Rule 1's checks of one PDS record against the typed details.
pub fn confirms(d: &Demographics, p: &PdsPatient) -> bool {
    let given_ok = p.given_names.first().is_some_and(|g| normalise_name(g) == normalise_name(&d.given_name));
    let family_ok = normalise_name(&p.family_name) == normalise_name(&d.family_name);
    let dob_ok = p.birth_date == d.birth_date.as_str();
    let postcode_ok = p.postcode.as_deref().is_none_or(|pc| normalise_postcode(pc) == normalise_postcode(d.postcode.as_str()));
    given_ok && family_ok && dob_ok && postcode_ok && !p.deceased
}

fn decide(d: &Demographics, candidates: Vec<PdsPatient>) -> MatchOutcome {
    let mut confirmed: Vec<PdsPatient> = candidates.into_iter().filter(|p| confirms(d, p)).collect();
    match confirmed.len() {
        0 => MatchOutcome::NoMatch,
        1 => MatchOutcome::Unique(Box::new(confirmed.remove(0))),
        _ => MatchOutcome::Several,
    }
}

/// Finds the citizen on PDS. `Err` only when PDS could not answer (the citizen may retry).
pub async fn find(pds: &dyn PdsClient, d: &Demographics) -> Result<MatchOutcome, PdsError> {
    if let Some(nhs) = &d.nhs_number {
        return match pds.get_patient(nhs).await {
            Ok(p) => Ok(decide(d, vec![p])),
            Err(PdsError::NotFound | PdsError::InvalidResourceId) => Ok(MatchOutcome::NoMatch),
            Err(e) => Err(e),
        };
    }
    for fuzzy in [false, true] {
        let query = SearchQuery {
            family: d.family_name.clone(),
            given: d.given_name.clone(),
            birthdate: d.birth_date.as_str().to_string(),
            postcode: d.postcode.as_str().to_string(),
            fuzzy,
            max_results: 5,
        };
        match pds.search(&query).await {
            Ok(found) if found.is_empty() => continue,
            Ok(found) => return Ok(decide(d, found)),
            Err(PdsError::TooManyMatches) => return Ok(MatchOutcome::Several),
            Err(PdsError::NotFound) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(MatchOutcome::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed() -> Demographics {
        Demographics {
            given_name: "Mary-Anne".into(),
            family_name: "O'Brien".into(),
            birth_date: BirthDate::parse_iso("1980-03-27", (2026, 1, 1)).unwrap(),
            postcode: Postcode::parse("ls1 4ap").unwrap(),
            nhs_number: None,
        }
    }

    fn record() -> PdsPatient {
        PdsPatient {
            nhs_number: NhsNumber::parse("9434765919").unwrap(),
            given_names: vec!["MARY ANNE".into(), "Jane".into()],
            family_name: "OBrien".into(),
            birth_date: "1980-03-27".into(),
            postcode: Some("LS14AP".into()),
            gp_ods_code: None,
            mobile: None,
            email: None,
            restricted: false,
            deceased: false,
            superseded_by: None,
            version: "1".into(),
        }
    }

    #[test]
    fn the_rules_confirm_and_refuse() {
        assert!(confirms(&typed(), &record()), "case, spaces, hyphens and apostrophes are ignored");
        let mut other_dob = record();
        other_dob.birth_date = "1980-03-28".into();
        assert!(!confirms(&typed(), &other_dob));
        let mut other_postcode = record();
        other_postcode.postcode = Some("LS2 7AA".into());
        assert!(!confirms(&typed(), &other_postcode));
        let mut restricted = record();
        restricted.postcode = None;
        assert!(confirms(&typed(), &restricted), "a restricted record shows no postcode to compare");
        let mut deceased = record();
        deceased.deceased = true;
        assert!(!confirms(&typed(), &deceased));
        let mut middle_only = record();
        middle_only.given_names = vec!["Jane".into(), "Mary-Anne".into()];
        assert!(!confirms(&typed(), &middle_only), "the typed given name must be the first given name");
        assert!(matches!(decide(&typed(), vec![record(), record()]), MatchOutcome::Several));
        assert!(matches!(decide(&typed(), vec![]), MatchOutcome::NoMatch));
    }
}
