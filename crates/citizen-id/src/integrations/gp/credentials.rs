//! GP online credentials as a citizen types them from their GP's registration letter.
//!
//! Parsed once at the edge ("parse, don't validate"), so a [`GpCredentials`] is always in the
//! canonical form GP systems compare: ODS code upper case, account ID digits only, linkage key
//! upper case with the spaces and hyphens that letters print for readability removed. Linkage
//! keys are case-insensitive, so upper-casing here makes every later comparison exact.

use std::fmt;

use subtle::ConstantTimeEq;

use super::LinkageRecord;

/// ODS codes of GP practices are one letter and five digits ("A12345"); other organisation
/// codes are three to six characters, and the GP system is the judge of which exist.
const ODS_LEN: std::ops::RangeInclusive<usize> = 3..=6;
const ACCOUNT_ID_MAX: usize = 20;
const LINKAGE_KEY_LEN: std::ops::RangeInclusive<usize> = 10..=20;

/// Why the typed credentials are not well formed. Messages follow the NHS service manual's
/// error message style: they are shown to the citizen beside the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GpCredentialsError {
    #[error("Enter your GP surgery's ODS code")]
    OdsCodeMissing,
    #[error("ODS code must be 3 to 6 letters and numbers, like A12345")]
    OdsCodeInvalid,
    #[error("Enter your account ID")]
    AccountIdMissing,
    #[error("Account ID must only include numbers")]
    AccountIdNotDigits,
    #[error("Account ID must be 20 numbers or fewer")]
    AccountIdTooLong,
    #[error("Enter your linkage key")]
    LinkageKeyMissing,
    #[error("Linkage key must only include letters and numbers")]
    LinkageKeyNotAlphanumeric,
    #[error("Linkage key must be 10 to 20 letters and numbers")]
    LinkageKeyWrongLength,
}

impl GpCredentialsError {
    /// The form field the error belongs to, so the page can link the error summary to it.
    pub fn field(self) -> &'static str {
        use GpCredentialsError::*;
        match self {
            OdsCodeMissing | OdsCodeInvalid => "ods_code",
            AccountIdMissing | AccountIdNotDigits | AccountIdTooLong => "account_id",
            LinkageKeyMissing | LinkageKeyNotAlphanumeric | LinkageKeyWrongLength => "linkage_key",
        }
    }
}

/// A well-formed (ODS code, account ID, linkage key) triple. Whether it belongs to anyone is
/// for the GP system to say ([`super::GpLinkageClient::verify`]).
#[derive(Clone, PartialEq, Eq)]
pub struct GpCredentials {
    ods_code: String,
    account_id: String,
    linkage_key: String,
}

impl GpCredentials {
    /// Parses the three values as typed; see the module comment for the normalisation.
    pub fn parse(
        ods_code: &str,
        account_id: &str,
        linkage_key: &str,
    ) -> Result<Self, GpCredentialsError> {
        Ok(GpCredentials {
            ods_code: parse_ods_code(ods_code)?,
            account_id: parse_account_id(account_id)?,
            linkage_key: parse_linkage_key(linkage_key)?,
        })
    }

    /// Upper case, e.g. "A12345".
    pub fn ods_code(&self) -> &str {
        &self.ods_code
    }

    /// Digits only.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Upper-case letters and digits. A secret: never log it; encrypt it at rest.
    pub fn linkage_key(&self) -> &str {
        &self.linkage_key
    }

    /// Whether `record` holds these credentials (the NHS number is not looked at). The linkage
    /// key is compared in constant time so the comparison leaks nothing about how close a
    /// guess was; a record whose own values are malformed never matches.
    pub fn matches(&self, record: &LinkageRecord) -> bool {
        let Ok(theirs) = record.credentials() else {
            return false;
        };
        let key_eq: bool = self
            .linkage_key
            .as_bytes()
            .ct_eq(theirs.linkage_key.as_bytes())
            .into();
        // Evaluate every part so timing does not reveal which one differed.
        let ods_eq = self.ods_code == theirs.ods_code;
        let account_eq = self.account_id == theirs.account_id;
        key_eq & ods_eq & account_eq
    }
}

