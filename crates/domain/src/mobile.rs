//! UK phone numbers: the mobile we send security codes to, and a landline.
//!
//! People write the same number as "07700 900123", "+44 (0)7700 900123" or
//! "447700900123"; all are reduced to the national significant number (the
//! digits after the trunk 0) and stored in E.164 form ("+447700900123") so
//! one phone is one value. Only UK numbers are accepted: codes go out
//! through a UK SMS gateway, and it keeps "2125551234" from being read as a
//! UK number.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why some text is not a UK mobile number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MobileNumberError {
    #[error("Enter a mobile phone number")]
    Empty,
    #[error(
        "Mobile phone number must only include numbers 0 to 9, spaces, brackets, hyphens and +"
    )]
    InvalidCharacters,
    #[error("Enter a UK mobile phone number, like 07700 900 982 or +44 7700 900 982")]
    NotUk,
    #[error("Enter a mobile phone number, like 07700 900 982. Mobile numbers start with 07")]
    NotMobile,
    #[error("Enter a mobile phone number, like 07700 900 982. It must be 11 digits long")]
    WrongLength,
}

/// Why some text is not a UK landline number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LandlineNumberError {
    #[error("Enter a landline phone number")]
    Empty,
    #[error("Landline number must only include numbers 0 to 9, spaces, brackets, hyphens and +")]
    InvalidCharacters,
    #[error("Enter a UK landline number, like 0113 496 0000 or +44 113 496 0000")]
    NotUk,
    #[error(
        "Enter a landline number, like 0113 496 0000. Landline numbers start with 01, 02 or 03"
    )]
    NotLandline,
    #[error("Enter a landline number, like 0113 496 0000. It must be 10 or 11 digits long")]
    WrongLength,
}

/// What went wrong before knowing which kind of number was wanted.
enum ShapeError {
    Empty,
    InvalidCharacters,
    NotUk,
}

/// Reduces any common way of writing a UK number to its national
/// significant number: the digits after "+44" or after the trunk "0".
fn national_significant_number(input: &str) -> Result<String, ShapeError> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '.'))
        .collect();
    if compact.is_empty() {
        return Err(ShapeError::Empty);
    }
    let (plus, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(ShapeError::InvalidCharacters);
    }
    let international = if plus {
        Some(digits)
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(rest)
    } else if digits.starts_with('0') {
        None
    } else {
        // No + and no trunk 0: only "44..." reads as a UK number.
        Some(digits)
    };
    let nsn = match international {
        // "+44 (0)7700..." is common on UK letterheads: drop the bracketed 0.
        Some(rest) => {
            let uk = rest.strip_prefix("44").ok_or(ShapeError::NotUk)?;
            uk.strip_prefix('0').unwrap_or(uk)
        }
        None => &digits[1..],
    };
    Ok(nsn.to_owned())
}

/// A UK mobile number, stored as E.164 ("+447700900123").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobileNumber(String);

impl MobileNumber {
    /// Parses a UK mobile number written in any common national or
    /// international form. Numbers not starting 07 (or +447) are refused.
    pub fn parse(input: &str) -> Result<Self, MobileNumberError> {
        let nsn = national_significant_number(input).map_err(|e| match e {
            ShapeError::Empty => MobileNumberError::Empty,
            ShapeError::InvalidCharacters => MobileNumberError::InvalidCharacters,
            ShapeError::NotUk => MobileNumberError::NotUk,
        })?;
        if !nsn.starts_with('7') {
            return Err(MobileNumberError::NotMobile);
        }
        if nsn.len() != 10 {
            return Err(MobileNumberError::WrongLength);
        }
        Ok(Self(format!("+44{nsn}")))
    }

    /// E.164 form, as sent to the SMS gateway and in the `phone_number` claim.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The national form a citizen recognises: "07700900123".
    pub fn national(&self) -> String {
        national(&self.0)
    }

    /// All but the last four digits hidden: "*******0123".
    pub fn masked(&self) -> String {
        masked(&self.national())
    }
}

/// A UK geographic or non-geographic landline (01, 02 or 03), stored as E.164.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LandlineNumber(String);

