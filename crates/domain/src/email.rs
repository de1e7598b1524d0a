//! A citizen's email address, in the one form we store and compare.
//!
//! Addresses are trimmed and lowercased so that "Jane@Example.com " and
//! "jane@example.com" are one account. The shape check is deliberately
//! modest (the only real test is the confirmation code we send); it rejects
//! what is certainly a typing slip: no @, two @s, spaces, a domain with no dot.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest address SMTP can carry (RFC 5321 path limit less the brackets).
const MAX_EMAIL_CHARS: usize = 254;
/// Longest part before the @ (RFC 5321 section 4.5.3.1.1).
const MAX_LOCAL_CHARS: usize = 64;

/// Why some text is not an email address we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EmailError {
    #[error("Enter your email address")]
    Empty,
    #[error("Email address must be 254 characters or fewer")]
    TooLong,
    #[error("The part of your email address before the @ must be 64 characters or fewer")]
    LocalPartTooLong,
    #[error("Enter an email address in the correct format, like name@example.com")]
    MissingAt,
    #[error("Email address must not contain spaces")]
    ContainsSpace,
    #[error("Enter an email address in the correct format, like name@example.com")]
    InvalidFormat,
}

/// A trimmed, lowercased email address of a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an email address, trimming surrounding whitespace and lowercasing it.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let email = input.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.chars().count() > MAX_EMAIL_CHARS {
            return Err(EmailError::TooLong);
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::ContainsSpace);
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(EmailError::MissingAt);
        };
        if local.is_empty() || domain.contains('@') {
            return Err(EmailError::InvalidFormat);
        }
        if local.chars().count() > MAX_LOCAL_CHARS {
            return Err(EmailError::LocalPartTooLong);
        }
        if !domain_is_plausible(domain) {
            return Err(EmailError::InvalidFormat);
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the @.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }

    /// The address with all but the first character of the local part hidden,
    /// for "we sent a code to j***@example.com" where the page may be seen by
    /// someone other than the account holder.
    pub fn masked(&self) -> String {
        let first = self.0.chars().next().unwrap_or('*');
        format!("{first}***@{}", self.domain())
    }
}

/// A domain needs at least two dot-separated labels, none empty: that
/// catches "name@example" and "name@example..com" but allows any TLD.
fn domain_is_plausible(domain: &str) -> bool {
    domain.contains('.') && domain.split('.').all(|label| !label.is_empty())
}

string_conversions!(Email, EmailError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_table() {
        use EmailError::*;
        let long_local = format!("{}@example.com", "a".repeat(65));
        let ok_local = format!("{}@example.com", "a".repeat(64));
        let too_long = format!("a@{}.com", "b".repeat(250));
        let cases: Vec<(&str, Result<&str, EmailError>)> = vec![
            ("jane@example.com", Ok("jane@example.com")),
            ("  Jane.Doe@Example.COM\n", Ok("jane.doe@example.com")),
            (
                "jane+nhs@mail.example.co.uk",
                Ok("jane+nhs@mail.example.co.uk"),
            ),
            (&ok_local, Ok(&ok_local)),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            (&too_long, Err(TooLong)),
            (&long_local, Err(LocalPartTooLong)),
            ("jane.example.com", Err(MissingAt)),
            ("jane doe@example.com", Err(ContainsSpace)),
            ("jane@exam\u{7}ple.com", Err(ContainsSpace)),
            ("jane@@example.com", Err(InvalidFormat)),
            ("jane@example@com.uk", Err(InvalidFormat)),
            ("@example.com", Err(InvalidFormat)),
            ("jane@", Err(InvalidFormat)),
            ("jane@example", Err(InvalidFormat)),
            ("jane@example.", Err(InvalidFormat)),
            ("jane@.example.com", Err(InvalidFormat)),
            ("jane@example..com", Err(InvalidFormat)),
        ];
        for (input, expected) in cases {
            let got = Email::parse(input);
            assert_eq!(
                got.as_ref().map(Email::as_str).map_err(|e| *e),
                expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn masked_shows_first_character_and_domain() {
        let e = Email::parse("Jane@Example.com").unwrap();
        assert_eq!(e.masked(), "j***@example.com");
        assert_eq!(Email::parse("x@a.uk").unwrap().masked(), "x***@a.uk");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn serde_goes_through_parse() {
        let e: Email = serde_json::from_str("\" JANE@example.com \"").unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"jane@example.com\"");
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    fn local() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._%+-]{1,40}"
    }

    fn domain() -> impl Strategy<Value = String> {
        "[A-Za-z0-9-]{1,20}(\\.[A-Za-z0-9-]{1,20}){1,3}"
    }

    proptest! {
        #[test]
        fn plausible_addresses_parse_to_lowercase(l in local(), d in domain()) {
            let input = format!("{l}@{d}");
            let e = Email::parse(&input).unwrap();
            prop_assert_eq!(e.as_str(), input.to_lowercase());
        }

        #[test]
        fn parse_is_idempotent_and_ignores_case_and_padding(
            l in local(), d in domain(), pad in "[ \t\n]{0,3}",
        ) {
            let e = Email::parse(&format!("{l}@{d}")).unwrap();
            prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
            let shouted = format!("{pad}{}{pad}", e.as_str().to_uppercase());
            prop_assert_eq!(Email::parse(&shouted), Ok(e));
        }

        #[test]
        fn inner_spaces_are_always_rejected(l in local(), d in domain(), at in 0usize..100) {
            let mut s = format!("{l}@{d}");
            let at = at % (s.len() - 1) + 1;
            s.insert(at, ' ');
            prop_assert_eq!(Email::parse(&s), Err(EmailError::ContainsSpace));
        }

        #[test]
        fn masked_hides_the_local_part(l in local(), d in domain()) {
            let e = Email::parse(&format!("{l}@{d}")).unwrap();
            let masked = e.masked();
            let expected_suffix = format!("***@{}", d.to_lowercase());
            prop_assert!(masked.ends_with(&expected_suffix));
            prop_assert_eq!(masked.chars().count(), 4 + 1 + d.chars().count());
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = Email::parse(&s);
        }
    }
}