/// Redacts the linkage key so credentials can appear in logs and panics.
impl fmt::Debug for GpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpCredentials")
            .field("ods_code", &self.ods_code)
            .field("account_id", &self.account_id)
            .field("linkage_key", &"<redacted>")
            .finish()
    }
}

/// Checks and upper-cases an ODS code (surrounding whitespace ignored). Public because the
/// create and get operations take an ODS code on its own.
pub fn parse_ods_code(input: &str) -> Result<String, GpCredentialsError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(GpCredentialsError::OdsCodeMissing);
    }
    if !ODS_LEN.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(GpCredentialsError::OdsCodeInvalid);
    }
    Ok(s.to_ascii_uppercase())
}

/// Spaces and hyphens are separators people add when copying long values; drop them.
fn strip_separators(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

fn parse_account_id(input: &str) -> Result<String, GpCredentialsError> {
    let s = strip_separators(input);
    if s.is_empty() {
        return Err(GpCredentialsError::AccountIdMissing);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GpCredentialsError::AccountIdNotDigits);
    }
    if s.len() > ACCOUNT_ID_MAX {
        return Err(GpCredentialsError::AccountIdTooLong);
    }
    Ok(s)
}

fn parse_linkage_key(input: &str) -> Result<String, GpCredentialsError> {
    let s = strip_separators(input);
    if s.is_empty() {
        return Err(GpCredentialsError::LinkageKeyMissing);
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(GpCredentialsError::LinkageKeyNotAlphanumeric);
    }
    if !LINKAGE_KEY_LEN.contains(&s.len()) {
        return Err(GpCredentialsError::LinkageKeyWrongLength);
    }
    Ok(s.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::GpCredentialsError::*;
    use super::*;

    type Triple<'a> = (&'a str, &'a str, &'a str);

    #[test]
    fn parse_table() {
        let ok = ("A12345", "100000001", "K7QF2M9XTR4B8WN");
        let cases: &[(Triple, Result<Triple, GpCredentialsError>)] = &[
            (ok, Ok(ok)),
            ((" a12345 ", "100 000 001", "k7qf-2m9x tr4b-8wn"), Ok(ok)),
            (("", "1", "ABCDEFGHIJ"), Err(OdsCodeMissing)),
            (("A1", "1", "ABCDEFGHIJ"), Err(OdsCodeInvalid)),
            (("A123456", "1", "ABCDEFGHIJ"), Err(OdsCodeInvalid)),
            (("A12-45", "1", "ABCDEFGHIJ"), Err(OdsCodeInvalid)),
            (("A12345", " ", "ABCDEFGHIJ"), Err(AccountIdMissing)),
            (("A12345", "12a", "ABCDEFGHIJ"), Err(AccountIdNotDigits)),
            (
                ("A12345", &"1".repeat(21), "ABCDEFGHIJ"),
                Err(AccountIdTooLong),
            ),
            (("A12345", "1", ""), Err(LinkageKeyMissing)),
            (
                ("A12345", "1", "ABCDEFGHI!"),
                Err(LinkageKeyNotAlphanumeric),
            ),
            (("A12345", "1", "ABCDEFGHI"), Err(LinkageKeyWrongLength)),
            (("A12345", "1", &"A".repeat(21)), Err(LinkageKeyWrongLength)),
        ];
        for ((o, a, k), want) in cases {
            let got = GpCredentials::parse(o, a, k).map(|c| {
                (
                    c.ods_code.clone(),
                    c.account_id.clone(),
                    c.linkage_key.clone(),
                )
            });
            let want = want.map(|(o, a, k)| (o.to_owned(), a.to_owned(), k.to_owned()));
            assert_eq!(got, want, "input {o:?} {a:?} {k:?}");
        }
    }

    #[test]
    fn debug_redacts_the_linkage_key() {
        let c = GpCredentials::parse("A12345", "1", "SECRETKEY123").unwrap();
        assert!(!format!("{c:?}").contains("SECRETKEY123"));
    }

    #[test]
    fn errors_name_their_field() {
        assert_eq!(OdsCodeInvalid.field(), "ods_code");
        assert_eq!(AccountIdTooLong.field(), "account_id");
        assert_eq!(LinkageKeyMissing.field(), "linkage_key");
    }
}
