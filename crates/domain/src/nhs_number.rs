//! The NHS number: ten digits whose last digit is a Modulus 11 check digit.
//!
//! People type NHS numbers from letters and apps in many shapes
//! ("943 476 5919", "943-476-5919"), so spaces and hyphens are dropped before
//! checking. The check digit catches every single mistyped digit and every
//! swap of two neighbouring digits, so a number that passes here is worth
//! sending to PDS; one that fails is certainly wrong.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why some text is not an NHS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NhsNumberError {
    #[error("Enter your NHS number")]
    Empty,
    #[error("NHS number must only include numbers, spaces and hyphens")]
    NotDigits,
    #[error("NHS number must be 10 digits")]
    WrongLength,
    #[error(
        "Enter a valid NHS number. Check it is the same as on your NHS letters or in the NHS App"
    )]
    BadCheckDigit,
}

/// A syntactically valid NHS number, stored as its ten digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NhsNumber(String);

/// Weights of the first nine digits in the Modulus 11 sum.
const WEIGHTS: [u32; 9] = [10, 9, 8, 7, 6, 5, 4, 3, 2];

/// The check digit for nine leading digits, or `None` when the algorithm
/// gives 10: such nine-digit prefixes are never issued.
fn check_digit(first_nine: &[u8]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        n => Some(n as u8),
    }
}

impl NhsNumber {
    /// Parses an NHS number, ignoring spaces and hyphens anywhere in it.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let digits: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if digits.is_empty() {
            return Err(NhsNumberError::Empty);
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(NhsNumberError::NotDigits);
        }
        if digits.len() != 10 {
            return Err(NhsNumberError::WrongLength);
        }
        let bytes = digits.as_bytes();
        match check_digit(&bytes[..9]) {
            Some(check) if check == bytes[9] - b'0' => Ok(Self(digits)),
            _ => Err(NhsNumberError::BadCheckDigit),
        }
    }

    /// Makes the valid NHS number that starts with these nine digits
    /// (`first_nine` is zero-padded on the left), for simulators and test
    /// data. Returns `None` when `first_nine` has more than nine digits or
    /// when no check digit exists for it (about one prefix in eleven).
    pub fn from_first_nine(first_nine: u32) -> Option<Self> {
        if first_nine > 999_999_999 {
            return None;
        }
        let mut digits = format!("{first_nine:09}");
        let check = check_digit(digits.as_bytes())?;
        digits.push(char::from(b'0' + check));
        Some(Self(digits))
    }

    /// The ten digits with no spaces, as sent to PDS and in the `nhs_number` claim.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The "3 3 4" grouping used on NHS letters and screens: "943 476 5919".
    pub fn formatted(&self) -> String {
        let d = &self.0;
        format!("{} {} {}", &d[..3], &d[3..6], &d[6..])
    }
}

string_conversions!(NhsNumber, NhsNumberError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_table() {
        use NhsNumberError::*;
        let cases: &[(&str, Result<&str, NhsNumberError>)] = &[
            ("9434765919", Ok("9434765919")),
            ("943 476 5919", Ok("9434765919")),
            ("943-476-5919", Ok("9434765919")),
            ("  943 476-5919 ", Ok("9434765919")),
            ("0000000000", Ok("0000000000")),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            (" - ", Err(Empty)),
            ("943476591", Err(WrongLength)),
            ("94347659190", Err(WrongLength)),
            ("943476591X", Err(NotDigits)),
            ("943.476.5919", Err(NotDigits)),
            ("９４３４７６５９１９", Err(NotDigits)),
            ("9434765918", Err(BadCheckDigit)),
            ("9434765910", Err(BadCheckDigit)),
        ];
        for (input, expected) in cases {
            let got = NhsNumber::parse(input);
            assert_eq!(
                got.as_ref().map(NhsNumber::as_str).map_err(|e| *e),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn prefix_with_check_digit_ten_is_never_valid() {
        // 100000001: 1*10 + 1*2 = 12, 12 % 11 = 1, 11 - 1 = 10.
        assert_eq!(NhsNumber::from_first_nine(100_000_001), None);
        for last in 0..=9 {
            let candidate = format!("100000001{last}");
            assert_eq!(
                NhsNumber::parse(&candidate),
                Err(NhsNumberError::BadCheckDigit)
            );
        }
    }

    #[test]
    fn from_first_nine_pads_and_rejects_ten_digit_prefixes() {
        assert_eq!(
            NhsNumber::from_first_nine(943_476_591).unwrap().as_str(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::from_first_nine(0).unwrap().as_str(),
            "0000000000"
        );
        assert_eq!(NhsNumber::from_first_nine(1_000_000_000), None);
    }

    #[test]
    fn formatted_groups_three_three_four() {
        let n = NhsNumber::parse("9434765919").unwrap();
        assert_eq!(n.formatted(), "943 476 5919");
        assert_eq!(n.to_string(), "9434765919");
    }

    #[test]
    fn serde_goes_through_parse() {
        let n: NhsNumber = serde_json::from_str("\"943 476 5919\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"9434765919\"");
        assert!(serde_json::from_str::<NhsNumber>("\"9434765918\"").is_err());
    }

    fn valid_number() -> impl Strategy<Value = NhsNumber> {
        (0u32..1_000_000_000).prop_filter_map("no check digit", NhsNumber::from_first_nine)
    }

    proptest! {
        #[test]
        fn every_generated_number_parses(n in valid_number()) {
            prop_assert_eq!(NhsNumber::parse(n.as_str()), Ok(n.clone()));
            prop_assert_eq!(NhsNumber::parse(&n.formatted()), Ok(n));
        }

        #[test]
        fn from_first_nine_keeps_the_prefix(prefix in 0u32..1_000_000_000) {
            if let Some(n) = NhsNumber::from_first_nine(prefix) {
                let expected = format!("{prefix:09}");
                prop_assert_eq!(&n.as_str()[..9], expected.as_str());
            }
        }

        #[test]
        fn any_single_digit_change_is_detected(
            n in valid_number(), pos in 0usize..10, bump in 1u8..10,
        ) {
            let mut bytes = n.as_str().as_bytes().to_vec();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + bump) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(NhsNumber::parse(&changed), Err(NhsNumberError::BadCheckDigit));
        }

        #[test]
        fn any_swap_of_neighbouring_different_digits_is_detected(
            n in valid_number(), pos in 0usize..9,
        ) {
            let mut bytes = n.as_str().as_bytes().to_vec();
            prop_assume!(bytes[pos] != bytes[pos + 1]);
            bytes.swap(pos, pos + 1);
            let swapped = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(NhsNumber::parse(&swapped), Err(NhsNumberError::BadCheckDigit));
        }
    }
}
