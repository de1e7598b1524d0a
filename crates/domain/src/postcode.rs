//! UK postcodes, used to match a citizen to their demographics record.
//!
//! PDS matching compares postcodes exactly, so every way of typing one
//! ("ls14ap", "LS1  4AP") is normalised to the Royal Mail form: outward
//! code, one space, three-character inward code ("LS1 4AP"). The check is
//! on shape only; whether the postcode exists is for PDS to say.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why some text is not a UK postcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PostcodeError {
    #[error("Enter a postcode")]
    Empty,
    #[error("Enter a full UK postcode, like LS1 4AP")]
    InvalidFormat,
}

/// A UK postcode in "LS1 4AP" form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(String);

/// Outward code shapes, A for a letter and 9 for a digit.
const OUTWARD_SHAPES: [&str; 6] = ["A9", "A99", "AA9", "AA99", "A9A", "AA9A"];

fn shape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'A'..='Z' => 'A',
            '0'..='9' => '9',
            _ => '?',
        })
        .collect()
}

impl Postcode {
    /// Parses a postcode in any case, with or without spaces.
    pub fn parse(input: &str) -> Result<Self, PostcodeError> {
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if compact.is_empty() {
            return Err(PostcodeError::Empty);
        }
        if !compact.is_ascii() || !(5..=7).contains(&compact.len()) {
            return Err(PostcodeError::InvalidFormat);
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        let valid = (outward, inward) == ("GIR", "0AA")
            || (OUTWARD_SHAPES.contains(&shape(outward).as_str()) && shape(inward) == "9AA");
        if !valid {
            return Err(PostcodeError::InvalidFormat);
        }
        Ok(Self(format!("{outward} {inward}")))
    }

    /// The normalised form, "LS1 4AP".
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the space, naming the post town district ("LS1").
    pub fn outward(&self) -> &str {
        &self.0[..self.0.len() - 4]
    }

    /// The three characters after the space ("4AP").
    pub fn inward(&self) -> &str {
        &self.0[self.0.len() - 3..]
    }
}

string_conversions!(Postcode, PostcodeError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_table() {
        use PostcodeError::*;
        let cases: &[(&str, Result<&str, PostcodeError>)] = &[
            ("LS1 4AP", Ok("LS1 4AP")),
            ("ls14ap", Ok("LS1 4AP")),
            ("  ls1   4ap ", Ok("LS1 4AP")),
            ("M1 1AE", Ok("M1 1AE")),
            ("B33 8TH", Ok("B33 8TH")),
            ("CR2 6XH", Ok("CR2 6XH")),
            ("DN55 1PT", Ok("DN55 1PT")),
            ("W1A 0AX", Ok("W1A 0AX")),
            ("EC1A 1BB", Ok("EC1A 1BB")),
            ("gir0aa", Ok("GIR 0AA")),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("LS1", Err(InvalidFormat)),
            ("LS1 4A", Err(InvalidFormat)),
            ("LS1 44P", Err(InvalidFormat)),
            ("1S1 4AP", Err(InvalidFormat)),
            ("LSS1 4AP", Err(InvalidFormat)),
            ("EC1AA 1BB", Err(InvalidFormat)),
            ("GIR 0AB", Err(InvalidFormat)),
            ("LS1-4AP", Err(InvalidFormat)),
            ("ŁS1 4AP", Err(InvalidFormat)),
        ];
        for (input, expected) in cases {
            let got = Postcode::parse(input);
            assert_eq!(
                got.as_ref().map(Postcode::as_str).map_err(|e| *e),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn outward_and_inward() {
        let p = Postcode::parse("ec1a1bb").unwrap();
        assert_eq!((p.outward(), p.inward()), ("EC1A", "1BB"));
        assert_eq!(p.to_string(), "EC1A 1BB");
    }

    #[test]
    fn serde_goes_through_parse() {
        let p: Postcode = serde_json::from_str("\"ls14ap\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"LS1 4AP\"");
        assert!(serde_json::from_str::<Postcode>("\"LS1\"").is_err());
    }

    /// Postcodes of every shape, in mixed case and with arbitrary spacing.
    fn typed_postcode() -> impl Strategy<Value = String> {
        let outward = prop_oneof![
            "[A-Za-z][0-9]",
            "[A-Za-z][0-9]{2}",
            "[A-Za-z]{2}[0-9]",
            "[A-Za-z]{2}[0-9]{2}",
            "[A-Za-z][0-9][A-Za-z]",
            "[A-Za-z]{2}[0-9][A-Za-z]",
        ];
        (outward, " {0,3}", "[0-9][A-Za-z]{2}", " {0,2}")
            .prop_map(|(o, gap, i, pad)| format!("{pad}{o}{gap}{i}{pad}"))
    }

    proptest! {
        #[test]
        fn normalised_form_parses_to_itself(input in typed_postcode()) {
            let p = Postcode::parse(&input).unwrap();
            prop_assert_eq!(Postcode::parse(p.as_str()), Ok(p.clone()));
            let compact: String = input.split_whitespace().collect();
            prop_assert_eq!(
                p.as_str().replace(' ', ""),
                compact.to_ascii_uppercase()
            );
            prop_assert_eq!(p.inward().len(), 3);
            prop_assert_eq!(p.as_str().matches(' ').count(), 1);
        }

        #[test]
        fn never_panics(s in "\\PC{0,12}") {
            if let Ok(p) = Postcode::parse(&s) {
                prop_assert_eq!(Postcode::parse(p.as_str()), Ok(p));
            }
        }
    }
}