impl LandlineNumber {
    /// Parses a UK landline number; national forms are 10 or 11 digits.
    pub fn parse(input: &str) -> Result<Self, LandlineNumberError> {
        let nsn = national_significant_number(input).map_err(|e| match e {
            ShapeError::Empty => LandlineNumberError::Empty,
            ShapeError::InvalidCharacters => LandlineNumberError::InvalidCharacters,
            ShapeError::NotUk => LandlineNumberError::NotUk,
        })?;
        if !matches!(nsn.as_bytes().first(), Some(b'1' | b'2' | b'3')) {
            return Err(LandlineNumberError::NotLandline);
        }
        if !(9..=10).contains(&nsn.len()) {
            return Err(LandlineNumberError::WrongLength);
        }
        Ok(Self(format!("+44{nsn}")))
    }

    /// E.164 form: "+441134960000".
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The national form: "01134960000".
    pub fn national(&self) -> String {
        national(&self.0)
    }

    /// All but the last four digits hidden.
    pub fn masked(&self) -> String {
        masked(&self.national())
    }
}

fn national(e164: &str) -> String {
    format!("0{}", &e164[3..])
}

fn masked(national: &str) -> String {
    let keep = national.len().saturating_sub(4);
    format!("{}{}", "*".repeat(keep), &national[keep..])
}

string_conversions!(MobileNumber, MobileNumberError);
string_conversions!(LandlineNumber, LandlineNumberError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_parse_table() {
        use MobileNumberError::*;
        let cases: &[(&str, Result<&str, MobileNumberError>)] = &[
            ("07700 900123", Ok("+447700900123")),
            ("+44 7700 900123", Ok("+447700900123")),
            ("447700900123", Ok("+447700900123")),
            ("(07700) 900-123", Ok("+447700900123")),
            ("+44 (0)7700 900123", Ok("+447700900123")),
            ("0044 7700 900123", Ok("+447700900123")),
            ("07700.900.123", Ok("+447700900123")),
            ("", Err(Empty)),
            ("  ", Err(Empty)),
            ("+", Err(InvalidCharacters)),
            ("07700 9001a3", Err(InvalidCharacters)),
            ("+44+7700900123", Err(InvalidCharacters)),
            ("+33 6 12 34 56 78", Err(NotUk)),
            ("0033612345678", Err(NotUk)),
            ("2125551234", Err(NotUk)),
            ("0113 496 0000", Err(NotMobile)),
            ("+44 20 7946 0000", Err(NotMobile)),
            ("0770090012", Err(WrongLength)),
            ("077009001234", Err(WrongLength)),
        ];
        for (input, expected) in cases {
            let got = MobileNumber::parse(input);
            assert_eq!(
                got.as_ref().map(MobileNumber::as_str).map_err(|e| *e),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn mobile_national_and_masked() {
        let m = MobileNumber::parse("+44 7700 900123").unwrap();
        assert_eq!(m.national(), "07700900123");
        assert_eq!(m.masked(), "*******0123");
        assert_eq!(m.to_string(), "+447700900123");
    }

    #[test]
    fn landline_parse_table() {
        use LandlineNumberError::*;
        let cases: &[(&str, Result<&str, LandlineNumberError>)] = &[
            ("0113 496 0000", Ok("+441134960000")),
            ("020 7946 0000", Ok("+442079460000")),
            ("+44 (0)20 7946 0000", Ok("+442079460000")),
            ("0300 123 1234", Ok("+443001231234")),
            ("016977 1234", Ok("+44169771234")),
            ("", Err(Empty)),
            ("0113 ABC", Err(InvalidCharacters)),
            ("+1 212 555 1234", Err(NotUk)),
            ("07700 900123", Err(NotLandline)),
            ("0800 123 4567", Err(NotLandline)),
            ("0113 496", Err(WrongLength)),
            ("0113 496 00000", Err(WrongLength)),
        ];
        for (input, expected) in cases {
            let got = LandlineNumber::parse(input);
            assert_eq!(
                got.as_ref().map(LandlineNumber::as_str).map_err(|e| *e),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn landline_national_and_masked() {
        let l = LandlineNumber::parse("+441134960000").unwrap();
        assert_eq!(l.national(), "01134960000");
        assert_eq!(l.masked(), "*******0000");
    }

    #[test]
    fn serde_goes_through_parse() {
        let m: MobileNumber = serde_json::from_str("\"07700 900123\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"+447700900123\"");
        assert!(serde_json::from_str::<MobileNumber>("\"01134960000\"").is_err());
        assert!(serde_json::from_str::<LandlineNumber>("\"07700900123\"").is_err());
    }
}
